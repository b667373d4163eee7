#!/usr/bin/env python3
"""How hard is finding the goal in an arena frame? A reference point for arena grounding.

    python models/train/ceiling_probe.py --demos DEMOS_DIR [--steps 3000]

Trains a small convolutional network, not the policy, on the same question and from the
same held-out episodes (the same --seed and --heldout) as train_policy.py's arena grounding (arena_grounding_windows): given the
frame and the instruction, which column of the policy's visual tokens holds the goal, or out
of view (GoalPointer's classes), and from that the third of the view (bearing_answer). The
instruction is a bag of its words. Convolutions bring locality and translation as built-in
assumptions that a vision transformer trained from scratch must learn from data, so this
says what the frames and labels give a small model in a CPU budget (a bound from below on
what they allow): if it is far above the policy, the policy's vision tower is the
bottleneck; if it is not, the frames are.
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
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_policy import (  # noqa: E402
    OUT_OF_VIEW, Frames, bearing_answer, bearing_column, column_bearing, load_episodes, split_heldout,
)

# The policy's visual-token columns at 256x144 (252 / 28). Kept at every --frame, so that
# frame sizes are compared on the same question.
COLUMNS = 9


class Locator(nn.Module):
    """Conv features, modulated per channel by the instruction (FiLM), pooled over rows."""

    def __init__(self, vocab: int, width: int = 32):
        super().__init__()
        self.words = nn.EmbeddingBag(vocab, 2 * width, mode="mean")
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 1, 1))
        self.none = nn.Linear(2 * width, 1)

    def forward(self, image: torch.Tensor, words: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        text = self.words(words, offsets)
        scale, shift = text.chunk(2, dim=1)
        feat = self.stem(image) * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
        score = self.head(feat)[:, 0]  # B, H', W'
        columns = nn.functional.adaptive_max_pool2d(score[:, None], (1, COLUMNS))[:, 0, 0]
        return torch.cat([columns, self.none(text)], dim=1)


def task_of(name: str) -> str:
    """The task kind from a demonstration folder's name (`lumine arena demos`: 000123-chest)."""
    return Path(name).name.split("-", 1)[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demos", required=True, type=Path, nargs="+")
    ap.add_argument("--frame", default="256x144")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--heldout", type=float, default=0.05, help="as train_policy.py (same split for the same seed)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    started = time.time()

    fw, fh = (int(x) for x in args.frame.split("x"))
    frames = Frames((fw, fh))
    episodes = load_episodes(args.demos, frames)
    held, train = split_heldout(episodes, args.heldout, rng)
    vocab: dict[str, int] = {}

    def samples(eps):
        return [(s.frame, [vocab.setdefault(t, len(vocab)) for t in e.instruction.replace(",", "").split()], s.bearing,
                 task_of(e.name))
                for e in eps if e.instruction for s in e.steps if s.labelled_bearing]

    train_set, held_set = samples(train), samples(held)
    held_set = [held_set[i] for i in random.Random(args.seed + 2).sample(range(len(held_set)), min(200, len(held_set)))]
    model = Locator(len(vocab))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)

    def batch(items):
        image = torch.from_numpy(np.stack([frames.images[f] for f, *_ in items])).permute(0, 3, 1, 2).float() / 255
        words = torch.tensor([w for _, ws, *_ in items for w in ws])
        offsets = torch.tensor(np.cumsum([0] + [len(ws) for _, ws, *_ in items[:-1]]))
        gold = torch.tensor([bearing_column(b, COLUMNS) for _, _, b, _ in items])
        return image, words, offsets, gold

    @torch.no_grad()
    def evaluate(shuffle: bool) -> dict[str, float]:
        image, words, offsets, gold = batch(held_set)
        if shuffle:  # the frame's columns (as the policy's tokens) in random order: colours kept, places lost
            perm, block = torch.randperm(COLUMNS), fw // COLUMNS
            image = torch.cat([image[..., i * block:(i + 1) * block] for i in perm]
                              + [image[..., COLUMNS * block:]], dim=-1)
        guess = model(image, words, offsets).argmax(1)
        exact = float((guess == gold).float().mean())
        thirds = [bearing_answer(b) for _, _, b, _ in held_set]
        # the third a guessed column is in, by its centre's bearing
        right = [bearing_answer(column_bearing(int(g), COLUMNS)) == t for g, t in zip(guess, thirds)]
        per_task: dict[str, list[bool]] = {}
        for ok, item in zip(right, held_set):
            per_task.setdefault(item[3], []).append(ok)
        return {"exact": round(exact, 3), "answer": round(float(np.mean(right)), 3),
                "answer_per_task": {t: f"{sum(v)}/{len(v)}" for t, v in sorted(per_task.items())}}

    counts = np.bincount([bearing_answer(b) for _, _, b, _ in held_set], minlength=OUT_OF_VIEW + 1)
    print(json.dumps({"train": len(train_set), "heldout": len(held_set),
                      "most_common_answer_share": round(float(counts.max() / counts.sum()), 3)}), flush=True)
    for step in range(1, args.steps + 1):
        image, words, offsets, gold = batch(rng.sample(train_set, args.batch))
        loss = nn.functional.cross_entropy(model(image, words, offsets), gold)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 250 == 0 or step == args.steps:
            model.eval()
            print(json.dumps({"step": step, "loss": round(float(loss.detach()), 4), "real": evaluate(False),
                              "shuffled": evaluate(True), "elapsed_s": round(time.time() - started, 1)}), flush=True)
            model.train()
    return 0


if __name__ == "__main__":
    sys.exit(main())
