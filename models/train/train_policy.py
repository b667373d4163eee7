#!/usr/bin/env python3
"""Train the practice arena's policy: the Lumine recipe in miniature, on the CPU.

    python models/train/train_policy.py --demos DEMOS_DIR --base models/test-tiny/hf \
        --out WORK/hf --log WORK/train_log.jsonl --seed 0

Input: trajectories in the format of `lumine record` / `lumine arena demos` (one folder per
episode: meta.json, steps.jsonl, frames/*.jpg). Output: a Hugging Face Qwen2-VL checkpoint
(same architecture and tokenizer as --base, fresh seeded weights) that models/export/export.py
turns into a model directory.

Each training sequence is exactly what the runtime shows the model (lumine-context, SPEC.md
section 4): the system prompt, then user/assistant turns, the goal text before the oldest frame
of the window, at most --history frames, a thought flushing the window in reasoning mode. The
loss is on the assistant answers of the window (teacher forcing: each answer sees the frames
and answers before it), so one sequence trains up to --history answers.

The three stages of the report, in miniature:
  1. action pre-training: frames and actions, no goal text (instruction-mode system prompt);
  2. instruction following: the task text is the goal;
  3. reasoning: reasoning-mode system prompt, answers carry the expert's thoughts where its
     plan changes, the latest thought is the goal and flushes the window.

Frames are scaled as the runtime scales them (window size -> the model's frame size, bicubic)
and preprocessed by transformers' Qwen2VLImageProcessor, which the engine reproduces.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import time
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "export"))
from lumine_prompts import PROMPT_SETS  # noqa: E402

# Files of the base checkpoint that define the tokenizer and the processor (copied unchanged).
PROCESSOR_FILES = [
    "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "processor_config.json", "generation_config.json",
]


@dataclass
class Step:
    frame: int  # index into Frames
    action: str  # canonical action text
    thought: str | None
    changed: bool = True  # decides otherwise than the episode's previous step (decision())
    bearing: float | None = None  # degrees right of the view's centre of the task's goal; None out of view
    labelled_bearing: bool = False  # the demonstration says where its goal is (goal_bearing.jsonl)
    objects: np.ndarray | None = None  # per patch of the frame, its object classes as a bit mask (object_labels.jsonl)


@dataclass
class Episode:
    name: str
    instruction: str | None
    steps: list[Step] = field(default_factory=list)


class Frames:
    """Every frame of the data set, scaled to the model's frame size, as uint8 HxWx3."""

    def __init__(self, size: tuple[int, int]):
        self.size = size
        self.images: list[np.ndarray] = []

    def add(self, path: Path) -> int:
        with Image.open(path) as im:
            scaled = im.convert("RGB").resize(self.size, Image.BICUBIC)
        self.images.append(np.asarray(scaled, dtype=np.uint8))
        return len(self.images) - 1


def decision(action: str) -> tuple:
    """What an action decides, coarsely: its keys, and its mouse motion in tens of units.
    The expert's steering corrections of a unit or two each step are not decisions."""
    mouse, *chunks = action.split(";")
    try:
        motion = tuple(round(int(v) / 10) for v in mouse.split())
    except ValueError:  # not the canonical text: compare it whole
        return (action,)
    return motion, tuple(c.strip() for c in chunks)


def read_step_labels(path: Path, value) -> dict:
    """A labels file beside a trajectory (JSON lines, one per step, each with its "step"):
    per step, `value` of its record. Missing (a human's recording): no labels."""
    if not path.exists():
        return {}
    records = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {int(rec["step"]): value(rec) for rec in records}


def read_bearings(path: Path) -> dict[int, float | None]:
    """`lumine arena demos`' goal_bearing.jsonl: per step, where the goal is in the frame."""
    return read_step_labels(path, lambda rec: rec["bearing_deg"])


def read_object_labels(path: Path) -> dict[int, np.ndarray]:
    """`lumine arena demos --label-grid`'s object_labels.jsonl: per step, a grid of bit masks
    (rows, columns) saying which object classes each cell of the frame shows."""
    def grid(rec: dict) -> np.ndarray:
        cols, rows = rec["grid"]
        return np.asarray(rec["cells"], dtype=np.int32).reshape(rows, cols)
    return read_step_labels(path, grid)


def load_episodes(roots: list[Path], frames: Frames) -> list[Episode]:
    """Reads every trajectory folder under the roots (a folder holding meta.json)."""
    episodes = []
    for root in roots:
        for meta_path in sorted(root.rglob("meta.json")):
            folder = meta_path.parent
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != "lumine-trajectory":
                continue
            episode = Episode(name=str(folder), instruction=meta.get("instruction"))
            bearings = read_bearings(folder / "goal_bearing.jsonl")
            objects = read_object_labels(folder / "object_labels.jsonl")
            for line in (folder / "steps.jsonl").read_text().splitlines():
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    break  # a torn last line (the format allows it)
                if rec.get("frame") is None or rec.get("actor") == "agent":
                    continue  # only human or expert input is a demonstration
                step = Step(frames.add(folder / rec["frame"]), rec["action"], rec.get("thought"))
                if rec["step"] in bearings:
                    step.bearing, step.labelled_bearing = bearings[rec["step"]], True
                step.objects = objects.get(rec["step"])
                episode.steps.append(step)
            if episode.steps:
                episodes.append(episode)
    mark_changed(episodes, 1)
    return episodes


def mark_changed(episodes: list[Episode], lag: int) -> None:
    """Marks which steps change the decision (decision()), against the step `lag` back
    (load_episodes: the one before; the first `lag` steps always do). The looking expert scans in a rhythm of two (turn 45, hold, turn 45): against
    the step before every scanning step is a change, and the one that matters, where the
    target comes into view and the rhythm breaks, is not told apart. Against the step two
    back the rhythm is no change and the break is."""
    for e in episodes:
        for i, step in enumerate(e.steps):
            step.changed = i < lag or decision(e.steps[i - lag].action) != decision(step.action)


def split_heldout(episodes: list[Episode], share: float, rng: random.Random) -> tuple[list[Episode], list[Episode]]:
    """Shuffles the episodes with `rng` and returns (held out, training): at least one held out."""
    rng.shuffle(episodes)
    n_held = max(1, int(len(episodes) * share))
    return episodes[:n_held], episodes[n_held:]


@dataclass
class Window:
    """One training sequence: the runtime's context at some step."""

    system: str
    goal: str | None
    steps: list[Step]
    labelled: list[bool]  # per step: is its answer in the loss
    reasoning: bool


def answer_text(step: Step, reasoning: bool) -> str:
    thought = f"<|thought_start|>{step.thought}<|thought_end|>" if reasoning and step.thought else ""
    return f"{thought}<|action_start|>{step.action}<|action_end|>"


def windows(episode: Episode, stage: int, history: int, prompts: tuple[str, str],
            every_thought: bool = False) -> list[Window]:
    """Replays the context window over the episode and cuts sequences from it.

    A sequence is emitted every `history` steps (by then the window has been renewed), at
    the step before a thought (reasoning: the window is about to be flushed) and at the
    end. Its answers are all in the loss, except the oldest step's when it carries the
    thought that is now the goal (the model never answers that under its own thought).

    The step that writes a thought is in a sequence only when that sequence is due anyway
    (never the episode's first), so reasoning rarely trains the writing of thoughts. With
    `every_thought` (--every-thought), the sequence is emitted at the thinking step itself
    instead, so every thought is learned. Off by default only because the bundled model was
    trained without it and train_arena.sh reproduces it (models/train/README.md)."""
    reasoning = stage == 3
    system = prompts[1] if reasoning else prompts[0]
    out: list[Window] = []
    window: list[Step] = []
    thought: str | None = None
    since_emit = 0
    goal_of = lambda: (thought if thought is not None else episode.instruction) if stage >= 2 else None  # noqa: E731

    def emit() -> None:
        labelled = [not (i == 0 and reasoning and s.thought is not None and s.thought == thought)
                    for i, s in enumerate(window)]
        if any(labelled):
            out.append(Window(system, goal_of(), list(window), labelled, reasoning))

    for i, step in enumerate(episode.steps):
        window.append(step)
        window = window[-history:]
        since_emit += 1
        last = i == len(episode.steps) - 1
        if every_thought:
            due = reasoning and step.thought is not None
        else:
            due = reasoning and not last and episode.steps[i + 1].thought is not None
        if since_emit >= history or last or due:
            emit()
            since_emit = 0
        if reasoning and step.thought is not None:
            window = [step]  # the thought flushes every older step and becomes the goal
            thought = step.thought
            since_emit = 0
    return out


def decision_window(episode: Episode, t: int, history: int, prompts: tuple[str, str],
                    reasoning: bool = False) -> Window:
    """The runtime's window at step `t` (lumine-context), only `t`'s answer in the loss: at
    most `history` frames; in reasoning mode, none before the latest thought's step, and
    that thought is the goal."""
    first = max(0, t - history + 1)
    goal = episode.instruction
    if reasoning:
        thought_at = [k for k in range(t) if episode.steps[k].thought is not None]
        if thought_at:
            first = max(first, thought_at[-1])
            goal = episode.steps[thought_at[-1]].thought
    steps = episode.steps[first:t + 1]
    return Window(prompts[1] if reasoning else prompts[0], goal, steps, [False] * (len(steps) - 1) + [True], reasoning)


def is_scan_hold(turn: Step, hold: Step) -> bool:
    """Whether two steps are the looking expert's scan rhythm: a turn on the spot (mouse
    only, no keys), then a step that does nothing while the turn lands."""
    turned, held = decision(turn.action), decision(hold.action)
    if len(turned) != 2 or len(held) != 2:
        return False  # not the canonical action text
    (t_mouse, t_keys), (h_mouse, h_keys) = turned, held
    idle = lambda keys: all(k == "" for k in keys)  # noqa: E731
    return t_mouse[0] != 0 and idle(t_keys) and h_mouse == (0, 0, 0) and idle(h_keys)


def decision_points(episode: Episode) -> list[int]:
    """The episode's decision points: the steps after a scan and its hold (is_scan_hold).
    There the expert scans on, or, with the target in view, turns to it; only the frame
    tells which."""
    return [t for t in range(2, len(episode.steps)) if is_scan_hold(episode.steps[t - 2], episode.steps[t - 1])]


def breaks_rhythm(episode: Episode, t: int) -> bool:
    """At decision point `t`: whether the expert turns away from its scan there (the target
    came into view) rather than scanning on."""
    return decision(episode.steps[t].action) != decision(episode.steps[t - 2].action)


def decision_windows(episode: Episode, history: int, prompts: tuple[str, str], copies: int) -> list[Window]:
    """`copies` of the window ending at each of the episode's decision points. The answers
    before a decision point say "scan on", and that is what a policy learns when such steps
    are a few in a hundred and the ones where the rhythm breaks fewer still (it scans for
    ever); these make them a larger share."""
    return [decision_window(episode, t, history, prompts) for t in decision_points(episode) for _ in range(copies)]


def balanced_decision_windows(episodes: list[Episode], n: int, history: int, prompts: tuple[str, str],
                              rng: random.Random, reasoning: bool = False) -> list[Window]:
    """`n` windows ending at decision points (decision_window), half where the expert breaks
    its rhythm and half where it scans on, drawn with replacement. A break is about one
    answer in twenty, and only there does the action depend on the frame alone; in these
    it is half the lesson."""
    breaks: list[tuple[Episode, int]] = []
    scans: list[tuple[Episode, int]] = []
    for e in episodes:
        for t in decision_points(e):
            (breaks if breaks_rhythm(e, t) else scans).append((e, t))
    if not breaks or not scans:
        return []
    return [decision_window(*rng.choice(breaks if i % 2 == 0 else scans), history, prompts, reasoning)
            for i in range(n)]


# The arena's object colours (app/arena's Colour::rgb), for stage 0's squares.
GROUND_COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 90, 240), "yellow": (240, 210, 40)}
THIRDS = 3


def grounding_windows(frames: Frames, n: int, rng: random.Random, system: str) -> list[Window]:
    """Stage 0, grounding: `n` synthetic frames, each with one to three squares of different
    arena colours and sizes on a sky-and-floor background; the goal asks where one colour
    is and the answer is the third of the frame its centre is in (0 left, 1 middle, 2
    right). A pre-trained VLM brings this from its own pre-training; a policy trained from
    scratch on actions alone never learned it (locate_probe.py, models/train/README.md)."""
    w, h = frames.size
    out = []
    for _ in range(n):
        img = np.empty((h, w, 3), np.uint8)
        img[: h // 2] = (rng.randint(70, 140),) * 3
        img[h // 2:] = (rng.randint(30, 90),) * 3
        names = rng.sample(sorted(GROUND_COLOURS), rng.randint(1, 3))
        centres = []
        for name in names:
            size = rng.randint(12, 64)
            x, y = rng.randint(0, w - size), rng.randint(0, h - size)
            img[y:y + size, x:x + size] = GROUND_COLOURS[name]
            centres.append(x + size // 2)
        frames.images.append(img)
        pick = rng.randrange(len(names))
        third = min(THIRDS - 1, centres[pick] * THIRDS // w)
        step = Step(len(frames.images) - 1, str(third), None)
        out.append(Window(system, f"where is the {names[pick]} one", [step], [True], False))
    return out


# Bearings within this many degrees of the view's centre count as ahead (the view is
# about 66 degrees wide, so this splits it in thirds).
AHEAD_DEG = 11.0
OUT_OF_VIEW = THIRDS  # the answer when the goal is not in the frame


def bearing_answer(bearing: float | None) -> int:
    """The third of the view the goal is in (0 left, 1 ahead, 2 right), or OUT_OF_VIEW."""
    if bearing is None:
        return OUT_OF_VIEW
    return 0 if bearing < -AHEAD_DEG else 2 if bearing > AHEAD_DEG else 1


# The arena camera's plane half-width (app/arena's render.rs PLANE): a bearing b is drawn at
# tan(b) / PLANE of the way from the frame's centre to its edge.
CAMERA_PLANE = 0.66


def bearing_column(bearing: float | None, columns: int) -> int:
    """The column of visual tokens (of `columns`) the goal's centre is drawn in, or `columns`
    when it is out of view (GoalPointer's last class)."""
    if bearing is None:
        return columns
    across = (math.tan(math.radians(bearing)) / CAMERA_PLANE + 1) / 2
    return min(columns - 1, max(0, int(across * columns)))


def column_bearing(column: int, columns: int) -> float | None:
    """The bearing of a column's centre (bearing_column's inverse), or None for `columns`
    (out of view)."""
    if column >= columns:
        return None
    return math.degrees(math.atan(((column + 0.5) / columns * 2 - 1) * CAMERA_PLANE))


class GoalPointer(torch.nn.Module):
    """A training-only head for dense grounding (--dense): scores each visual token of a
    frame from the decoder's last hidden state, and asks which column of tokens holds the
    goal named in the text before it, or none. The answer's single digit gives one weak
    signal per frame and a vision tower trained from scratch learns it slowly (README);
    this gives every token a target. Not exported: the policy itself is unchanged."""

    def __init__(self, hidden: int):
        super().__init__()
        self.score = torch.nn.Linear(hidden, 1)
        self.none = torch.nn.Parameter(torch.zeros(1))

    def logits(self, hidden: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
        """`hidden`: one frame's visual tokens (rows*columns, hidden), row-major. Returns
        columns+1 logits: each column's (log-sum-exp over its rows), then out of view."""
        per_token = self.score(hidden.float()).view(rows, columns)
        return torch.cat([per_token.logsumexp(0), self.none])


# GoalPointer's weights beside a checkpoint trained with --dense.
POINTER_FILE = "goal_pointer.pt"


def frame_tokens(hidden: torch.Tensor, input_ids: torch.Tensor, pad: int, grid: tuple[int, int],
                 frame: int) -> torch.Tensor:
    """The hidden states (rows*columns, hidden) of the visual tokens of the sequence's
    `frame`-th frame, row-major (the merger's order)."""
    per_frame = grid[0] * grid[1]
    at = (input_ids[0] == pad).nonzero()[:, 0]
    return hidden[0, at[frame * per_frame:(frame + 1) * per_frame]]


def dense_loss(pointer: GoalPointer, hidden: torch.Tensor, input_ids: torch.Tensor, w: Window,
               pad: int, grid: tuple[int, int]) -> torch.Tensor | None:
    """GoalPointer's mean cross-entropy over the window's frames whose goal bearing is known
    (a goal text in the window is needed: without it there is nothing to point at)."""
    if not w.goal:
        return None
    rows, columns = grid
    losses = []
    for i, step in enumerate(w.steps):
        if not step.labelled_bearing:
            continue
        tokens = frame_tokens(hidden, input_ids, pad, grid, i)
        target = torch.tensor(bearing_column(step.bearing, columns))
        losses.append(torch.nn.functional.cross_entropy(pointer.logits(tokens, rows, columns)[None], target[None]))
    return torch.stack(losses).mean() if losses else None


def arena_grounding_windows(episodes: list[Episode], n: int, rng: random.Random, system: str,
                            out_share: float | None = None) -> list[Window]:
    """Grounding on the arena's own frames: `n` labelled steps drawn from the episodes, each
    a one-frame window whose goal asks where the instruction's target is and whose answer
    is bearing_answer. The synthetic squares of grounding_windows taught a skill the action
    stages did not use; this asks it of the very frames the actions are learned from.

    With `out_share`, answers are drawn by kind: "out of view" that share of the time, and
    left, ahead and right equally often in the rest. The expert mostly faces its target or
    has it out of view, so left and right are about one answer in ten, and a model that
    never gives them loses little; those are the frames where the expert turns to its
    target."""
    labelled = [(e, s) for e in episodes if e.instruction for s in e.steps if s.labelled_bearing]
    if not labelled:
        return []
    if out_share is None:
        return [arena_grounding_window(*labelled[rng.randrange(len(labelled))], system) for _ in range(n)]
    by_answer: dict[int, list[tuple[Episode, Step]]] = {}
    for e, s in labelled:
        by_answer.setdefault(bearing_answer(s.bearing), []).append((e, s))
    return [arena_grounding_window(*pick, system) for pick in balanced_draw(by_answer, n, out_share, rng)]


def balanced_draw(by_answer: dict[int, list], n: int, out_share: float, rng: random.Random) -> list:
    """`n` items drawn from pools keyed by where the goal is (bearing_answer): from "out of
    view" `out_share` of the time, from left, ahead and right equally often in the rest
    (from whichever kind there is, when one is missing)."""
    pools = dict(by_answer)
    out_pool = pools.pop(OUT_OF_VIEW, [])
    in_pools = [pools[a] for a in sorted(pools)]
    if not out_pool and not in_pools:
        return []
    out = []
    for _ in range(n):
        out_of_view = not in_pools or (bool(out_pool) and rng.random() < out_share)
        out.append(rng.choice(out_pool if out_of_view else rng.choice(in_pools)))
    return out


# The report a thought ends with (with_reports): where the goal is, as bearing_answer says.
REPORTS = {0: "It is on the left.", 1: "It is ahead.", 2: "It is on the right.", OUT_OF_VIEW: "It is not in view."}


def find_report(text: str | None) -> str | None:
    """The report (a REPORTS value) a thought starts or ends with, or None."""
    return next((r for r in REPORTS.values() if text and (text.startswith(r) or text.endswith(r))), None)


def with_reports(episode: Episode, every_step: bool = False, first: bool = False) -> Episode:
    """A copy of the episode in which the expert thinks aloud at every decision point
    (decision_points; with `every_step`, at every step) and with each of its own thoughts:
    its plan (its latest thought, or the instruction), then where its goal is in that step's
    frame (REPORTS). The grounding answer is then text in the action's own context, and the
    action after it follows from that text: the scan does not depend on the frame alone any
    more. The runtime makes each thought the goal, so a thought carries the plan forward.
    With `first`, the report comes before the plan, right after the frame."""
    plan = episode.instruction or ""
    points = set(range(len(episode.steps))) if every_step else set(decision_points(episode))
    steps = []
    for t, step in enumerate(episode.steps):
        if step.thought is not None:
            plan = step.thought
        if step.labelled_bearing and (t in points or step.thought is not None):
            report = REPORTS[bearing_answer(step.bearing)]
            step = dataclasses.replace(step, thought=f"{report} {plan}" if first else f"{plan} {report}")
        steps.append(step)
    return Episode(episode.name, episode.instruction, steps)


def balanced_answer_windows(data: list[Window], n: int, out_share: float, rng: random.Random) -> list[Window]:
    """`n` of the windows whose last step's frame is labelled with where the goal is, drawn by
    that answer (balanced_draw): for an expert whose action follows from the frame alone
    (the servo), left and right are a few answers in a hundred, and the action learns to
    ignore them unless they are drawn as often as the rest."""
    pools: dict[int, list[Window]] = {}
    for w in data:
        if w.steps[-1].labelled_bearing:
            pools.setdefault(bearing_answer(w.steps[-1].bearing), []).append(w)
    return balanced_draw(pools, n, out_share, rng)


def drawn_to_share(pool: list[Window], total: int, share: float, rng: random.Random) -> list[Window]:
    """More windows drawn from `pool` (windows already among `total`), with replacement, until
    the pool's kind is `share` of the total and these together."""
    if not pool or share >= 1:
        return []
    n = max(0, round((share * total - len(pool)) / (1 - share)))
    return [rng.choice(pool) for _ in range(n)]


def thinking_windows(data: list[Window], share: float, rng: random.Random) -> list[Window]:
    """Reasoning windows whose last answer writes a thought, drawn with replacement until they
    are `share` of `data` and these together. The expert thinks about once in thirty steps, and
    a policy trained on that rate never opens a thought at all, not even at the first step where
    the goal is still the instruction (models/train/README.md, eleventh session)."""
    thinking = [w for w in data if w.reasoning and w.labelled[-1] and w.steps[-1].thought is not None]
    return drawn_to_share(thinking, len(data), share, rng)


def presses(action: str, key: str) -> bool:
    """Whether an action string holds `key` in any of its chunks."""
    return any(key in chunk.split() for chunk in action.split(";")[1:])


def interaction_windows(data: list[Window], share: float, rng: random.Random, key: str = "F") -> list[Window]:
    """Windows whose last answer presses the interact key, drawn with replacement until they are
    `share` of `data` and these together. The expert presses it about once in sixty steps, at
    its target, and a policy trained on that rate walks up to the target and on (greedy answers
    press it at 0.22 of those steps for the bundled model; interact_probe.py)."""
    pressing = [w for w in data if w.labelled[-1] and presses(w.steps[-1].action, key)]
    return drawn_to_share(pressing, len(data), share, rng)


def report_of(w: Window) -> int | None:
    """The report (bearing_answer) that the last answer of a reasoning window ends its thought
    with, or None."""
    report = find_report(w.steps[-1].thought) if w.reasoning else None
    return next((a for a, r in REPORTS.items() if r == report), None)


def balanced_report_windows(data: list[Window], n: int, out_share: float, rng: random.Random) -> list[Window]:
    """`n` of the windows whose last answer reports where the goal is, drawn by report
    (balanced_draw: the balance of arena_grounding_windows, for the report in context)."""
    pools: dict[int, list[Window]] = {}
    for w in data:
        a = report_of(w)
        if a is not None:
            pools.setdefault(a, []).append(w)
    return balanced_draw(pools, n, out_share, rng)


def noisy_goal_reports(data: list[Window], share: float, rng: random.Random) -> list[Window]:
    """Replaces the report at the end of a reasoning window's goal (the last thought, which
    the window's oldest step may still show) with a random one in `share` of the windows.
    The report just before is nearly always the one due now, so a policy learns to copy it
    and never reads the frame; one it cannot trust, it has to check."""
    out = []
    for w in data:
        old = find_report(w.goal) if w.reasoning else None
        if old is None or rng.random() >= share:
            out.append(w)
            continue
        new = rng.choice(list(REPORTS.values()))
        goal = new + w.goal[len(old):] if w.goal.startswith(old) else w.goal[:-len(old)] + new
        steps = list(w.steps)
        if steps[0].thought == w.goal:
            steps[0] = dataclasses.replace(steps[0], thought=goal)
        out.append(dataclasses.replace(w, goal=goal, steps=steps))
    return out


def arena_grounding_window(episode: Episode, step: Step, system: str) -> Window:
    """The one-frame window that asks where the episode's target is in `step`'s frame
    (its answer: bearing_answer)."""
    answer = Step(step.frame, str(bearing_answer(step.bearing)), None, bearing=step.bearing, labelled_bearing=True)
    return Window(system, f"where to go: {episode.instruction}", [answer], [True], False)


class Encoder:
    """Turns a window into model inputs, rendering the chat exactly like the engine."""

    def __init__(self, base: Path, frame_size: tuple[int, int]):
        from transformers import AutoProcessor

        self.processor = AutoProcessor.from_pretrained(base)
        self.tok = self.processor.tokenizer
        ids = lambda t: self.tok.convert_tokens_to_ids(t)  # noqa: E731
        self.im_start, self.im_end, self.image_pad = ids("<|im_start|>"), ids("<|im_end|>"), ids("<|image_pad|>")
        merge = self.processor.image_processor.merge_size
        probe = self.processor.image_processor(images=[Image.new("RGB", frame_size)], return_tensors="pt")
        self.grid = probe["image_grid_thw"][0]
        self.pads_per_frame = int(self.grid.prod()) // (merge * merge)
        self.merged_grid = (int(self.grid[1]) // merge, int(self.grid[2]) // merge)  # rows, columns

    def render(self, w: Window) -> tuple[str, list[bool]]:
        text = f"<|im_start|>system\n{w.system}<|im_end|>\n"
        for i, step in enumerate(w.steps):
            goal = w.goal if i == 0 and w.goal else ""
            text += f"<|im_start|>user\n{goal}<|vision_start|><|image_pad|><|vision_end|><|im_end|>\n"
            text += f"<|im_start|>assistant\n{answer_text(step, w.reasoning)}<|im_end|>\n"
        return text, w.labelled

    def encode(self, w: Window, frames: Frames, *, owners: bool = False) -> dict[str, torch.Tensor]:
        """The model's inputs for `w`; with `owners`, also "answer_of": per token, the step
        whose answer it is in the loss for, or -1 (weighted_loss needs it)."""
        text, labelled = self.render(w)
        raw = self.tok(text, add_special_tokens=False)["input_ids"]
        ids: list[int] = []
        labels: list[int] = []
        answer_of: list[int] = []
        turn = -1  # index of the assistant turn we are in, or -1
        assistant_seen = 0
        i = 0
        while i < len(raw):
            t = raw[i]
            if t == self.image_pad:
                ids += [t] * self.pads_per_frame
                labels += [-100] * self.pads_per_frame
                answer_of += [-1] * self.pads_per_frame
                i += 1
                continue
            if t == self.im_start:
                # the role is the text up to the newline after <|im_start|>
                j, role = i + 1, ""
                while j < len(raw) and "\n" not in role:
                    role += self.tok.decode([raw[j]])
                    j += 1
                ids += raw[i:j]
                labels += [-100] * (j - i)
                answer_of += [-1] * (j - i)
                if role.strip() == "assistant":
                    turn = assistant_seen
                    assistant_seen += 1
                else:
                    turn = -1
                i = j
                continue
            ids.append(t)
            in_loss = turn >= 0 and labelled[turn]
            labels.append(t if in_loss else -100)
            answer_of.append(turn if in_loss else -1)
            if t == self.im_end:
                turn = -1
            i += 1
        images = [Image.fromarray(frames.images[s.frame]) for s in w.steps]
        pix = self.processor.image_processor(images=images, return_tensors="pt")
        input_ids = torch.tensor([ids])
        return {
            "input_ids": input_ids,
            # text 0, image 1: transformers' M-RoPE needs it (QWEN2VL.md section 4)
            "mm_token_type_ids": (input_ids == self.image_pad).to(torch.int32),
            "labels": torch.tensor([labels]),
            "pixel_values": pix["pixel_values"],
            "image_grid_thw": pix["image_grid_thw"],
        } | ({"answer_of": torch.tensor([answer_of])} if owners else {})


# The arena's object label classes (app/arena's render.rs object_label and door_label):
# bits 1 to 15 of a mask; bit 0 (nothing) is never set.
OBJECT_CLASSES = 15
# ObjectHead's weights beside a checkpoint trained with --object-labels.
OBJECT_HEAD_FILE = "object_head.pt"


class ObjectHead(torch.nn.Module):
    """A training-only head (--object-labels): from each merged visual token (what the
    decoder sees), which object classes each of its merge x merge patches shows. The
    renderer knows what every pixel shows, so every patch of every frame gets a target,
    whether or not the task's goal is in view: the vision tower learns what a chest, a
    crystal, a door or the guard look like, in every colour, from all of the data rather
    than from the one goal-column answer a frame gives. Not exported."""

    def __init__(self, hidden: int, merge: int):
        super().__init__()
        self.merge = merge
        self.classes = torch.nn.Linear(hidden, merge * merge * OBJECT_CLASSES)

    def forward(self, merged: torch.Tensor) -> torch.Tensor:
        """(tokens, hidden) -> logits (tokens, merge*merge, OBJECT_CLASSES)."""
        return self.classes(merged.float()).view(merged.shape[0], self.merge * self.merge, OBJECT_CLASSES)


def object_targets(masks: np.ndarray, merge: int) -> torch.Tensor:
    """A frame's label grid (rows, columns of patches) as ObjectHead's targets: (tokens,
    merge*merge, OBJECT_CLASSES), tokens row-major and each token's patches row-major,
    the order in which Qwen2-VL's processor lays out the patches it merges."""
    rows, cols = masks.shape
    grouped = masks.reshape(rows // merge, merge, cols // merge, merge).transpose(0, 2, 1, 3)
    flat = grouped.reshape(-1, merge * merge)
    bits = (flat[..., None] >> np.arange(1, OBJECT_CLASSES + 1)) & 1
    return torch.from_numpy(bits.astype(np.float32))


@dataclass
class Objects:
    """Object labels during training (ObjectHead): the head, its loss weight, the frames a
    step draws from and how many."""
    head: ObjectHead
    weight: float
    batch: int
    merge: int
    items: list[tuple[int, np.ndarray]]  # (frame, label grid)
    rng: random.Random


def object_loss(model, encoder: "Encoder", frames: Frames, objects: Objects,
                items: list[tuple[int, np.ndarray]] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The vision tower alone on a batch of labelled frames (drawn at random, or `items`):
    ObjectHead's mean binary cross-entropy, and its logits and targets."""
    if items is None:
        items = objects.rng.sample(objects.items, objects.batch)
    pix = encoder.processor.image_processor(images=[Image.fromarray(frames.images[f]) for f, _ in items],
                                            return_tensors="pt")
    merged = model.model.visual(pix["pixel_values"], grid_thw=pix["image_grid_thw"]).pooler_output
    logits = objects.head(merged)
    target = torch.cat([object_targets(m, objects.merge) for _, m in items])
    if target.shape[0] != logits.shape[0]:
        raise ValueError(f"object labels give {target.shape[0]} tokens a batch, the frames {logits.shape[0]}: "
                         "the label grid must be the frame's patch grid (--label-grid)")
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, target), logits, target


@torch.no_grad()
def object_accuracy(model, encoder: "Encoder", frames: Frames, objects: Objects,
                    held: list[tuple[int, np.ndarray]]) -> dict[str, float]:
    """ObjectHead on held-out frames: of the (patch, class) pairs the frame shows, the share
    found (recall), and of those it claims, the share right (precision)."""
    model.eval()
    hit = claimed = present = 0
    for i in range(0, len(held), objects.batch):
        _, logits, target = object_loss(model, encoder, frames, objects, held[i:i + objects.batch])
        guess = logits > 0
        hit += int((guess & (target > 0)).sum())
        claimed += int(guess.sum())
        present += int(target.sum())
    model.train()
    return {"recall": round(hit / max(1, present), 3), "precision": round(hit / max(1, claimed), 3)}


@dataclass
class Dense:
    """Dense grounding during training (GoalPointer): the head, its loss weight, and what it
    needs to find a frame's visual tokens."""
    pointer: GoalPointer
    weight: float
    pad: int
    grid: tuple[int, int]


@dataclass
class Sight:
    """Where the goal is, asked where the action is decided (--sight): a training-only
    linear head reads the decoder's last hidden state at each answer's <|action_start|>
    (the position whose logits give the action's first token) and names the goal's
    bearing_answer: it asks for where the goal is in the very state the action is read
    from, on every labelled step (README: it cannot put there what the frame's tokens do
    not hold). Not exported."""
    head: torch.nn.Linear
    weight: float
    action_start: int


# Sight's head beside a checkpoint trained with --sight.
SIGHT_HEAD_FILE = "sight_head.pt"


def new_sight(model, encoder: "Encoder", weight: float, checkpoint: Path | None) -> Sight:
    """A Sight for `model`: a fresh head, or the one saved beside `checkpoint` if there is one."""
    head = torch.nn.Linear(model.config.text_config.hidden_size, OUT_OF_VIEW + 1)
    if checkpoint and (checkpoint / SIGHT_HEAD_FILE).exists():
        head.load_state_dict(torch.load(checkpoint / SIGHT_HEAD_FILE))
    return Sight(head, weight, encoder.tok.convert_tokens_to_ids("<|action_start|>"))


def sight_logits(sight: Sight, hidden: torch.Tensor, input_ids: torch.Tensor, answers: int) -> torch.Tensor:
    """Sight's logits (one row per answer of the sequence's `answers`, in order) from its last
    hidden state. The arena's system prompt spells the action format out, <|action_start|>
    included: the answers' markers are the last ones."""
    at = (input_ids[0] == sight.action_start).nonzero()[:, 0][-answers:]
    return sight.head(hidden[0, at].float())


def sight_loss(sight: Sight, hidden: torch.Tensor, input_ids: torch.Tensor, w: Window) -> torch.Tensor | None:
    """Sight's mean cross-entropy over the window's answers whose goal bearing is known and
    in the loss (a goal text is needed: without it there is no goal to name)."""
    if not w.goal:
        return None
    rows = [i for i, step in enumerate(w.steps) if step.labelled_bearing and w.labelled[i]]
    if not rows or ";" not in w.steps[0].action:
        return None  # nothing to name, or a grounding window (its answer is a digit, no action)
    logits = sight_logits(sight, hidden, input_ids, len(w.steps))
    target = torch.tensor([bearing_answer(w.steps[i].bearing) for i in rows])
    return torch.nn.functional.cross_entropy(logits[rows], target)


def weighted_loss(model, batch: dict[str, torch.Tensor], w: Window, changed_weight: float,
                  dense: Dense | None = None, sight: Sight | None = None) -> torch.Tensor:
    """The answers' mean token loss, with the answers that change the decision (decision())
    weighted `changed_weight` times. Most answers repeat the one before (walking on, scanning on);
    the rare turns toward what the frame shows are the decisions that matter, and an
    unweighted mean lets a policy that ignores them score well (keyframe weighting).
    With `dense`, plus its weight times dense_loss; with `sight`, likewise sight_loss."""
    answer_of = batch.pop("answer_of")
    out = model(**batch, output_hidden_states=dense is not None or sight is not None)
    extra = 0.0
    if dense is not None:
        d = dense_loss(dense.pointer, out.hidden_states[-1], batch["input_ids"], w, dense.pad, dense.grid)
        extra = extra + (dense.weight * d if d is not None else 0.0)
    if sight is not None:
        g = sight_loss(sight, out.hidden_states[-1], batch["input_ids"], w)
        extra = extra + (sight.weight * g if g is not None else 0.0)
    if changed_weight == 1.0:
        return out.loss + extra
    labels = batch["labels"]
    logits = out.logits[0, :-1]
    gold, owner = labels[0, 1:], answer_of[0, 1:]
    mask = gold != -100
    per_token = torch.nn.functional.cross_entropy(logits[mask].float(), gold[mask], reduction="none")
    changed = torch.tensor([w.steps[int(k)].changed for k in owner[mask]])
    weights = torch.where(changed, changed_weight, 1.0)
    return (per_token * weights).sum() / weights.sum() + extra


def fresh_model(base: Path, seed: int, rope_theta: float | None = None, mrope_section: list[int] | None = None,
                vision_size: list[int] | None = None):
    """The base checkpoint's architecture with new seeded weights (transformers' own init).

    `rope_theta` replaces the text decoder's rotary base and `mrope_section` its split of the
    rotary pairs between a frame's time, height and width. Qwen2-VL gives the width the
    slowest pairs; at its base of 1e6, test-tiny's 3 width pairs turn by about 0.002 radians
    across a 9-column frame, and the vision tower's rotary embedding is relative only, so
    nothing tells the model where across the frame a patch is (locate_probe.py measures it).
    `vision_size` (embed, depth, heads) replaces the vision tower's size."""
    from transformers import AutoConfig, Qwen2VLForConditionalGeneration

    config = AutoConfig.from_pretrained(base)
    if rope_theta is not None:
        config.text_config.rope_parameters["rope_theta"] = rope_theta
    if mrope_section is not None:
        head_pairs = config.text_config.hidden_size // config.text_config.num_attention_heads // 2
        if len(mrope_section) != 3 or sum(mrope_section) != head_pairs:
            raise ValueError(f"--mrope-section {mrope_section}: three numbers summing to {head_pairs}")
        config.text_config.rope_parameters["mrope_section"] = list(mrope_section)
    if vision_size is not None:
        embed, depth, heads = vision_size
        if embed % heads or (embed // heads) % 4:
            raise ValueError(f"--vision-size {vision_size}: embed/heads must be a multiple of 4 (2-D rotary)")
        config.vision_config.embed_dim, config.vision_config.depth, config.vision_config.num_heads = embed, depth, heads
    config.initializer_range = 0.02
    config.text_config.initializer_range = 0.02
    config.vision_config.initializer_range = 0.02
    torch.manual_seed(seed)
    return Qwen2VLForConditionalGeneration(config)


def train_stage(model, encoder: Encoder, frames: Frames, data: list[Window], *, stage: int | str, steps: int, lr: float,
                accumulate: int, rng: random.Random, log, started: float, changed_weight: float = 1.0,
                dense: Dense | None = None, objects: Objects | None = None, sight: Sight | None = None) -> None:
    """`steps` optimizer steps on `data` (cosine schedule after a short warm-up). With
    `objects`, every step also takes one batch of object labels (object_loss); with no
    `data`, only that."""
    params = list(model.parameters()) + (list(dense.pointer.parameters()) if dense else []) \
        + (list(objects.head.parameters()) if objects else []) + (list(sight.head.parameters()) if sight else [])
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, steps // 20)
    model.train()
    order: list[int] = []
    running = None
    for step in range(1, steps + 1):
        scale = min(1.0, step / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup))))
        for g in opt.param_groups:
            g["lr"] = lr * max(scale, 0.05)
        opt.zero_grad(set_to_none=True)
        total = 0.0
        if objects is not None:
            loss = objects.weight * object_loss(model, encoder, frames, objects)[0]
            loss.backward()
            total += float(loss.detach())
        for _ in range(accumulate if data else 0):
            if not order:
                order = list(range(len(data)))
                rng.shuffle(order)
            window = data[order.pop()]
            batch = encoder.encode(window, frames, owners=True)
            loss = weighted_loss(model, batch, window, changed_weight, dense, sight) / accumulate
            loss.backward()
            total += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        running = total if running is None else 0.95 * running + 0.05 * total
        if step % 25 == 0 or step == steps:
            entry = {"stage": stage, "step": step, "loss": round(total, 4), "loss_ema": round(running, 4),
                     "lr": round(lr * max(scale, 0.05), 6), "elapsed_s": round(time.time() - started, 1)}
            log(entry)


@torch.no_grad()
def action_accuracy(model, encoder: Encoder, frames: Frames, data: list[Window], n: int) -> dict[str, float]:
    """Teacher-forced token accuracy on the answers of held-out windows."""
    model.eval()
    right = total = 0
    loss = 0.0
    for w in data[:n]:
        batch = encoder.encode(w, frames)
        out = model(**batch)
        loss += float(out.loss)
        pred = out.logits[0, :-1].argmax(-1)
        gold = batch["labels"][0, 1:]
        mask = gold != -100
        right += int((pred[mask] == gold[mask]).sum())
        total += int(mask.sum())
    model.train()
    return {"heldout_loss": round(loss / max(1, min(n, len(data))), 4), "heldout_token_accuracy": round(right / max(1, total), 4)}


@torch.no_grad()
def answer_accuracy(model, encoder: Encoder, frames: Frames, data: list[Window],
                    answers: int = OUT_OF_VIEW + 1) -> dict[str, float]:
    """For one-frame windows whose answer is a digit below `answers` (grounding): how often
    the model's most likely of those digits is right, with the real frame and with its
    patches shuffled (which keeps the colours and scrambles where they are), next to the
    share of the most common answer; and per answer, how often it is given when it is right
    ("recall": a model that tells only "ahead" from "out of view" scores 0 on left and right)."""
    model.eval()
    digits = [encoder.tok.convert_tokens_to_ids(str(d)) for d in range(answers)]
    right = {"real": 0, "shuffled": 0}
    counts = [0] * len(digits)
    recalled = [0] * len(digits)
    for w in data:
        batch = encoder.encode(w, frames)
        answer = int(w.steps[0].action)
        counts[answer] += 1
        at = int((batch["labels"][0] == digits[answer]).nonzero()[0]) - 1  # the logits that predict it
        pv = batch["pixel_values"]
        for name, pixels in (("real", pv), ("shuffled", pv[torch.randperm(pv.shape[0])])):
            logits = model(**{**batch, "pixel_values": pixels}).logits[0, at, digits]
            right[name] += int(logits.argmax()) == answer
            recalled[answer] += name == "real" and int(logits.argmax()) == answer
    model.train()
    n = max(1, len(data))
    return {"accuracy": round(right["real"] / n, 3), "shuffled_accuracy": round(right["shuffled"] / n, 3),
            "most_common_share": round(max(counts) / n, 3),
            "recall": {str(d): f"{recalled[d]}/{counts[d]}" for d in range(len(digits)) if counts[d]}}


@torch.no_grad()
def pointer_accuracy(model, encoder: Encoder, frames: Frames, data: list[Window], dense: Dense) -> dict[str, float]:
    """How often GoalPointer names the goal's column (or out of view) on one-frame windows,
    exactly and within one column, next to the share of the most common class."""
    model.eval()
    rows, columns = dense.grid
    exact = near = 0
    counts: dict[int, int] = {}
    for w in data:
        batch = encoder.encode(w, frames)
        hidden = model(**batch, output_hidden_states=True).hidden_states[-1]
        tokens = frame_tokens(hidden, batch["input_ids"], dense.pad, dense.grid, 0)
        guess = int(dense.pointer.logits(tokens, rows, columns).argmax())
        gold = bearing_column(w.steps[0].bearing, columns)
        counts[gold] = counts.get(gold, 0) + 1
        exact += guess == gold
        near += guess == gold or (guess < columns and gold < columns and abs(guess - gold) <= 1)
    model.train()
    n = max(1, len(data))
    return {"exact": round(exact / n, 3), "within_one": round(near / n, 3),
            "most_common_share": round(max(counts.values(), default=0) / n, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demos", required=True, type=Path, nargs="+", help="folders of trajectories (searched recursively)")
    ap.add_argument("--base", required=True, type=Path, help="HF checkpoint giving architecture, tokenizer and processor")
    ap.add_argument("--out", required=True, type=Path, help="HF checkpoint directory to write")
    ap.add_argument("--log", required=True, type=Path, help="training log (JSON lines)")
    ap.add_argument("--frame", default="256x144", help="the model's frame size WxH (the manifest's)")
    ap.add_argument("--prompts", choices=sorted(PROMPT_SETS), default="arena",
                    help="system prompt set (export the model with the same --prompts)")
    ap.add_argument("--history", type=int, default=10, help="frames in the context window (the runtime's history_frames)")
    ap.add_argument("--steps", default="300,900,300", help="optimizer steps of stages 1,2,3")
    ap.add_argument("--ground-steps", type=int, default=0,
                    help="optimizer steps of stage 0, grounding on synthetic frames (grounding_windows)")
    ap.add_argument("--ground-mix", type=float, default=0.0,
                    help="grounding sequences added to each later stage, as a share of its sequences")
    ap.add_argument("--ground-arena-steps", type=int, default=0,
                    help="optimizer steps of arena grounding alone (arena_grounding_windows), after stage 0")
    ap.add_argument("--ground-arena", type=float, default=0.0,
                    help="arena grounding sequences (arena_grounding_windows) added to each stage, as a share of its sequences")
    ap.add_argument("--ground-balance", type=float, default=None, metavar="OUT_SHARE",
                    help="draw arena grounding's answers by kind: out of view this share of the time, left, "
                         "ahead and right equally often in the rest (0.25: all four alike); default: as they come")
    ap.add_argument("--changed-weight", type=float, default=1.0,
                    help="loss weight of the answers that change the decision, against 1 for the rest (weighted_loss)")
    ap.add_argument("--changed-lag", type=int, default=1,
                    help="a step changes the decision when it decides otherwise than the step this many back "
                         "(mark_changed; 2 for the looking expert's scan rhythm)")
    ap.add_argument("--decision-windows", type=int, default=0,
                    help="copies of a window ending at each decision point (decision_windows) added to "
                         "stages 2 and 3; 0: none")
    ap.add_argument("--decision-steps", type=int, default=0,
                    help="optimizer steps of a decision stage after stage 2 (after stage 3 with --report-thoughts): "
                         "windows ending at decision points, "
                         "half breaks and half scan-ons (balanced_decision_windows), with as many stage-2 windows "
                         "and the --ground-arena mix; 0: none")
    ap.add_argument("--answer-balance", type=float, default=None, metavar="OUT_SHARE",
                    help="stages 1 to 3: as many windows again, drawn by where the goal is in the last "
                         "frame: out of view OUT_SHARE of the time, left, ahead and right equally often "
                         "in the rest (balanced_answer_windows; in stage 3 from its reasoning and "
                         "instruction windows alike)")
    ap.add_argument("--interact-share", type=float, default=0.0, metavar="P",
                    help="stages 2 and 3: windows whose answer presses F drawn again until they are P of the "
                         "stage's windows (interaction_windows); 0: as the expert pressed it")
    ap.add_argument("--thought-share", type=float, default=0.0, metavar="P",
                    help="stage 3: windows whose answer writes a thought drawn again until they are P of "
                         "the reasoning windows (thinking_windows); 0: as the expert wrote them")
    ap.add_argument("--every-thought", action="store_true",
                    help="stage 3 learns every thought the expert writes (windows' every_thought); off by default "
                         "only so that train_arena.sh reproduces the bundled model")
    ap.add_argument("--report-thoughts", action="store_true",
                    help="stage 3: the expert thinks at every decision point, its plan and then where its goal "
                         "is (with_reports), every thinking step is learned, and the decision stage comes after "
                         "stage 3 with reasoning windows")
    ap.add_argument("--report-every-step", action="store_true",
                    help="with --report-thoughts: the expert reports at every step, not only at decision points")
    ap.add_argument("--report-balance", type=float, default=None, metavar="OUT_SHARE",
                    help="with --report-thoughts: stage 3 also takes as many windows again drawn by their report "
                         "(balanced_report_windows: 'not in view' OUT_SHARE of them, the rest left/ahead/right alike)")
    ap.add_argument("--report-first", action="store_true",
                    help="with --report-thoughts: the report opens the thought, before the plan")
    ap.add_argument("--report-noise", type=float, default=0.0, metavar="SHARE",
                    help="with --report-thoughts: that share of reasoning windows get a random report in their goal "
                         "(noisy_goal_reports), so the report is read from the frame, not copied")
    ap.add_argument("--sight", type=float, default=0.0,
                    help="weight of Sight (training only: where the goal is, read where the action is decided) "
                         "in stages 2 and 3; 0: off")
    ap.add_argument("--dense", type=float, default=0.0,
                    help="weight of dense grounding (GoalPointer, training only) in every loss; 0: off")
    ap.add_argument("--object-labels", type=float, default=0.0,
                    help="weight of object labels (ObjectHead, training only; needs demonstrations made with "
                         "--label-grid) in every stage; 0: off")
    ap.add_argument("--object-steps", type=int, default=0,
                    help="optimizer steps of object labels alone (the vision tower), before every other stage")
    ap.add_argument("--object-batch", type=int, default=16, help="labelled frames per object-label step")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--accumulate", type=int, default=4, help="sequences per optimizer step")
    ap.add_argument("--heldout", type=float, default=0.05, help="share of episodes kept out of training")
    ap.add_argument("--rope-theta", type=float, default=None,
                    help="the text decoder's rotary base (default: the base checkpoint's)")
    ap.add_argument("--mrope-section", default=None,
                    help="rotary pairs for a frame's time,height,width, e.g. 1,1,6 (default: the base's)")
    ap.add_argument("--vision-size", default=None,
                    help="EMBED,DEPTH,HEADS of the vision tower instead of the base's (test-tiny: 48,3,3)")
    ap.add_argument("--init", type=Path, default=None,
                    help="start from this checkpoint (an earlier --out) instead of fresh weights; the base "
                         "still gives the tokenizer and processor, and the size options are ignored")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    random.seed(args.seed)
    rng = random.Random(args.seed)
    started = time.time()
    args.log.parent.mkdir(parents=True, exist_ok=True)
    log_file = args.log.open("w")

    def log(entry: dict) -> None:
        print(json.dumps(entry), flush=True)
        log_file.write(json.dumps(entry) + "\n")
        log_file.flush()

    fw, fh = (int(x) for x in args.frame.split("x"))
    frames = Frames((fw, fh))
    episodes = load_episodes(args.demos, frames)
    if not episodes:
        print(f"train_policy: no trajectories under {args.demos}", file=sys.stderr)
        return 2
    if args.changed_lag != 1:
        mark_changed(episodes, args.changed_lag)
    held, train = split_heldout(episodes, args.heldout, rng)
    encoder = Encoder(args.base, (fw, fh))
    mrope = [int(x) for x in args.mrope_section.split(",")] if args.mrope_section else None
    vision = [int(x) for x in args.vision_size.split(",")] if args.vision_size else None
    if args.init:
        from transformers import Qwen2VLForConditionalGeneration
        model = Qwen2VLForConditionalGeneration.from_pretrained(args.init)
    else:
        model = fresh_model(args.base, args.seed, args.rope_theta, mrope, vision)
    n_params = sum(p.numel() for p in model.parameters())
    log({"event": "data", "episodes": len(episodes), "train_episodes": len(train), "heldout_episodes": len(held),
         "steps": sum(len(e.steps) for e in episodes),
         "changed": sum(s.changed for e in episodes for s in e.steps), "thoughts": sum(s.thought is not None for e in episodes for s in e.steps),
         "frame": args.frame, "history": args.history, "parameters": n_params, "seed": args.seed,
         "rope_theta": model.config.text_config.rope_parameters["rope_theta"],
         "mrope_section": list(model.config.text_config.rope_parameters["mrope_section"]),
         "vision_size": [model.config.vision_config.embed_dim, model.config.vision_config.depth,
                         model.config.vision_config.num_heads],
         "pads_per_frame": encoder.pads_per_frame})

    ground: list[Window] = []
    ground_held: list[Window] = []
    if args.ground_steps > 0 or args.ground_mix > 0:
        # Drawn after the split, from their own generator: the demonstrations' split and
        # order do not depend on whether grounding is on.
        ground_rng = random.Random(args.seed + 1)
        system = PROMPT_SETS[args.prompts][0]
        ground = grounding_windows(frames, 4000, ground_rng, system)
        ground_held = grounding_windows(frames, 200, ground_rng, system)
    if args.ground_steps > 0:
        log({"event": "stage", "stage": 0, "sequences": len(ground), "answers": len(ground)})
        train_stage(model, encoder, frames, ground, stage=0, steps=args.ground_steps, lr=args.lr,
                    accumulate=args.accumulate, rng=ground_rng, log=log, started=started)
        log({"event": "eval", "stage": 0, **action_accuracy(model, encoder, frames, ground_held, 200)})

    # Held-out arena grounding from its own generator: the training order stays the same.
    arena_on = args.ground_arena > 0 or args.ground_arena_steps > 0 or args.dense > 0
    arena_held = arena_grounding_windows(held, 200, random.Random(args.seed + 2), PROMPT_SETS[args.prompts][0]) \
        if arena_on else []

    dense = None
    if args.dense > 0:
        torch.manual_seed(args.seed + 4)
        dense = Dense(GoalPointer(model.config.text_config.hidden_size), args.dense, encoder.image_pad,
                      encoder.merged_grid)
        if args.init and (args.init / POINTER_FILE).exists():
            dense.pointer.load_state_dict(torch.load(args.init / POINTER_FILE))

    sight = None
    if args.sight > 0:
        torch.manual_seed(args.seed + 9)
        sight = new_sight(model, encoder, args.sight, args.init)

    objects = None
    objects_held: list[tuple[int, np.ndarray]] = []
    if args.object_labels > 0 or args.object_steps > 0:
        merge = encoder.processor.image_processor.merge_size
        labelled = [(s.frame, s.objects) for e in train for s in e.steps if s.objects is not None]
        objects_held = [(s.frame, s.objects) for e in held for s in e.steps if s.objects is not None]
        objects_held = random.Random(args.seed + 5).sample(objects_held, min(256, len(objects_held)))
        if not labelled:
            print("train_policy: --object-labels needs demonstrations made with --label-grid", file=sys.stderr)
            return 2
        torch.manual_seed(args.seed + 6)
        objects = Objects(ObjectHead(model.config.text_config.hidden_size, merge), args.object_labels,
                          args.object_batch, merge, labelled, random.Random(args.seed + 7))
        if args.init and (args.init / OBJECT_HEAD_FILE).exists():
            objects.head.load_state_dict(torch.load(args.init / OBJECT_HEAD_FILE))
        log({"event": "objects", "labelled_frames": len(labelled), "heldout_frames": len(objects_held)})
    if objects and args.object_steps > 0:
        log({"event": "stage", "stage": "0-objects", "frames_per_step": objects.batch})
        # Alone, the object loss is the whole loss: weight 1 (the head and its draws are shared).
        train_stage(model, encoder, frames, [], stage="0-objects", steps=args.object_steps, lr=args.lr,
                    accumulate=args.accumulate, rng=rng, log=log, started=started,
                    objects=dataclasses.replace(objects, weight=1.0))
        log({"event": "eval", "stage": "0-objects", "objects": object_accuracy(model, encoder, frames, objects,
                                                                                  objects_held)})
    stage_objects = objects if args.object_labels > 0 else None

    def log_arena_eval(stage: int | str) -> None:
        entry = {"event": "eval", "stage": stage,
                 "arena_grounding": action_accuracy(model, encoder, frames, arena_held, 200),
                 "arena_grounding_answer": answer_accuracy(model, encoder, frames, arena_held)}
        if dense:
            entry["goal_pointer"] = pointer_accuracy(model, encoder, frames, arena_held, dense)
        if stage_objects:
            entry["objects"] = object_accuracy(model, encoder, frames, stage_objects, objects_held)
        log(entry)

    if args.ground_arena_steps > 0:
        arena_rng = random.Random(args.seed + 3)
        # One fresh frame per sequence trained, at least 20,000 frames: a long stage that cycled a
        # small pool would learn those frames, not the task.
        pool = max(20000, args.ground_arena_steps * args.accumulate)
        arena = arena_grounding_windows(train, pool, arena_rng, PROMPT_SETS[args.prompts][0], args.ground_balance)
        log({"event": "stage", "stage": "0-arena", "sequences": len(arena), "answers": len(arena)})
        train_stage(model, encoder, frames, arena, stage="0-arena", steps=args.ground_arena_steps, lr=args.lr,
                    accumulate=args.accumulate, rng=arena_rng, log=log, started=started, dense=dense,
                    objects=stage_objects)
        log_arena_eval("0-arena")
    stage_steps = [int(x) for x in args.steps.split(",")]
    # With --report-thoughts, stage 3 and the decision stage learn from the thinking-aloud expert.
    reasoning_train = [with_reports(e, args.report_every_step, args.report_first) for e in train] \
        if args.report_thoughts else train
    reasoning_held = [with_reports(e, args.report_every_step, args.report_first) for e in held] \
        if args.report_thoughts else held
    decision_after = 3 if args.report_thoughts else 2
    every_thought = args.every_thought or args.report_thoughts
    for stage, steps in enumerate(stage_steps, start=1):
        prompts = PROMPT_SETS[args.prompts]
        if steps > 0:
            source, source_held = (reasoning_train, reasoning_held) if stage == 3 else (train, held)
            data = [w for e in source for w in windows(e, stage, args.history, prompts, every_thought)]
            held_data = [w for e in source_held for w in windows(e, stage, args.history, prompts, every_thought)]
            if stage == 3:
                if args.report_balance is not None:
                    data += balanced_report_windows(data, len(data), args.report_balance, rng)
                if args.report_noise > 0:
                    data = noisy_goal_reports(data, args.report_noise, rng)
                if args.thought_share > 0:
                    data += thinking_windows(data, args.thought_share, rng)
                # Reasoning is learned next to instruction following, not instead of it: the
                # runtime's default mode stays instruction following.
                data += [w for e in train for w in windows(e, 2, args.history, prompts)]
            if args.answer_balance is not None:
                data += balanced_answer_windows(data, len(data), args.answer_balance, rng)
            if args.interact_share > 0 and stage >= 2:
                data += interaction_windows(data, args.interact_share, rng)
            if args.decision_windows > 0 and stage >= 2:
                data += [w for e in train for w in decision_windows(e, args.history, prompts, args.decision_windows)]
            if args.ground_mix > 0:
                # Keeps what stage 0 taught: actions alone let a model forget where things are.
                data += [ground[i % len(ground)] for i in range(round(len(data) * args.ground_mix))]
            if args.ground_arena > 0:
                # Asked of the same frames the actions are learned from, in every stage.
                data += arena_grounding_windows(train, round(len(data) * args.ground_arena), rng, prompts[0],
                                                args.ground_balance)
            log({"event": "stage", "stage": stage, "sequences": len(data), "answers": sum(sum(w.labelled) for w in data)})
            train_stage(model, encoder, frames, data, stage=stage, steps=steps, lr=args.lr, accumulate=args.accumulate,
                        rng=rng, log=log, started=started, changed_weight=args.changed_weight, dense=dense,
                        objects=stage_objects, sight=sight if stage >= 2 else None)
            log({"event": "eval", "stage": stage, **action_accuracy(model, encoder, frames, held_data, 40)})
            if args.ground_mix > 0:
                log({"event": "eval", "stage": stage, "grounding": action_accuracy(model, encoder, frames, ground_held, 200)})
            if arena_held:
                log_arena_eval(stage)
        if stage == decision_after and args.decision_steps > 0:
            decision_rng = random.Random(args.seed + 8)
            n = args.decision_steps * args.accumulate
            source = reasoning_train if stage == 3 else train
            decisions = balanced_decision_windows(source, n, args.history, prompts, decision_rng, stage == 3)
            ordinary = [w for e in source for w in windows(e, stage, args.history, prompts, every_thought)]
            decisions += decision_rng.sample(ordinary, min(n, len(ordinary)))
            if args.report_noise > 0:
                decisions = noisy_goal_reports(decisions, args.report_noise, decision_rng)
            if args.ground_arena > 0:
                # Without it a decision stage forgets where things are within a thousand steps.
                decisions += arena_grounding_windows(train, round(len(decisions) * args.ground_arena), decision_rng,
                                                     prompts[0], args.ground_balance)
            log({"event": "stage", "stage": f"{stage}-decision", "sequences": len(decisions)})
            train_stage(model, encoder, frames, decisions, stage=f"{stage}-decision", steps=args.decision_steps, lr=args.lr,
                        accumulate=args.accumulate, rng=decision_rng, log=log, started=started,
                        changed_weight=args.changed_weight, dense=dense, objects=stage_objects, sight=sight)
            if arena_held:
                log_arena_eval(f"{stage}-decision")

    model.eval()
    if args.out.exists():
        shutil.rmtree(args.out)
    model.save_pretrained(args.out, safe_serialization=True)
    if dense:
        torch.save(dense.pointer.state_dict(), args.out / POINTER_FILE)  # for --init; the exporter ignores it
    if objects:
        torch.save(objects.head.state_dict(), args.out / OBJECT_HEAD_FILE)  # likewise
    if sight:
        torch.save(sight.head.state_dict(), args.out / SIGHT_HEAD_FILE)  # likewise
    for name in PROCESSOR_FILES:
        if (args.base / name).exists():
            shutil.copy(args.base / name, args.out / name)
    log({"event": "saved", "out": str(args.out), "elapsed_s": round(time.time() - started, 1)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
