#!/usr/bin/env bash
# Regenerates models/test-tiny, models/test-flat and models/test-tiny-tp{2,4} from scratch (random weights, seed 0):
# HF checkpoint -> ONNX export (+ check against transformers) -> golden files -> ONNX-vs-golden check.
# Needs the export environment: scripts/setup-export-env.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PY:-$ROOT/.venv-export/bin/python}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
cd "$ROOT"
for variant in tiny flat; do
    dir="models/test-$variant"
    rm -rf "$dir"
    "$PY" models/export/make_test_model.py --out "$dir/hf" --variant "$variant" --seed 0
    "$PY" models/export/export.py --hf "$dir/hf" --out "$dir"
    "$PY" models/export/make_golden.py --model "$dir"
    "$PY" models/export/check_onnx.py --model "$dir"
    du -sh "$dir"
done
# Tensor-parallel exports of the tiny model (4 KV heads): 2 and 4 ranks, checked against
# transformers by the export and against test-tiny's golden files (the same checkpoint).
for n in 2 4; do
    dir="models/test-tiny-tp$n"
    rm -rf "$dir"
    "$PY" models/export/export.py --hf models/test-tiny/hf --out "$dir" --partitions "$n"
    "$PY" models/export/check_onnx.py --model "$dir" --golden models/test-tiny/golden
    du -sh "$dir"
done
# The console's bundled default (models/arena-tiny) is trained, not random: models/train/train_arena.sh.
