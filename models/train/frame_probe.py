#!/usr/bin/env python3
"""Does a trained policy use where things are in its frames? A probe for models/train.

    python models/train/frame_probe.py --hf MODEL/hf --demos DEMOS_DIR --history N

Mean teacher-forced loss on held-out windows (the same split and windows as
train_policy.py with that --seed), three ways: the real frames, blank frames, and the
frames' patches shuffled (the rows of pixel_values permuted, which scrambles the picture
but keeps its colours). A policy that steers toward what it sees must lose clearly more on
shuffled frames than on real ones; one that does not uses only which colours a frame holds.

Most answers repeat the one before (walking on, scanning on), which the context alone
predicts, so the loss is also reported on the answers that change the decision ("changed_",
train_policy.decision: other keys, or another mouse motion rounded to tens): the decisions that only
the frame can explain.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_policy import PROMPT_SETS, Encoder, Frames, Window, load_episodes, split_heldout, windows  # noqa: E402


def changes_only(w: Window) -> Window | None:
    """The window with only its answers that decide otherwise than the episode's previous step in the loss."""
    labelled = [ok and s.changed for ok, s in zip(w.labelled, w.steps)]
    return Window(w.system, w.goal, w.steps, labelled, w.reasoning) if any(labelled) else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hf", required=True, type=Path, help="the trained checkpoint")
    ap.add_argument("--demos", required=True, type=Path, nargs="+", help="the demonstrations it was trained on")
    ap.add_argument("--base", type=Path, default=Path("models/test-tiny/hf"), help="tokenizer and processor")
    ap.add_argument("--history", type=int, default=10, help="frames per window, as trained")
    ap.add_argument("--frame", default="256x144")
    ap.add_argument("--prompts", choices=sorted(PROMPT_SETS), default="arena")
    ap.add_argument("--heldout", type=float, default=0.05)
    ap.add_argument("--windows", type=int, default=60, help="held-out windows to average over")
    ap.add_argument("--seed", type=int, default=0, help="train_policy.py's --seed (the held-out split)")
    args = ap.parse_args()
    from transformers import Qwen2VLForConditionalGeneration

    fw, fh = (int(x) for x in args.frame.split("x"))
    frames = Frames((fw, fh))
    episodes = load_episodes(args.demos, frames)
    # The same split as training: its generator's first use is this shuffle.
    held, _ = split_heldout(episodes, args.heldout, random.Random(args.seed))
    data = [w for e in held for w in windows(e, 2, args.history, PROMPT_SETS[args.prompts])][: args.windows]
    encoder = Encoder(args.base, (fw, fh))
    model = Qwen2VLForConditionalGeneration.from_pretrained(args.hf).eval()
    torch.manual_seed(args.seed)
    changed = [c for c in map(changes_only, data) if c is not None]
    report: dict[str, float | int] = {}
    with torch.no_grad():
        for prefix, subset in (("", data), ("changed_", changed)):
            loss = {"real": 0.0, "blank": 0.0, "shuffled": 0.0}
            for w in subset:
                batch = encoder.encode(w, frames)
                pv = batch["pixel_values"]
                loss["real"] += float(model(**batch).loss)
                loss["blank"] += float(model(**{**batch, "pixel_values": torch.zeros_like(pv)}).loss)
                loss["shuffled"] += float(model(**{**batch, "pixel_values": pv[torch.randperm(pv.shape[0])]}).loss)
            report |= {prefix + k: round(v / max(1, len(subset)), 4) for k, v in loss.items()}
            report[prefix + "windows"] = len(subset)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
