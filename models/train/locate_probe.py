#!/usr/bin/env python3
"""Can a model of this architecture learn where across its frame a thing is? A probe.

    python models/train/locate_probe.py                                  # the base's rotary setup
    python models/train/locate_probe.py --rope-theta 10 --mrope-section 1,1,6

Trains a fresh model (train_policy.py's `fresh_model`: the base's architecture and tokenizer,
the rotary options of train_policy.py) on synthetic frames: a plain two-tone background with
one red square at a random place, one frame per sequence, answered with the third of the frame
the square is in (`<|action_start|>0..2<|action_end|>`). Then it reports held-out accuracy
with the real frames and with their patches shuffled. A setup that can localise reaches high
accuracy, and shuffling brings it down to chance; one that cannot stays at the share of its
most common answer, shuffled or not.

The background is the same in every column, so the vision tower, whose rotary embedding is
relative, has no way to tell columns apart: what this measures is whether the decoder's
M-RoPE carries a frame's width (Qwen2-VL gives the width the slowest rotary pairs).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_policy import PROMPT_SETS, THIRDS, Encoder, Frames, Step, Window, answer_accuracy, fresh_model  # noqa: E402


def synthetic(frames: Frames, n: int, size: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """`n` frames with a red `size`-pixel square; returns (frame index, third of the square's centre)."""
    w, h = frames.size
    out = []
    for _ in range(n):
        img = np.full((h, w, 3), 90, np.uint8)
        img[h // 2:] = 60  # a floor, so rows differ but columns do not
        x, y = int(rng.integers(0, w - size)), int(rng.integers(0, h - size))
        img[y:y + size, x:x + size] = (220, 40, 40)
        frames.images.append(img)
        out.append((len(frames.images) - 1, min(THIRDS - 1, (x + size // 2) * THIRDS // w)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, default=Path("models/test-tiny/hf"), help="architecture and tokenizer")
    ap.add_argument("--rope-theta", type=float, default=None, help="the decoder's rotary base (train_policy.py)")
    ap.add_argument("--mrope-section", default=None, help="rotary pairs for time,height,width (train_policy.py)")
    ap.add_argument("--steps", type=int, default=2000, help="optimizer steps of 4 frames")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--size", type=int, default=40, help="the square's side in pixels")
    ap.add_argument("--frame", default="256x144")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    order_rng = random.Random(args.seed)
    fw, fh = (int(x) for x in args.frame.split("x"))
    frames = Frames((fw, fh))
    rng = np.random.default_rng(args.seed)
    train, held = synthetic(frames, 3000, args.size, rng), synthetic(frames, 300, args.size, rng)
    encoder = Encoder(args.base, (fw, fh))
    mrope = [int(x) for x in args.mrope_section.split(",")] if args.mrope_section else None
    model = fresh_model(args.base, args.seed, args.rope_theta, mrope)
    system = PROMPT_SETS["arena"][0]

    def window(frame: int, third: int) -> Window:
        return Window(system, "where is the red square", [Step(frame, str(third), None)], [True], False)

    # Not train_policy.py's train_stage: its rate decays to 5% by the end, and localisation is
    # learned after a plateau at chance that can end late; a constant rate keeps the test fair.
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    started = time.time()
    order: list[int] = []
    model.train()
    for step in range(1, args.steps + 1):
        opt.zero_grad(set_to_none=True)
        for _ in range(4):
            if not order:
                order = list(range(len(train)))
                order_rng.shuffle(order)
            (model(**encoder.encode(window(*train[order.pop()]), frames)).loss / 4).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    scores = answer_accuracy(model, encoder, frames, [window(*h) for h in held], answers=THIRDS)
    tc = model.config.text_config.rope_parameters
    print(json.dumps({
        "rope_theta": tc["rope_theta"], "mrope_section": list(tc["mrope_section"]), "steps": args.steps,
        **scores, "elapsed_s": round(time.time() - started),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
