#!/usr/bin/env bash
# Rebuilds models/arena-tiny, the console's bundled policy, from scratch: the scripted expert's
# demonstrations -> three training stages -> ONNX export (checked against transformers) ->
# golden files -> evaluation in real time. Seeded end to end; see models/train/README.md.
#   models/train/train_arena.sh              # everything (about an hour on two CPU cores)
#   WORK=DIR EPISODES=N NOISE=P STEPS=a,b,c HISTORY=F ROPE_THETA=T MROPE_SECTION=t,h,w models/train/train_arena.sh
# Needs the export environment (scripts/setup-export-env) and a release build of lumine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv-export/bin/python}"
LUMINE="${LUMINE:-$ROOT/target/release/lumine}"
WORK="${WORK:-$ROOT/target/train-arena}"
OUT="${OUT:-$ROOT/models/arena-tiny}"
EPISODES="${EPISODES:-1800}"
NOISE="${NOISE:-0.15}"
STEPS="${STEPS:-300,1500,400}"
HISTORY="${HISTORY:-10}"
ROPE_THETA="${ROPE_THETA:-}"
MROPE_SECTION="${MROPE_SECTION:-}"
SEED="${SEED:-0}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

[[ -x "$PY" ]] || scripts/setup-export-env
[[ -x "$LUMINE" ]] || cargo build --release --locked -p lumine-cli

step() { printf '\n==> %s\n' "$*"; }

step "demonstrations: $EPISODES expert episodes, seeds $SEED.."
rm -rf "$WORK/demos"
"$LUMINE" arena demos --out "$WORK/demos" --episodes "$EPISODES" --seed "$SEED" --noise "$NOISE" | tail -1

step "training (stages: $STEPS optimizer steps)"
"$PY" models/train/train_policy.py --demos "$WORK/demos" --base models/test-tiny/hf \
  --out "$WORK/hf" --log "$WORK/train_log.jsonl" --steps "$STEPS" --seed "$SEED" --history "$HISTORY" \
  ${ROPE_THETA:+--rope-theta "$ROPE_THETA"} ${MROPE_SECTION:+--mrope-section "$MROPE_SECTION"}

step "export to $OUT (checked against transformers)"
rm -rf "$OUT"
"$PY" models/export/export.py --hf "$WORK/hf" --out "$OUT" --frame 256x144 --prompts arena \
  --history "$HISTORY" --name "lumine-$(basename "$OUT")"
cp -r "$WORK/hf" "$OUT/hf"
cp "$WORK/train_log.jsonl" "$OUT/train_log.jsonl"
"$PY" models/export/make_golden.py --model "$OUT"
"$PY" models/export/check_onnx.py --model "$OUT"

step "evaluation: unseen layouts, real time, private Xvfb"
"$LUMINE" eval arena --model "$OUT" --episodes "${EVAL_EPISODES:-12}" --timeout 25 --xvfb --json > "$OUT/eval.json"
"$PY" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps({k: v for k, v in r.items() if k != "episodes"}, indent=1))' "$OUT/eval.json"
du -sh "$OUT"
