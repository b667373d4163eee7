//! The scripted expert: reads the world (everything, unlike a policy), picks
//! the current goal of the task, plans a path on the grid (breadth-first,
//! through doors it can open), and answers each 200 ms step with one action
//! in the action language: mouse motion to turn toward the next waypoint,
//! `W` (and `Shift` on long straight stretches) in the chunks where it faces
//! the way, `F` when it stands at what it must open or talk to. It writes a
//! short thought whenever its goal changes.
//!
//! [`play_action`] applies an action to a headless world the way the
//! runtime's executor plays it into the window: six 33 ms chunks, the mouse
//! motion spread evenly over them (`Action::mouse_per_chunk`), units turned
//! into pixels with the mouse scale and the remainder carried.

use std::collections::VecDeque;

use lumine_action::{Action, CHUNK_MS, CHUNKS_PER_ACTION, Chunk, Key};

use crate::world::{
    Cell, INTERACT_RANGE, Input, MAP_H, MAP_W, ObjectKind, TURN_RAD_PER_PX, TaskKind, World,
    angle_diff,
};

/// The largest turn the expert makes in one step, degrees.
const MAX_TURN_DEG: f64 = 150.0;
/// Walk only in chunks where the view is within this of the way, degrees.
const WALK_CONE_DEG: f64 = 30.0;
/// Press F when the view is within this of the target, degrees.
const FACE_DEG: f64 = 12.0;

/// What the expert is after now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    /// Walk onto the cell (a crystal, the key, the far side of a door).
    Reach((i32, i32)),
    /// Stand next to the cell and press F at it (a chest, the guard, a door).
    Interact((i32, i32)),
}

/// One step of the expert: its thought (when the goal changed) and action.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// A short plan, written when the goal changes.
    pub thought: Option<String>,
    /// The action for the next 200 ms.
    pub action: Action,
}

/// The scripted expert.
#[derive(Debug, Clone)]
pub struct Expert {
    mouse_scale: (f32, f32),
    last_plan: Option<String>,
    door_side: Option<(i32, i32)>,
    last_pos: (f64, f64),
    stuck: u32,
}

impl Expert {
    /// An expert whose mouse units are `mouse_scale` pixels (the model's
    /// manifest `mouse_scale`).
    #[must_use]
    pub fn new(mouse_scale: (f32, f32)) -> Expert {
        Expert {
            mouse_scale,
            last_plan: None,
            door_side: None,
            last_pos: (f64::NAN, f64::NAN),
            stuck: 0,
        }
    }

    /// Degrees of view turn per mouse unit.
    fn deg_per_unit(&self) -> f64 {
        TURN_RAD_PER_PX.to_degrees() * f64::from(self.mouse_scale.0)
    }

    /// The goal of the task now, and its words.
    fn goal(&mut self, world: &World) -> Option<(Goal, String)> {
        let task = world.task();
        let c = task.colour.map_or("", |c| c.name());
        let find = |kind: ObjectKind| {
            world
                .objects()
                .iter()
                .filter(|o| o.kind == kind && !o.done)
                .min_by_key(|o| path_len(world, &[o.cell]))
        };
        match task.kind {
            TaskKind::Chest => find(ObjectKind::Chest(task.colour?)).map(|o| {
                (
                    Goal::Interact(o.cell),
                    format!("The {c} chest: go there and open it."),
                )
            }),
            TaskKind::Crystals => find(ObjectKind::Crystal(task.colour?)).map(|o| {
                let n = world.crystals(task.colour.unwrap_or(crate::world::Colour::Red));
                let which = if n == 0 { "first" } else { "second" };
                (
                    Goal::Reach(o.cell),
                    format!("Collect the {which} {c} crystal."),
                )
            }),
            TaskKind::Guard => find(ObjectKind::Guard).map(|o| {
                (
                    Goal::Interact(o.cell),
                    "Find the guard and talk to him.".to_owned(),
                )
            }),
            TaskKind::Door => {
                let d = world
                    .doors()
                    .iter()
                    .find(|d| d.colour == task.colour && d.colour.is_some())?;
                let far = match self.door_side {
                    Some(side) => side,
                    None => {
                        let (a, b) = door_sides(d.cell, d.along_x);
                        // The near side is the one reachable without the door.
                        let blocked = Some(d.cell);
                        let (da, db) = (
                            bfs(world, &[a], blocked).map_or(usize::MAX, |p| p.len()),
                            bfs(world, &[b], blocked).map_or(usize::MAX, |p| p.len()),
                        );
                        let far = if da <= db { b } else { a };
                        self.door_side = Some(far);
                        far
                    }
                };
                Some((Goal::Reach(far), format!("Go through the {c} door.")))
            }
            TaskKind::KeyDoor => {
                if world.has_key() {
                    let d = world.doors().iter().find(|d| d.locked)?;
                    Some((
                        Goal::Interact(d.cell),
                        "I have the key. Now open the locked door.".to_owned(),
                    ))
                } else {
                    find(ObjectKind::Key).map(|o| {
                        (
                            Goal::Reach(o.cell),
                            "First find the key and pick it up.".to_owned(),
                        )
                    })
                }
            }
            TaskKind::CrystalChest => {
                let crystal = task.colour?;
                let chest = task.second?;
                if world.crystals(crystal) == 0 {
                    find(ObjectKind::Crystal(crystal)).map(|o| {
                        (
                            Goal::Reach(o.cell),
                            format!("First collect a {} crystal.", crystal.name()),
                        )
                    })
                } else {
                    find(ObjectKind::Chest(chest)).map(|o| {
                        (
                            Goal::Interact(o.cell),
                            format!("Got the crystal. Now open the {} chest.", chest.name()),
                        )
                    })
                }
            }
        }
    }

    /// The expert's turn for the world as it is now.
    pub fn act(&mut self, world: &World) -> Decision {
        let (x, y) = world.position();
        let moved = (x - self.last_pos.0).hypot(y - self.last_pos.1);
        self.stuck = if moved < 0.02 { self.stuck + 1 } else { 0 };
        self.last_pos = (x, y);
        if world.success() {
            return self.decide(None, Action::IDLE);
        }
        let Some((goal, plan)) = self.goal(world) else {
            return self.decide(None, Action::IDLE);
        };
        let targets = goal_cells(world, goal);
        let Some(path) = bfs(world, &targets, None) else {
            return self.decide(Some(plan), Action::IDLE);
        };
        // A closed door next on the path: open it first.
        if let Some(&(dx, dy)) = path.get(1)
            && let Cell::Door(i) = world.cell(dx, dy)
            && !world.doors()[i].open
        {
            let colour = world.doors()[i].colour.map_or("locked", |c| c.name());
            let action = self.face_and_press(world, centre((dx, dy)));
            return self.decide(Some(format!("Open the {colour} door on the way.")), action);
        }
        if path.len() == 1
            && let Goal::Interact(c) = goal
        {
            let action = self.face_and_press(world, centre(c));
            return self.decide(Some(plan), action);
        }
        // Walk toward the furthest of the next waypoints in a clear straight line.
        let reach = if self.stuck >= 3 { 1 } else { 3 };
        let mut target = path.get(1).copied().unwrap_or(path[0]);
        for k in (1..path.len().min(reach + 1)).rev() {
            if clear_line(world, (x, y), centre(path[k])) {
                target = path[k];
                break;
            }
        }
        let goal_point = if path.len() == 1 {
            centre(path[0])
        } else {
            centre(target)
        };
        let remaining = path.len() as f64;
        let action = self.walk_toward(world, goal_point, remaining);
        self.decide(Some(plan), action)
    }

    /// The decision, with the plan as a thought only when it changed.
    fn decide(&mut self, plan: Option<String>, action: Action) -> Decision {
        let thought = match plan {
            Some(p) if self.last_plan.as_deref() != Some(&p) => {
                self.last_plan = Some(p.clone());
                Some(p)
            }
            _ => None,
        };
        Decision { thought, action }
    }

    /// Mouse units to turn by `diff` radians, clamped to the step's maximum.
    fn turn_units(&self, diff: f64) -> i32 {
        let deg = diff.to_degrees().clamp(-MAX_TURN_DEG, MAX_TURN_DEG);
        (deg / self.deg_per_unit()).round() as i32
    }

    fn walk_toward(&self, world: &World, point: (f64, f64), cells_left: f64) -> Action {
        let (x, y) = world.position();
        let diff = angle_diff((point.1 - y).atan2(point.0 - x), world.heading());
        let dx = self.turn_units(diff);
        let mut action = Action { dx, ..Action::IDLE };
        let parts = action.mouse_per_chunk();
        let mut turned = 0.0;
        for (chunk, part) in action.chunks.iter_mut().zip(parts) {
            turned += f64::from(part.0) * self.deg_per_unit();
            let residual = diff.to_degrees() - turned;
            if residual.abs() < WALK_CONE_DEG {
                let mut keys = vec![Key::W];
                if cells_left > 4.0 && residual.abs() < 10.0 {
                    keys.push(Key::Shift);
                }
                *chunk = Chunk::new(&keys).unwrap_or(Chunk::EMPTY);
            }
        }
        action
    }

    fn face_and_press(&self, world: &World, point: (f64, f64)) -> Action {
        let (x, y) = world.position();
        let dist = (point.0 - x).hypot(point.1 - y);
        let diff = angle_diff((point.1 - y).atan2(point.0 - x), world.heading());
        if dist > INTERACT_RANGE - 0.2 {
            // Close in (the object itself stops us).
            return self.walk_toward(world, point, 0.0);
        }
        let dx = self.turn_units(diff);
        let mut action = Action { dx, ..Action::IDLE };
        if diff.to_degrees().abs() < FACE_DEG {
            // Press at the last chunk, when the small correction has been made.
            action.chunks[CHUNKS_PER_ACTION - 1] = Chunk::new(&[Key::F]).unwrap_or(Chunk::EMPTY);
        }
        action
    }
}

fn centre(c: (i32, i32)) -> (f64, f64) {
    (f64::from(c.0) + 0.5, f64::from(c.1) + 0.5)
}

fn door_sides(cell: (i32, i32), along_x: bool) -> ((i32, i32), (i32, i32)) {
    if along_x {
        ((cell.0 - 1, cell.1), (cell.0 + 1, cell.1))
    } else {
        ((cell.0, cell.1 - 1), (cell.0, cell.1 + 1))
    }
}

/// Whether the straight segment keeps the player's body clear of obstacles.
fn clear_line(world: &World, from: (f64, f64), to: (f64, f64)) -> bool {
    let len = (to.0 - from.0).hypot(to.1 - from.1);
    let n = (len / 0.1).ceil().max(1.0) as usize;
    let r = 0.3;
    (0..=n).all(|i| {
        let t = i as f64 / n as f64;
        let (px, py) = (from.0 + (to.0 - from.0) * t, from.1 + (to.1 - from.1) * t);
        [
            (px - r, py - r),
            (px + r, py - r),
            (px - r, py + r),
            (px + r, py + r),
        ]
        .iter()
        .all(|&(cx, cy)| !world.blocked(cx.floor() as i32, cy.floor() as i32))
    })
}

fn path_len(world: &World, targets: &[(i32, i32)]) -> usize {
    // A solid object's cell itself is not walkable: measure to its neighbours.
    let mut ts = Vec::new();
    for &c in targets {
        if world.walkable_for_plan(c.0, c.1, true) {
            ts.push(c);
        } else {
            for (dx, dy) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
                ts.push((c.0 + dx, c.1 + dy));
            }
        }
    }
    bfs(world, &ts, None).map_or(usize::MAX, |p| p.len())
}

/// The shortest 4-connected path from the player's cell to any of `targets`
/// (both ends included), through cells walkable for planning, avoiding `avoid`.
fn bfs(
    world: &World,
    targets: &[(i32, i32)],
    avoid: Option<(i32, i32)>,
) -> Option<Vec<(i32, i32)>> {
    let (x, y) = world.position();
    let start = (x.floor() as i32, y.floor() as i32);
    let idx = |c: (i32, i32)| (c.1 * MAP_W + c.0) as usize;
    let mut prev = vec![None; (MAP_W * MAP_H) as usize];
    let mut seen = vec![false; (MAP_W * MAP_H) as usize];
    seen[idx(start)] = true;
    let mut queue = VecDeque::from([start]);
    while let Some(c) = queue.pop_front() {
        if targets.contains(&c) {
            let mut path = vec![c];
            let mut at = c;
            while let Some(p) = prev[idx(at)] {
                path.push(p);
                at = p;
            }
            path.reverse();
            return Some(path);
        }
        for (dx, dy) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
            let n = (c.0 + dx, c.1 + dy);
            if !(0..MAP_W).contains(&n.0) || !(0..MAP_H).contains(&n.1) || Some(n) == avoid {
                continue;
            }
            if !seen[idx(n)] && world.walkable_for_plan(n.0, n.1, world.has_key()) {
                seen[idx(n)] = true;
                prev[idx(n)] = Some(c);
                queue.push_back(n);
            }
        }
    }
    None
}

/// Cells along the shortest path from the player to the task's current goal
/// (a cell next to what must be opened or talked to, the crystal or key to
/// pick up, the far side of the door); 0 once the task is done, `None` when
/// no path exists. Evaluation uses it to see whether an agent that did not
/// finish got closer.
#[must_use]
pub fn distance_to_goal(world: &World) -> Option<usize> {
    if world.success() {
        return Some(0);
    }
    let (goal, _) = Expert::new((1.0, 1.0)).goal(world)?;
    let targets = goal_cells(world, goal);
    bfs(world, &targets, None).map(|p| p.len() - 1)
}

/// The cells that reach `goal`: the cell itself, or the walkable neighbours
/// of what must be interacted with.
fn goal_cells(world: &World, goal: Goal) -> Vec<(i32, i32)> {
    match goal {
        Goal::Reach(c) => vec![c],
        Goal::Interact(c) => [(1, 0), (-1, 0), (0, 1), (0, -1)]
            .iter()
            .map(|&(dx, dy)| (c.0 + dx, c.1 + dy))
            .filter(|&(cx, cy)| world.walkable_for_plan(cx, cy, world.has_key()))
            .collect(),
    }
}

/// Carries the fractions of mouse pixels between chunks (as the runtime's
/// mouse scaler does), so that the pixels played sum to units times scale.
#[derive(Debug, Clone, Default)]
pub struct MouseCarry {
    rest: (f64, f64),
}

impl MouseCarry {
    /// Whole pixels for `units` of motion at `scale` pixels per unit.
    pub fn pixels(&mut self, units: (i32, i32), scale: (f32, f32)) -> (i32, i32) {
        let x = f64::from(units.0) * f64::from(scale.0) + self.rest.0;
        let y = f64::from(units.1) * f64::from(scale.1) + self.rest.1;
        let (px, py) = (x.round(), y.round());
        self.rest = (x - px, y - py);
        (px as i32, py as i32)
    }
}

/// Plays `action` into a headless world as the executor plays it into the
/// window: six chunks of 33.3 ms, each with its keys held and its share of
/// the mouse motion at its start.
pub fn play_action(world: &mut World, action: &Action, scale: (f32, f32), carry: &mut MouseCarry) {
    for (chunk, part) in action.chunks.iter().zip(action.mouse_per_chunk()) {
        let (px, py) = carry.pixels(part, scale);
        let input = Input::from_chunk(chunk, f64::from(px), f64::from(py));
        world.step(&input, CHUNK_MS / 1000.0);
    }
}

/// The outcome of a headless expert episode.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// The task was done.
    pub success: bool,
    /// Steps played.
    pub steps: u64,
    /// World seconds until success (or until the end).
    pub seconds: f64,
}

impl Expert {
    /// The expert's turn when `pending` (the previous step's action) is
    /// about to play: it plans from the world as it will be once `pending`
    /// has played, predicted headless. This is the runtime's timing: the
    /// frame of step `s` is captured when step `s - 1` starts playing.
    pub fn act_ahead(
        &mut self,
        world: &World,
        pending: &Action,
        scale: (f32, f32),
        carry: &MouseCarry,
    ) -> Decision {
        let mut ahead = world.clone();
        play_action(&mut ahead, pending, scale, &mut carry.clone());
        self.act(&ahead)
    }
}

/// Runs the expert on `world` headless for up to `max_steps` steps, on the
/// runtime's timing: at each step the frame is taken, the expert decides
/// (planning from the world after the previous action), then the previous
/// action plays (the first step's lead plays nothing). `each` sees every
/// step: the world as its frame shows it, and the decision.
pub fn run_episode(
    world: &mut World,
    mouse_scale: (f32, f32),
    max_steps: u64,
    each: impl FnMut(u64, &World, &Decision),
) -> Episode {
    run_episode_perturbed(world, mouse_scale, max_steps, |_| {}, each)
}

/// [`run_episode`], but what plays is the decision after `perturb` changed
/// it, while `each` still sees the expert's own decision. Demonstrations made
/// this way show the expert recovering from states off its path (a policy
/// that imitates it drifts there too), labelled with what the expert does
/// from them. The expert plans knowing what really played.
pub fn run_episode_perturbed(
    world: &mut World,
    mouse_scale: (f32, f32),
    max_steps: u64,
    mut perturb: impl FnMut(&mut Action),
    mut each: impl FnMut(u64, &World, &Decision),
) -> Episode {
    let mut expert = Expert::new(mouse_scale);
    let mut carry = MouseCarry::default();
    let mut pending = Action::IDLE;
    let mut steps = 0;
    while steps < max_steps && !world.success() {
        let decision = expert.act_ahead(world, &pending, mouse_scale, &carry);
        each(steps, world, &decision);
        play_action(world, &pending, mouse_scale, &mut carry);
        pending = decision.action;
        perturb(&mut pending);
        steps += 1;
    }
    Episode {
        success: world.success(),
        steps,
        seconds: world.time(),
    }
}
