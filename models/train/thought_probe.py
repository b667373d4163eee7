#!/usr/bin/env python3
"""Does the policy think where the expert does? Teacher-forced, reasoning mode.

    python models/train/thought_probe.py --hf WORK/hf --demos DEMOS_DIR [--history 1] [--stride 10] [--show 10]

For the held-out episodes of train_policy.py (the same --seed and --heldout), this feeds the
policy the runtime's reasoning-mode window at every step where the expert writes a thought and
at every --stride-th other step (decision_window: the latest thought is the goal, the first
step's goal is the instruction), and reports, for each of the two kinds of step, the mean
probability of opening a thought (<|thought_start|> as the answer's first token) and how often
it is the most likely first token. A policy that has learned when to think scores high on the
first kind and low on the second; one that learned only how often the expert thinks scores the
same on both. With --show N it also prints what the policy writes (greedy) at the first N
thinking steps.
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
from train_policy import decision_window  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_policy_args(ap, history=1)
    ap.add_argument("--stride", type=int, default=10, help="probe every STRIDE-th step where the expert does not think")
    ap.add_argument("--show", type=int, default=0, metavar="N", help="print the greedy answer at N thinking steps")
    args = ap.parse_args()
    torch.set_num_threads(2)
    from transformers import Qwen2VLForConditionalGeneration

    frames, episodes, encoder = heldout(args)
    model = Qwen2VLForConditionalGeneration.from_pretrained(args.hf).eval()
    thought_start = encoder.tok.convert_tokens_to_ids("<|thought_start|>")
    tallies = {"thinks": [0, 0.0, 0], "acts": [0, 0.0, 0]}  # points, sum of p(thought), thought is argmax
    shown = 0
    for episode in episodes:
        for t, step in enumerate(episode.steps):
            kind = "thinks" if step.thought is not None else "acts"
            if kind == "acts" and t % args.stride:
                continue
            batch = encoder.encode(decision_window(episode, t, args.history, PROMPT_SETS[args.prompts], True), frames)
            with torch.no_grad():
                logits = model(**batch).logits[0, :-1]
            answer = (batch["labels"][0, 1:] != -100).nonzero()[:, 0]
            probs = logits[answer[0]].softmax(-1)
            tally = tallies[kind]
            tally[0] += 1
            tally[1] += float(probs[thought_start])
            tally[2] += int(probs.argmax()) == thought_start
            if kind == "thinks" and shown < args.show:
                shown += 1
                print(json.dumps({"instruction": episode.instruction, "step": t, "expert": step.thought,
                                  "policy": greedy_answer(model, encoder, batch)}))
    for kind, (n, p, top) in tallies.items():
        print(json.dumps({"steps": kind, "points": n, "mean_p_thought": round(p / max(1, n), 4),
                          "thought_is_argmax": round(top / max(1, n), 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
