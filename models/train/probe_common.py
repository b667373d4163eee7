"""What the probes share: the arguments that name a policy and its demonstrations, and the
held-out episodes train_policy.py kept back (the same --seed and --heldout give the same split)."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch

from lumine_prompts import PROMPT_SETS
from train_policy import Encoder, Episode, Frames, load_episodes


def add_policy_args(ap: argparse.ArgumentParser, history: int) -> None:
    """--hf, --demos, --base, --frame, --prompts, --history (default `history`), --heldout, --seed."""
    ap.add_argument("--hf", required=True, type=Path, help="the policy's checkpoint (train_policy.py --out)")
    ap.add_argument("--demos", required=True, type=Path, help="the demonstrations it was trained on")
    ap.add_argument("--base", type=Path, default=Path(__file__).resolve().parents[1] / "test-tiny" / "hf",
                    help="tokenizer and processor, as train_policy.py --base")
    ap.add_argument("--frame", default="256x144")
    ap.add_argument("--prompts", choices=sorted(PROMPT_SETS), default="arena")
    ap.add_argument("--history", type=int, default=history)
    ap.add_argument("--heldout", type=float, default=0.05, help="as train_policy.py (same split for the same seed)")
    ap.add_argument("--seed", type=int, default=0)


def heldout(args: argparse.Namespace) -> tuple[Frames, list[Episode], Encoder]:
    """The frames, held-out episodes and encoder for add_policy_args' arguments. train_policy.py
    shuffles the sorted episodes with its seed and holds out the first share; loading only
    those folders keeps a probe quick."""
    folders = sorted(p.parent for p in args.demos.rglob("meta.json"))
    random.Random(args.seed).shuffle(folders)
    held = folders[:max(1, int(len(folders) * args.heldout))]
    size = tuple(int(x) for x in args.frame.split("x"))
    frames = Frames(size)
    return frames, load_episodes(held, frames), Encoder(args.base, size)


def greedy_answer(model, encoder: Encoder, batch: dict[str, torch.Tensor], max_new_tokens: int = 40) -> str:
    """What the policy writes, decoded greedily as the runtime does, for the window `batch`
    (Encoder.encode) cut before its first answer: the text after `<|im_start|>assistant`."""
    prompt = int((batch["labels"][0, 1:] != -100).nonzero()[0, 0]) + 1
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "input_ids", "mm_token_type_ids")}
    with torch.no_grad():
        out = model.generate(input_ids=batch["input_ids"][:, :prompt],
                             mm_token_type_ids=batch["mm_token_type_ids"][:, :prompt],
                             attention_mask=torch.ones_like(batch["input_ids"][:, :prompt]),
                             max_new_tokens=max_new_tokens, do_sample=False, **inputs)
    return encoder.tok.decode(out[0, prompt:])
