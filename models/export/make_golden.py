#!/usr/bin/env python3
"""Write golden reference outputs of transformers for a Lumine model directory.

    python models/export/make_golden.py --model models/test-tiny [--hf DIR] [--steps 24]

Reads the Hugging Face checkpoint in MODEL_DIR/hf (or --hf) and writes MODEL_DIR/golden/:

  frame_a.png, frame_b1.png, frame_b2.png   deterministic synthetic pictures (gradients, shapes,
                                            seeded noise), 1280x720, 333x257 and 173x119
  CASE.messages.json                        the chat, OpenAI style; image paths are relative to golden/
  CASE.golden.json                          what transformers 5.23 computes for it (fields below)

Cases: ``a`` one 1280x720 frame + text (instruction prompt); ``b`` two frames of odd sizes,
interleaved with text and an assistant action turn (reasoning prompt); ``c`` text only.

CASE.golden.json fields:
  prompt_text            the chat template output before placeholder expansion
  input_ids              [S] after expanding each <|image_pad|> to t*h*w/4 copies
  image_grid_thw         [[t, h, w], ...] (patch units), one row per image, prompt order
  pixel_values_shape     [rows, 1176]; pixel_values_sha256 of the little-endian f32 bytes;
  pixel_values_first16   the first 16 values (row 0)
  position_ids           [3][S] M-RoPE prefill positions (t, h, w rows); rope_deltas (int)
  first_step_top_logits  top 10 [id, logit] of the first generated position
  greedy_tokens          exactly `steps` tokens from generate(do_sample=False) with EOS disabled
                         (eos_token_id=None: nothing stops early, so every step is a plain argmax)
  greedy_step_top2       per step [[id1, logit1], [id2, logit2]]: the margin a reimplementation has
  min_top2_margin        smallest top1 - top2 logit gap over the greedy steps
  greedy_text            decode(greedy_tokens), special tokens kept

Determinism: torch.manual_seed(0), torch.set_num_threads(1), default (torchvision) image
processor backend, fp32 on CPU. Pass mm_token_type_ids to generate (QWEN2VL.md section 4: without
it transformers silently falls back to 1-D positions).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from lumine_prompts import INSTRUCTION_PROMPT, REASONING_PROMPT  # noqa: E402
from onnx_runner import rope_index  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Deterministic pictures (pure numpy + PIL drawing; no fonts, no randomness outside the seed)
# ---------------------------------------------------------------------------------------------


def picture(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.zeros((height, width, 3), np.float64)
    # Sky-to-ground style vertical gradient plus a horizontal tint.
    img[..., 0] = 40 + 150 * (y / max(height - 1, 1))
    img[..., 1] = 90 + 120 * (x / max(width - 1, 1))
    img[..., 2] = 220 - 160 * (y / max(height - 1, 1))
    # A sinusoidal texture band (high-frequency content exercises the resize kernel).
    band = (y > height * 0.55) & (y < height * 0.7)
    img[band] += (40 * np.sin(x[band] * 0.9))[:, None]
    # Seeded noise patch.
    h0, w0 = int(height * 0.1), int(width * 0.6)
    nh, nw = max(height // 5, 2), max(width // 5, 2)
    img[h0 : h0 + nh, w0 : w0 + nw] = rng.integers(0, 256, size=(nh, nw, 3))
    arr = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    im = Image.fromarray(arr, "RGB")
    d = ImageDraw.Draw(im)
    # Shapes at seed-dependent places: a "door", a "sun", a HUD bar, a diagonal line.
    for _ in range(3):
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(max(width // 30, 2), max(width // 8, 3)))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            d.rectangle([cx - r, cy - r // 2, cx + r, cy + r], fill=color)
        else:
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    d.rectangle([0, height - max(height // 12, 2), width // 3, height - 1], fill=(200, 30, 30))
    d.line([0, 0, width - 1, height - 1], fill=(255, 255, 255), width=max(width // 200, 1))
    return im


def cases() -> dict[str, dict]:
    """case -> {messages (OpenAI style, paths relative to golden/), pictures {file: (w, h, seed)}}."""
    return {
        "a": {
            "pictures": {"frame_a.png": (1280, 720, 1)},
            "messages": [
                {"role": "system", "content": INSTRUCTION_PROMPT},
                {"role": "user", "content": [
                    {"type": "image", "path": "frame_a.png"},
                    {"type": "text", "text": "Walk to the door and open it."},
                ]},
            ],
        },
        "b": {
            "pictures": {"frame_b1.png": (333, 257, 2), "frame_b2.png": (173, 119, 3)},
            "messages": [
                {"role": "system", "content": REASONING_PROMPT},
                {"role": "user", "content": [
                    {"type": "text", "text": "Follow the road to the next village. "},
                    {"type": "image", "path": "frame_b1.png"},
                ]},
                {"role": "assistant", "content": "<|action_start|>12 -3 0 ; W ; W ; Shift W ; Shift W ; Shift W ; W<|action_end|>"},
                {"role": "user", "content": [
                    {"type": "image", "path": "frame_b2.png"},
                    {"type": "text", "text": "前方有敌人，先躲到石头后面。"},
                ]},
            ],
        },
        "c": {
            "pictures": {},
            "messages": [
                {"role": "system", "content": INSTRUCTION_PROMPT},
                {"role": "user", "content": "Open the map and mark the next quest location."},
            ],
        },
    }


def image_paths(messages) -> list[str]:
    out = []
    for m in messages:
        if isinstance(m["content"], list):
            out += [c["path"] for c in m["content"] if c.get("type") == "image"]
    return out


def sha256_f32(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a, dtype="<f4").tobytes()).hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path, help="model directory (golden/ is written inside)")
    ap.add_argument("--hf", type=Path, default=None, help="HF checkpoint (default MODEL/hf)")
    ap.add_argument("--steps", type=int, default=24, help="greedy tokens per case")
    args = ap.parse_args()

    import transformers
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    torch.manual_seed(0)
    torch.set_num_threads(1)
    hf = args.hf or (args.model / "hf")
    out = args.model / "golden"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    proc = AutoProcessor.from_pretrained(hf)  # default = torchvision backend
    model = Qwen2VLForConditionalGeneration.from_pretrained(hf, dtype=torch.float32).eval()
    image_token_id = model.config.image_token_id

    for name, case in cases().items():
        for file, (w, h, seed) in case["pictures"].items():
            picture(w, h, seed).save(out / file, format="PNG")
        messages = case["messages"]
        (out / f"{name}.messages.json").write_text(json.dumps(messages, indent=2, ensure_ascii=False) + "\n")

        # Read the PNGs back, exactly as a consumer of the golden folder would.
        images = [Image.open(out / p).convert("RGB") for p in image_paths(messages)]
        text = proc.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = proc(text=[text], images=images or None, return_tensors="pt")
        assert "mm_token_type_ids" in inputs, "processor did not return mm_token_type_ids"
        ids = inputs["input_ids"][0]
        s = len(ids)

        if images:
            grid = inputs["image_grid_thw"]
            pos, deltas = model.model.get_rope_index(
                inputs["input_ids"], inputs["mm_token_type_ids"], image_grid_thw=grid,
                attention_mask=inputs["attention_mask"])
            pos, delta = pos[:, 0].numpy(), int(deltas.reshape(-1)[0])
            pv = inputs["pixel_values"].numpy()
        else:
            grid = None
            pos, delta = np.broadcast_to(np.arange(s), (3, s)).copy(), 0  # text only: arange, delta 0
            pv = np.zeros((0, 1176), np.float32)
        # Our numpy rope_index (the one check_onnx.py / the Rust engine follow) must agree with HF.
        pos_np, delta_np = rope_index(ids.numpy(), None if grid is None else grid.numpy(), image_token_id)
        assert np.array_equal(pos_np, pos) and delta_np == delta, f"rope_index mismatch in case {name}"

        gc = copy.deepcopy(model.generation_config)
        gc.do_sample = False
        gc.max_new_tokens = args.steps
        gc.min_new_tokens = None
        gc.eos_token_id = None  # exactly `steps` tokens, each a plain argmax (no EOS masking)
        gc.output_logits = True
        gc.return_dict_in_generate = True
        torch.manual_seed(0)
        with torch.no_grad():
            g = model.generate(**inputs, generation_config=gc)
        tokens = g.sequences[0, s:].tolist()
        # transformers still stops at the checkpoint's own end token (a trained model says
        # <|im_end|> after its action): then the golden is shorter, and ends with that token.
        ends = model.config.eos_token_id if isinstance(model.config.eos_token_id, list) else [model.config.eos_token_id]
        assert len(tokens) == args.steps or (0 < len(tokens) < args.steps and tokens[-1] in ends), tokens
        logits = torch.stack(g.logits)[:, 0].float()  # [steps, V] raw logits
        top10 = torch.topk(logits[0], 10)
        top2 = torch.topk(logits, 2, dim=-1)
        assert top2.indices[:, 0].tolist() == tokens

        golden = {
            "case": name,
            "model": args.model.name,
            "transformers_stack": {"transformers": transformers.__version__, "torch": torch.__version__.split("+")[0]},
            "prompt_text": text,
            "images": [{"path": p, "width": im.width, "height": im.height} for p, im in zip(image_paths(messages), images)],
            "input_ids": ids.tolist(),
            "image_grid_thw": [] if grid is None else grid.tolist(),
            "pixel_values_shape": list(pv.shape),
            "pixel_values_sha256": sha256_f32(pv),
            "pixel_values_first16": [float(x) for x in pv.reshape(-1)[:16]],
            "position_ids": pos.tolist(),
            "rope_deltas": delta,
            "first_step_top_logits": [[int(i), float(v)] for v, i in zip(top10.values, top10.indices)],
            "greedy_tokens": tokens,
            "greedy_stop_rule": f"exactly {args.steps} tokens; eos_token_id=None (no early stop)",
            "greedy_step_top2": [[[int(i0), float(v0)], [int(i1), float(v1)]]
                                 for (v0, v1), (i0, i1) in zip(top2.values.tolist(), top2.indices.tolist())],
            "min_top2_margin": float((top2.values[:, 0] - top2.values[:, 1]).min()),
            "greedy_text": proc.tokenizer.decode(tokens, skip_special_tokens=False),
        }
        # One top-level field per line (arrays inline): small diffs, still plain JSON.
        body = ",\n".join(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in golden.items())
        (out / f"{name}.golden.json").write_text("{\n" + body + "\n}\n")
        print(f"[golden] {out}/{name}: S={s} grids={golden['image_grid_thw']} delta={delta} "
              f"tokens={tokens[:8]}... min top2 margin {golden['min_top2_margin']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
