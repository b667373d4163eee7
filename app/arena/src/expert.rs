//! The scripted expert: reads the world (everything, unlike a policy), picks
//! the current goal of the task, plans a path on the grid (breadth-first,
//! through doors it can open), and answers each 200 ms step with one action
//! in the action language: mouse motion to turn toward the next waypoint,
//! `W` (and `Shift` on long straight stretches) in the chunks where it faces
//! the way, `F` when it stands at what it must open or talk to. It writes a
//! short thought whenever its goal changes. Though it knows the map, it only
//! heads for what a frame could show: a target out of view is looked for by
//! turning right on the spot, so a policy that sees frames can imitate it.
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
/// The turn of one step while looking for a target out of view, degrees
/// (under the view's width, so nothing is skipped).
const SCAN_DEG: f64 = 45.0;
/// A target seen within this many steps is still followed when it is out
/// of view (the policy's context holds its last frames).
const SEEN_MEMORY: u32 = 5;
/// Scanning steps after which the expert follows its plan anyway (the
/// target is hidden behind something solid from here); every other one
/// holds the view while the last turn lands (`SETTLE_DEG`).
const SCAN_LIMIT: u32 = 16;
/// A pending turn larger than this, degrees, is let land before the next
/// turn: the step after it only walks or stands (see [`Expert::act_ahead`]).
const SETTLE_DEG: f64 = 5.0;
/// Half the view's width the expert counts as "in view", degrees (the
/// renderer shows about 33 either side).
const VIEW_HALF_DEG: f64 = 28.0;

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
    since_seen: u32,
    scans: u32,
    last_goal: Option<Goal>,
    servo: bool,
}

impl Expert {
    /// The servo expert (the one the bundled policy imitates), whose mouse
    /// units are `mouse_scale` pixels (the model's manifest `mouse_scale`):
    /// its action follows from what the frame shows (`act_servo`).
    #[must_use]
    pub fn new(mouse_scale: (f32, f32)) -> Expert {
        Expert {
            servo: true,
            ..Expert::looking(mouse_scale)
        }
    }

    /// The looking expert: it plans its path on the map, turns toward what it
    /// can see, and holds the view for a step after each turn (`act_seeing`).
    /// Kept as the map-planning baseline; its turns need more than one frame
    /// of context to imitate.
    #[must_use]
    pub fn looking(mouse_scale: (f32, f32)) -> Expert {
        Expert {
            mouse_scale,
            last_plan: None,
            door_side: None,
            last_pos: (f64::NAN, f64::NAN),
            stuck: 0,
            since_seen: SEEN_MEMORY + 1,
            scans: 0,
            last_goal: None,
            servo: false,
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
                            format!(
                                "First collect a {} crystal, then open the {} chest.",
                                crystal.name(),
                                chest.name()
                            ),
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
        if self.servo {
            return self.act_servo(world);
        }
        self.act_seeing(world, world)
    }

    /// The expert's turn for `world`, looking only for what `frame` (the
    /// world as the policy's frame shows it) has in view: a target out of
    /// view, and not seen lately, is looked for by turning right on the
    /// spot, so every turn is one a frame (or the frames before it) explains.
    fn act_seeing(&mut self, world: &World, frame: &World) -> Decision {
        let (x, y) = world.position();
        self.track_stuck(world);
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
        if self.last_goal != Some(goal) {
            // A new goal has not been seen yet.
            self.last_goal = Some(goal);
            self.since_seen = SEEN_MEMORY + 1;
            self.scans = 0;
        }
        let seen = landmarks(world, goal).iter().any(|&c| in_view(frame, c));
        self.since_seen = if seen { 0 } else { self.since_seen + 1 };
        if self.since_seen > SEEN_MEMORY && self.scans < SCAN_LIMIT {
            self.scans += 1;
            let dx = (SCAN_DEG / self.deg_per_unit()).round() as i32;
            return self.decide(Some(plan), Action { dx, ..Action::IDLE });
        }
        if seen {
            self.scans = 0;
        } else if self.scans >= SCAN_LIMIT {
            // Hidden from here: follow the plan; look again once it shows.
            self.since_seen = 0;
            self.scans = 0;
        }
        // What to open or talk to in plain view: straight at it, as the frame
        // shows it (not at the neighbouring cell a map plan would pick).
        if seen && let Goal::Interact(c) = goal {
            let (tx, ty) = centre(c);
            let dist = (tx - x).hypot(ty - y);
            let short = ((dist - 0.9) / dist).max(0.0);
            if clear_line(world, (x, y), (x + (tx - x) * short, y + (ty - y) * short)) {
                let action = self.face_and_press(world, (tx, ty));
                return self.decide(Some(plan), action);
            }
        }
        // A closed door next on the path: open it first.
        if let Some(&(dx, dy)) = path.get(1)
            && let Cell::Door(i) = world.cell(dx, dy)
            && !world.doors()[i].open
        {
            let colour = world.doors()[i].colour.map_or("locked", |c| c.name());
            let action = self.face_and_press(world, centre((dx, dy)));
            return self.decide(Some(on_the_way(colour, &plan)), action);
        }
        if path.len() == 1
            && let Goal::Interact(c) = goal
        {
            let action = self.face_and_press(world, centre(c));
            return self.decide(Some(plan), action);
        }
        // Walk toward the furthest waypoint in a clear straight line: in the
        // open hall that is the goal itself, the way a frame shows it.
        let target = self.waypoint(world, &path);
        let goal_point = if path.len() == 1 {
            centre(path[0])
        } else {
            centre(target)
        };
        let remaining = path.len() as f64;
        let action = self.walk_toward(world, goal_point, remaining);
        self.decide(Some(plan), action)
    }

    /// Where the task's current goal is in the view of `world`: its bearing
    /// from the view's centre in degrees (positive to the right, the way a
    /// positive mouse turn goes), or `None` when it is out of view. A label
    /// for training the policy to find its target; the policy never sees it.
    /// Call it every step of an episode, like [`Expert::act`]: it keeps which
    /// side of a door is the far one.
    pub fn goal_bearing(&mut self, world: &World) -> Option<f64> {
        let (goal, _) = self.goal(world)?;
        if self.servo {
            return servo_sight(world, goal).map(|(_, b)| b);
        }
        let (x, y) = world.position();
        landmarks(world, goal)
            .into_iter()
            .filter(|&c| in_view(world, c))
            .map(|c| {
                let (tx, ty) = centre(c);
                angle_diff((ty - y).atan2(tx - x), world.heading()).to_degrees()
            })
            .min_by(|a, b| a.abs().total_cmp(&b.abs()))
    }

    /// Counts the steps in a row the player has not moved (`stuck`).
    fn track_stuck(&mut self, world: &World) {
        let (x, y) = world.position();
        let moved = (x - self.last_pos.0).hypot(y - self.last_pos.1);
        self.stuck = if moved < 0.02 { self.stuck + 1 } else { 0 };
        self.last_pos = (x, y);
    }

    /// The furthest waypoint of `path` in a clear straight line (only the
    /// next one while stuck): in the open hall, the goal itself.
    fn waypoint(&self, world: &World, path: &[(i32, i32)]) -> (i32, i32) {
        let reach = if self.stuck >= 3 { 1 } else { path.len() };
        (1..path.len().min(reach + 1))
            .rev()
            .map(|k| path[k])
            .find(|&c| clear_line(world, world.position(), centre(c)))
            .unwrap_or_else(|| path.get(1).copied().unwrap_or(path[0]))
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

/// The cells whose sight tells the expert where its goal is: the goal's
/// cell, and for the far side of a door the door too.
fn landmarks(world: &World, goal: Goal) -> Vec<(i32, i32)> {
    match goal {
        Goal::Interact(c) => vec![c],
        Goal::Reach(c) => {
            let mut cells = vec![c];
            cells.extend(
                [(1, 0), (-1, 0), (0, 1), (0, -1)]
                    .iter()
                    .map(|&(dx, dy)| (c.0 + dx, c.1 + dy))
                    .filter(|&(cx, cy)| matches!(world.cell(cx, cy), Cell::Door(_))),
            );
            cells
        }
    }
}

/// Whether the centre of `cell` is in the player's view: within the view's
/// width and not behind a wall or a closed door. Objects do not hide one
/// another: they are narrow, and the guard stands taller than a chest.
#[must_use]
pub fn in_view(world: &World, cell: (i32, i32)) -> bool {
    in_view_at(world, cell, centre(cell))
}

/// The point of `cell` a frame shows: its centre, or for a door the middle
/// of its face on the player's side (a door's centre lies inside the wall,
/// hidden at a slant).
fn face_point(world: &World, cell: (i32, i32)) -> (f64, f64) {
    let (cx, cy) = centre(cell);
    match world.cell(cell.0, cell.1) {
        Cell::Door(i) => {
            let (x, y) = world.position();
            if world.doors()[i].along_x {
                (cx + 0.45 * (x - cx).signum(), cy)
            } else {
                (cx, cy + 0.45 * (y - cy).signum())
            }
        }
        _ => (cx, cy),
    }
}

/// The bearing of `cell` from the view's centre in degrees (positive to the
/// right) when the frame shows it ([`face_point`]), else `None`.
fn sighting(world: &World, cell: (i32, i32)) -> Option<f64> {
    let point = face_point(world, cell);
    in_view_at(world, cell, point).then(|| {
        let (x, y) = world.position();
        angle_diff((point.1 - y).atan2(point.0 - x), world.heading()).to_degrees()
    })
}

/// Whether `point` of `cell` is in the player's view (see [`in_view`]).
fn in_view_at(world: &World, cell: (i32, i32), point: (f64, f64)) -> bool {
    let (x, y) = world.position();
    let (tx, ty) = point;
    let bearing = (ty - y).atan2(tx - x);
    if angle_diff(bearing, world.heading()).to_degrees().abs() > VIEW_HALF_DEG {
        return false;
    }
    let len = (tx - x).hypot(ty - y);
    let n = (len / 0.05).ceil().max(1.0) as usize;
    (0..n).all(|i| {
        let t = i as f64 / n as f64;
        let c = (
            (x + (tx - x) * t).floor() as i32,
            (y + (ty - y) * t).floor() as i32,
        );
        c == cell
            || match world.cell(c.0, c.1) {
                Cell::Wall => false,
                Cell::Door(i) => world.doors()[i].open,
                Cell::Floor => true,
            }
    })
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
        if self.servo {
            return self.act_servo(world);
        }
        let mut ahead = world.clone();
        play_action(&mut ahead, pending, scale, &mut carry.clone());
        let mut decision = self.act_seeing(&ahead, world);
        if f64::from(pending.dx.abs()) * self.deg_per_unit() > SETTLE_DEG {
            // The frame does not show the pending turn yet: a turn now would be
            // aimed from where the view is not. Hold the view for this step, so
            // that every turn is aimed from a frame that shows where it points.
            decision.action.dx = 0;
            decision.action.dy = 0;
        }
        decision
    }
}

/// Turn of one scanning step of the servo expert, degrees: under the view's
/// width less one aiming turn, so that a target coming into view at the
/// right edge is still in view once the pending scan has landed.
const SERVO_SCAN_DEG: f64 = 20.0;
/// Turn of one aiming step of the servo expert, degrees: at most the width
/// of the "ahead" band, so that the turn still pending when the target shows
/// ahead does not carry it out of that band.
const SERVO_AIM_DEG: f64 = 10.0;
/// Scanning steps of the servo expert that make a whole turn.
const SERVO_FULL_TURN: u32 = 18;
/// Steps the servo expert walks toward the hall's middle after a whole turn
/// without a sight of its goal.
const SERVO_WANDER: u32 = 5;
/// Half the width of the "ahead" band, degrees (the training's reports).
const SERVO_AHEAD_DEG: f64 = 11.0;
/// A target to one side is walked toward only when further than this,
/// cells (nearer, walking while aiming circles it).
const SERVO_WALK_SIDE_CELLS: f64 = 3.0;

impl Expert {
    /// The servo expert ([`Expert::new`]): its action is a function
    /// of the frame alone, so a policy with one frame of context can imitate
    /// it. Target out of view: turn right `SERVO_SCAN_DEG`. In view: turn
    /// `SERVO_AIM_DEG` toward it when it is left or right of the "ahead"
    /// band, walk toward it, press F once it is within reach. The turn still
    /// pending when a frame is taken is absorbed by the small fixed turns.
    fn act_servo(&mut self, world: &World) -> Decision {
        let (x, y) = world.position();
        self.track_stuck(world);
        if world.success() {
            return self.decide(None, Action::IDLE);
        }
        let Some((goal, plan)) = self.goal(world) else {
            return self.decide(None, Action::IDLE);
        };
        let Some(path) = bfs(world, &goal_cells(world, goal), None) else {
            return self.decide(Some(plan), Action::IDLE);
        };
        let sight = servo_sight(world, goal);
        let per_unit = self.deg_per_unit();
        let units = |deg: f64| (deg / per_unit).round() as i32;
        if sight.is_some() {
            self.scans = 0;
        } else if self.scans >= SERVO_FULL_TURN {
            // A whole turn and nothing: the goal hides at a slant from here
            // (a door along the wall the player stands by). Walk toward the
            // hall's middle, from where every door shows, then look again.
            self.scans = (self.scans + 1) % (SERVO_FULL_TURN + SERVO_WANDER);
            let hall = world.rooms()[0];
            let middle = (
                f64::from(hall.x) + f64::from(hall.w) / 2.0,
                f64::from(hall.y) + f64::from(hall.h) / 2.0,
            );
            let action = self.walk_toward(world, middle, 0.0);
            return self.decide(Some(plan), action);
        }
        let Some((cell, bearing)) = sight else {
            self.scans += 1;
            let dx = units(SERVO_SCAN_DEG);
            return self.decide(Some(plan), Action { dx, ..Action::IDLE });
        };
        let (tx, ty) = face_point(world, cell);
        let dist = (tx - x).hypot(ty - y);
        let closed_door =
            matches!(world.cell(cell.0, cell.1), Cell::Door(i) if !world.doors()[i].open);
        let interact = closed_door || matches!(goal, Goal::Interact(c) if c == cell);
        // Something solid in the straight line: go round it by the map's plan.
        // (The line stops short of the target, so a door's frame beside it
        // does not count.)
        let short = (dist - 1.5) / dist;
        if short > 0.0 && !clear_line(world, (x, y), (x + (tx - x) * short, y + (ty - y) * short)) {
            let target = self.waypoint(world, &path);
            let action = self.walk_toward(world, centre(target), path.len() as f64);
            return self.decide(Some(plan), action);
        }
        let dx = if bearing < -SERVO_AHEAD_DEG {
            -units(SERVO_AIM_DEG)
        } else if bearing > SERVO_AHEAD_DEG {
            units(SERVO_AIM_DEG)
        } else {
            0
        };
        let mut action = Action { dx, ..Action::IDLE };
        // The world measures reach from the cell's centre.
        let (cx, cy) = centre(cell);
        let within = interact && (cx - x).hypot(cy - y) <= INTERACT_RANGE - 0.2;
        if within {
            if bearing.abs() <= SERVO_AHEAD_DEG {
                action.chunks[CHUNKS_PER_ACTION - 1] =
                    Chunk::new(&[Key::F]).unwrap_or(Chunk::EMPTY);
            }
        } else if bearing.abs() <= SERVO_AHEAD_DEG || dist > SERVO_WALK_SIDE_CELLS {
            // Walking with the target to one side circles it when it is near.
            let mut keys = vec![Key::W];
            if dist > 4.0 && bearing.abs() <= SERVO_AHEAD_DEG {
                keys.push(Key::Shift);
            }
            let chunk = Chunk::new(&keys).unwrap_or(Chunk::EMPTY);
            action.chunks = [chunk; CHUNKS_PER_ACTION];
        }
        let thought = if closed_door && !matches!(goal, Goal::Interact(c) if c == cell) {
            let colour = match world.cell(cell.0, cell.1) {
                Cell::Door(i) => world.doors()[i].colour.map_or("locked", |c| c.name()),
                _ => "locked",
            };
            on_the_way(colour, &plan)
        } else {
            plan
        };
        self.decide(Some(thought), action)
    }
}

/// The thought for a closed door in the way: it names the plan too, because
/// in reasoning mode the latest thought replaces the instruction (SPEC 4) and
/// the plan must still be known once the door is open.
fn on_the_way(door_colour: &str, plan: &str) -> String {
    format!("Open the {door_colour} door on the way. {plan}")
}

/// What the servo expert heads for: the landmark of `goal` the frame shows
/// nearest the view's centre, and its bearing. From the hall a closet is
/// entered through its door: the door is the landmark there (the far side
/// shows only once it is open, and at a slant the door's frame hides it).
fn servo_sight(world: &World, goal: Goal) -> Option<((i32, i32), f64)> {
    let (x, y) = world.position();
    let here = (x.floor() as i32, y.floor() as i32);
    let in_hall = world.rooms()[0].contains(here.0, here.1);
    let mut marks = landmarks(world, goal);
    if in_hall && marks.len() > 1 {
        marks.retain(|&(cx, cy)| matches!(world.cell(cx, cy), Cell::Door(_)));
    }
    marks
        .into_iter()
        .filter_map(|c| {
            let b = if in_hall {
                sighting(world, c)?
            } else {
                // In a doorway or a closet the closet fills the view: its
                // floor is where to go even when its centre is off the frame.
                let (tx, ty) = centre(c);
                let b = angle_diff((ty - y).atan2(tx - x), world.heading()).to_degrees();
                if b.abs() > 90.0 {
                    return None;
                }
                b
            };
            Some((c, b))
        })
        .min_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
}

/// Runs the expert on `world` headless for up to `max_steps` steps, on the
/// runtime's timing: at each step the frame is taken, the expert decides
/// (planning from the world after the previous action), then the previous
/// action plays (the first step's lead plays nothing). `each` sees every
/// step: the world as its frame shows it, and the decision.
pub fn run_episode(
    world: &mut World,
    expert: Expert,
    max_steps: u64,
    each: impl FnMut(u64, &World, &Decision),
) -> Episode {
    run_episode_perturbed(world, expert, max_steps, |_| {}, each)
}

/// [`run_episode`], but what plays is the decision after `perturb` changed
/// it, while `each` still sees the expert's own decision. Demonstrations made
/// this way show the expert recovering from states off its path (a policy
/// that imitates it drifts there too), labelled with what the expert does
/// from them. The expert plans from its own last decision, not from what
/// really played: a policy's context holds its answers, not the disturbance,
/// which shows only in the next frame; the expert must not know more.
pub fn run_episode_perturbed(
    world: &mut World,
    mut expert: Expert,
    max_steps: u64,
    mut perturb: impl FnMut(&mut Action),
    mut each: impl FnMut(u64, &World, &Decision),
) -> Episode {
    let mouse_scale = expert.mouse_scale;
    let mut carry = MouseCarry::default();
    let (mut planned, mut played) = (Action::IDLE, Action::IDLE);
    let mut steps = 0;
    while steps < max_steps && !world.success() {
        let decision = expert.act_ahead(world, &planned, mouse_scale, &carry);
        each(steps, world, &decision);
        play_action(world, &played, mouse_scale, &mut carry);
        planned = decision.action;
        played = planned;
        perturb(&mut played);
        steps += 1;
    }
    Episode {
        success: world.success(),
        steps,
        seconds: world.time(),
    }
}
