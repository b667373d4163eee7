#!/usr/bin/env python3
"""Does the policy press the interact key where the expert does? Greedy, instruction mode.

    python models/train/interact_probe.py --hf WORK/hf --demos DEMOS_DIR [--history 1] [--key F] [--show 4]

For the held-out episodes of train_policy.py (the same --seed and --heldout), this feeds the
policy the runtime's instruction-following window (decision_window) at every step whose action
presses --key (the expert opens a chest or door, or talks to the guard, about once an episode)
and decodes its answer greedily, as the runtime does. It reports how often the answer presses the
key too, and how often it is the expert's answer exactly. Teacher-forced, the key itself is easy
once the action's first chunks are given; the decision is earlier (stop, or walk on), so only a
generated answer measures it. A policy that walks up to its target in real time and never opens
it scores low here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "export"))
from lumine_prompts import PROMPT_SETS  # noqa: E402
from probe_common import add_policy_args, greedy_answer, heldout  # noqa: E402
from train_policy import decision_window, presses  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_policy_args(ap, history=1)
    ap.add_argument("--key", default="F", help="the interact key's name in the action language")
    ap.add_argument("--show", type=int, default=0, metavar="N", help="print the expert's and the policy's first N")
    args = ap.parse_args()
    torch.set_num_threads(2)
    from transformers import Qwen2VLForConditionalGeneration

    frames, episodes, encoder = heldout(args)
    model = Qwen2VLForConditionalGeneration.from_pretrained(args.hf).eval()
    points = pressed = exact = 0
    for episode in episodes:
        for t, step in enumerate(episode.steps):
            if not presses(step.action, args.key):
                continue
            batch = encoder.encode(decision_window(episode, t, args.history, PROMPT_SETS[args.prompts]), frames)
            text = greedy_answer(model, encoder, batch)
            answer = text.split("<|action_start|>")[-1].split("<|action_end|>")[0].strip()
            points += 1
            pressed += presses(answer, args.key)
            exact += answer == step.action.strip()
            if points <= args.show:
                print(json.dumps({"instruction": episode.instruction, "step": t, "expert": step.action,
                                  "policy": answer}))
    print(json.dumps({"points": points, "presses": round(pressed / max(1, points), 3),
                      "exact": round(exact / max(1, points), 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
