#!/usr/bin/env python3
"""Does the policy stop scanning when its target shows? Teacher-forced, at decision points.

    python models/train/decision_probe.py --hf WORK/hf --demos DEMOS_DIR [--history 2]

A decision point (train_policy's decision_points) is a step after the looking expert's scan
and hold: the expert either scans on or, with the target in view, turns to it ("break"). Only
the frame tells which. For the held-out episodes of train_policy.py (the same --seed and
--heldout), this feeds the policy the instruction-following window that ends at each decision
point, with the expert's answers before it, and reports per outcome: how often every answer
token is the expert's, how often the first answer token (which decides between scanning on
and turning) is, and the mean probability of the scan's first token there. A policy that
scans for ever in real time scores near 1 on "scan on" and near 0 on "break"; one that uses
the frame scores well on both.

Per outcome it also asks the grounding question ("where to go: ...", one frame) of the same
frames ("grounding": answer_accuracy, with each answer's recall), which tells a policy that
does not see its target there from one that sees it and does not act on it; and, for a
policy trained with --sight, how often Sight names where the goal is ("sight").

With --reports (a policy trained with --report-thoughts), the windows are the reasoning
windows of the thinking-aloud expert (with_reports): per outcome, how often the policy starts
a thought there ("thinks"), how often every token of the thought's report is the expert's
("report", with each report's recall: teacher-forced through the plan before it), and the
action's first token after the expert's thought ("first_token"; "exact" then covers the
action's tokens only).

With --every-step STRIDE (an expert without a scan rhythm, such as the servo expert of the
experiment diff, where every step is a decision), the points are every STRIDE-th step of
the held-out episodes whose frame is labelled, grouped by where the goal is in that frame
(left, ahead, right, out of view); "mean_p_scan_first_token" then takes the episode's
first out-of-view answer as the scan.
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
from probe_common import add_policy_args, heldout  # noqa: E402
from train_policy import (SIGHT_HEAD_FILE, Encoder, answer_accuracy, arena_grounding_window,  # noqa: E402
                          OUT_OF_VIEW, bearing_answer, find_report, breaks_rhythm, decision_points, decision_window,
                          new_sight, sight_logits, with_reports)

# --every-step's outcomes: where the goal is in the step's frame (bearing_answer).
ANSWER_NAMES = {0: "left", 1: "ahead", 2: "right", OUT_OF_VIEW: "out of view"}


def report_tally(tally: dict, encoder: Encoder, logits: torch.Tensor, gold: torch.Tensor, answer: torch.Tensor,
                 step) -> None:
    """Counts, for one reasoning window: does the answer start a thought, and are all of the
    thought's report tokens (its first or last sentence, REPORTS) the expert's, per report."""
    predicted = logits[answer].argmax(-1) == gold[answer]
    tally["points"] = tally.get("points", 0) + 1
    tally["thinks"] = tally.get("thinks", 0) + bool(predicted[0]) * (step.thought is not None)
    report = find_report(step.thought)
    if report is None:
        return
    if step.thought.startswith(report):  # right after <|thought_start|>
        right = bool(predicted[1:1 + len(encoder.tok(report, add_special_tokens=False)["input_ids"])].all())
    else:
        n = len(encoder.tok(" " + report, add_special_tokens=False)["input_ids"])
        end = int((gold[answer] == encoder.tok.convert_tokens_to_ids("<|thought_end|>")).nonzero()[0, 0])
        right = bool(predicted[end - n:end].all())
    counts = tally.setdefault("by_report", {}).setdefault(report, [0, 0])
    counts[0] += right
    counts[1] += 1


def report_summary(tally: dict) -> dict:
    """report_tally's counts as shares and per-report recall."""
    by = tally.get("by_report", {})
    reported = sum(n for _, n in by.values())
    return {"thinks": round(tally["thinks"] / tally["points"], 3),
            "report": round(sum(r for r, _ in by.values()) / max(1, reported), 3),
            "recall": {k: f"{r}/{n}" for k, (r, n) in sorted(by.items())}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_policy_args(ap, history=2)
    ap.add_argument("--reports", action="store_true", help="probe the reasoning windows of --report-thoughts")
    ap.add_argument("--report-every-step", action="store_true", help="as train_policy.py's (with --reports)")
    ap.add_argument("--report-first", action="store_true", help="as train_policy.py's (with --reports)")
    ap.add_argument("--every-step", type=int, default=0, metavar="STRIDE",
                    help="probe every STRIDE-th step instead of the decision points, grouped by where the goal "
                         "is in the step's frame (an expert without a scan rhythm: every step is a decision)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    from transformers import Qwen2VLForConditionalGeneration

    frames, episodes, encoder = heldout(args)
    if args.reports:
        episodes = [with_reports(e, args.report_every_step, args.report_first) for e in episodes]
    model = Qwen2VLForConditionalGeneration.from_pretrained(args.hf).eval()
    # Trained with --sight: also ask its head where the goal is.
    sight = new_sight(model, encoder, 1.0, args.hf) if (args.hf / SIGHT_HEAD_FILE).exists() else None
    tallies: dict[str, list[float]] = {}
    reports: dict[str, dict] = {}  # per outcome, report_tally's counts
    action_start = encoder.tok.convert_tokens_to_ids("<|action_start|>")
    grounding: dict[str, list] = {}  # per outcome, the grounding question asked of each labelled point's frame
    for episode in episodes:
        points = (range(1, len(episode.steps), args.every_step) if args.every_step else decision_points(episode))
        first_scan = next((s for s in episode.steps if s.labelled_bearing and s.bearing is None), episode.steps[0])
        for t in points:
            if args.every_step:
                if not episode.steps[t].labelled_bearing:
                    continue
                outcome = ANSWER_NAMES[bearing_answer(episode.steps[t].bearing)]
                scan = first_scan
            else:
                scan = episode.steps[t - 2]
                outcome = "break" if breaks_rhythm(episode, t) else "scan on"
            batch = encoder.encode(decision_window(episode, t, args.history, PROMPT_SETS[args.prompts], args.reports),
                                   frames)
            with torch.no_grad():
                out = model(**batch, output_hidden_states=sight is not None)
            logits = out.logits[0, :-1]
            gold = batch["labels"][0, 1:]
            answer = (gold != -100).nonzero()[:, 0]
            if args.reports:
                report_tally(reports.setdefault(outcome, {}), encoder, logits, gold, answer, episode.steps[t])
                answer = answer[(gold[answer] == action_start).nonzero()[0, 0]:]  # the action, after the thought
            first = int(answer[1])  # answer[0] is <|action_start|>
            scan_first = encoder.tok(scan.action, add_special_tokens=False)["input_ids"][0]
            probs = logits[first].softmax(-1)
            tally = tallies.setdefault(outcome, [0, 0, 0, 0.0, 0, 0])
            if episode.steps[t].labelled_bearing and episode.instruction:
                grounding.setdefault(outcome, []).append(
                    arena_grounding_window(episode, episode.steps[t], PROMPT_SETS[args.prompts][0]))
            if sight is not None and episode.steps[t].labelled_bearing:
                with torch.no_grad():
                    guess = int(sight_logits(sight, out.hidden_states[-1], batch["input_ids"], 1)[0].argmax())
                tally[4] += 1
                tally[5] += guess == bearing_answer(episode.steps[t].bearing)
            tally[0] += 1
            tally[1] += bool((logits[answer].argmax(-1) == gold[answer]).all())
            tally[2] += int(probs.argmax()) == int(gold[first])
            tally[3] += float(probs[scan_first])
    for outcome, (n, exact, first, p_scan, sighted, seen) in sorted(tallies.items()):
        print(json.dumps({"outcome": outcome, "points": n, "exact": round(exact / n, 3),
                          "first_token": round(first / n, 3), "mean_p_scan_first_token": round(p_scan / n, 3)}
                         | ({"sight": round(seen / sighted, 3)} if sighted else {})
                         | ({"reports": report_summary(reports[outcome])} if outcome in reports else {})
                         | ({"grounding": answer_accuracy(model, encoder, frames, grounding[outcome])}
                            if grounding.get(outcome) else {})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
