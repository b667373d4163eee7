#!/usr/bin/env bash
# Regenerates models/test-tiny and models/test-flat from scratch (random weights, seed 0):
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
