#!/usr/bin/env python3
"""Check an exported Lumine model directory against its golden files with ONNX Runtime only.

    python models/export/check_onnx.py --model models/test-tiny [--tolerance 1e-4] [--golden DIR]

This is the reference pipeline the Rust engine is held to. For every MODEL/golden/CASE:

1. render the chat template from CASE.messages.json (no transformers: ``render_chat`` below) and
   compare with ``prompt_text``;
2. preprocess the PNGs with transformers' Qwen2VLImageProcessor configured from
   MODEL/preprocessor.json (the only transformers use: the bit-exact uint8 bicubic resize) and
   compare the sha256 of pixel_values;
3. expand each <|image_pad|> to t*h*w/4 copies, tokenize with the bare tokenizer.json
   (``tokenizers``), compare ``input_ids``; compute M-RoPE positions / rope_delta, compare;
4. run the ONNX graphs: vision encoder once per image, embeddings, scatter, prefill with past 0,
   then S=1 greedy steps at positions S+k+delta on all three rows; compare the greedy tokens
   (exact) and the logits (first-step top 10 and per-step top 2) with the golden values;
5. re-feed the generated tokens in chunks of 3 on the prefill cache (S>1 with past>0: the
   multi-token verify path) and compare with the one-by-one logits.

Exit status 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from onnx_runner import OnnxQwen2VL, rope_index  # noqa: E402

DEFAULT_SYSTEM = "You are a helpful assistant."


def render_chat(messages: list[dict], add_generation_prompt: bool = True) -> str:
    """The Qwen2-VL chat template (QWEN2VL.md section 4), add_vision_id=False."""
    out = []
    if messages and messages[0]["role"] != "system":
        out.append(f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n")
    for m in messages:
        out.append(f"<|im_start|>{m['role']}\n")
        if isinstance(m["content"], str):
            out.append(m["content"])
        else:
            for c in m["content"]:
                if c.get("type") == "image" or "image" in c or "image_url" in c:
                    out.append("<|vision_start|><|image_pad|><|vision_end|>")
                elif c.get("type") == "video" or "video" in c:
                    out.append("<|vision_start|><|video_pad|><|vision_end|>")
                elif "text" in c:
                    out.append(c["text"])
        out.append("<|im_end|>\n")
    if add_generation_prompt:
        out.append("<|im_start|>assistant\n")
    return "".join(out)


def image_processor(model_dir: Path):
    from transformers import Qwen2VLImageProcessor

    pp = json.loads((model_dir / "preprocessor.json").read_text())
    return Qwen2VLImageProcessor(
        size={"shortest_edge": pp["min_pixels"], "longest_edge": pp["max_pixels"]},
        image_mean=pp["image_mean"], image_std=pp["image_std"], patch_size=pp["patch_size"],
        temporal_patch_size=pp["temporal_patch_size"], merge_size=pp["merge_size"], resample=pp["resample"],
        rescale_factor=pp.get("rescale_factor", 1 / 255),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--tolerance", type=float, default=1e-4, help="max |logit| difference allowed")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--golden", type=Path, default=None,
                    help="golden folder (default MODEL/golden; a partitioned export shares its source model's)")
    args = ap.parse_args()

    from PIL import Image
    from tokenizers import Tokenizer

    model_dir: Path = args.model
    gdir = args.golden or model_dir / "golden"
    rt = OnnxQwen2VL(model_dir, threads=args.threads)
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    ip = image_processor(model_dir)
    pad = "<|image_pad|>"
    failures = []
    worst = 0.0

    for gpath in sorted(gdir.glob("*.golden.json")):
        case = gpath.name.split(".")[0]
        golden = json.loads(gpath.read_text())
        messages = json.loads((gdir / f"{case}.messages.json").read_text())

        def fail(msg):
            failures.append(f"{case}: {msg}")
            print(f"[check_onnx] {case}: FAIL {msg}")

        text = render_chat(messages)
        if text != golden["prompt_text"]:
            fail("rendered chat template differs from prompt_text")

        paths = [c["path"] for m in messages if isinstance(m["content"], list) for c in m["content"] if c.get("type") == "image"]
        pv_rows, grids = [], []
        for p in paths:
            out = ip(images=[Image.open(gdir / p).convert("RGB")], return_tensors="np")
            pv_rows.append(out["pixel_values"].astype(np.float32))
            grids.append(out["image_grid_thw"][0].astype(np.int64))
        pv = np.concatenate(pv_rows) if pv_rows else np.zeros((0, 1176), np.float32)
        grid = np.stack(grids) if grids else None
        sha = hashlib.sha256(np.ascontiguousarray(pv, dtype="<f4").tobytes()).hexdigest()
        if sha != golden["pixel_values_sha256"] or list(pv.shape) != golden["pixel_values_shape"]:
            fail(f"pixel_values differ (shape {list(pv.shape)}, sha {sha[:12]})")
        if (grid.tolist() if grid is not None else []) != golden["image_grid_thw"]:
            fail(f"image_grid_thw {grid} != {golden['image_grid_thw']}")

        # Placeholder expansion happens on the string, before tokenizing (QWEN2VL.md section 4).
        parts = text.split(pad)
        expanded = parts[0]
        for k, rest in enumerate(parts[1:]):
            expanded += pad * int(np.prod(grid[k]) // 4) + rest
        ids = np.array(tok.encode(expanded, add_special_tokens=True).ids, dtype=np.int64)
        if ids.tolist() != golden["input_ids"]:
            fail("input_ids differ")
            ids = np.array(golden["input_ids"], np.int64)
        pos, delta = rope_index(ids, grid, rt.tokens["image_pad"], rt.tokens["video_pad"])
        if pos.tolist() != golden["position_ids"] or delta != golden["rope_deltas"]:
            fail(f"position_ids / rope_delta differ ({delta} vs {golden['rope_deltas']})")

        n = len(golden["greedy_tokens"])
        tokens, step_logits, _, _, verify = rt.greedy(ids, pv, grid, max_new_tokens=n, verify_chunk=3)
        if tokens != golden["greedy_tokens"]:
            first = next(i for i, (a, b) in enumerate(zip(tokens, golden["greedy_tokens"])) if a != b)
            fail(f"greedy tokens differ from step {first}: {tokens} vs {golden['greedy_tokens']}")
        d_first = max(abs(float(step_logits[0, i]) - v) for i, v in golden["first_step_top_logits"])
        d_steps = 0.0
        for k, ((i1, v1), (i2, v2)) in enumerate(golden["greedy_step_top2"]):
            d_steps = max(d_steps, abs(float(step_logits[k, i1]) - v1), abs(float(step_logits[k, i2]) - v2))
        d = max(d_first, d_steps, verify)
        worst = max(worst, d)
        if d > args.tolerance:
            fail(f"logit difference {d:.3e} > {args.tolerance:g}")
        print(f"[check_onnx] {case}: S={len(ids)} images={len(paths)} delta={delta} tokens {'OK' if tokens == golden['greedy_tokens'] else 'DIFFER'} "
              f"({n}); max |logit diff| first-step top10 {d_first:.2e}, per-step top2 {d_steps:.2e}, "
              f"verify S=3 {verify:.2e}; golden min top2 margin {golden['min_top2_margin']:.2e}")

    if not list(gdir.glob("*.golden.json")):
        failures.append(f"no golden files in {gdir}")
    if failures:
        print(f"[check_onnx] FAILED ({len(failures)}): " + "; ".join(failures))
        return 1
    print(f"[check_onnx] OK: {model_dir} (max logit diff {worst:.2e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
