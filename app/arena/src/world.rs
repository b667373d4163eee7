//! The arena's world: a seeded hall with three doors to closets, the objects in it,
//! the player, the rules (movement, collision, interaction, collection, doors)
//! and the task with its success predicate.
//!
//! Pure logic and headless: [`World::step`] advances by any `dt` faster than
//! real time; the window (`crate::window`) feeds it the same calls at the
//! moments X delivers the input.

use std::f64::consts::{PI, TAU};

use lumine_action::{Chunk, Key};
use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Map width in cells (walls included).
pub const MAP_W: i32 = 19;
/// Hall width range, cells (inclusive).
const HALL_W: (i32, i32) = (8, 11);
/// Hall height range, cells (inclusive).
const HALL_H: (i32, i32) = (5, 7);
/// Map height in cells (walls included).
pub const MAP_H: i32 = 13;
/// Walking speed, cells per second.
pub const WALK_SPEED: f64 = 2.2;
/// Sprinting speed (Shift held), cells per second.
pub const SPRINT_SPEED: f64 = 3.6;
/// View turn per pixel of relative mouse motion, radians (0.2 degrees).
pub const TURN_RAD_PER_PX: f64 = 0.2 * PI / 180.0;
/// The player's half width, cells.
pub const PLAYER_RADIUS: f64 = 0.22;
/// Furthest distance (player to object centre, cells) at which F interacts.
pub const INTERACT_RANGE: f64 = 1.4;
/// Widest angle between the view and an object at which F interacts, radians (35 degrees).
pub const INTERACT_ANGLE: f64 = 35.0 * PI / 180.0;
/// Distance (cells) at which a crystal or the key is picked up.
pub const PICKUP_RANGE: f64 = 0.45;
/// How long a message (dialogue, "locked") stays on screen, seconds.
pub const MESSAGE_SECONDS: f64 = 4.0;
/// Length of a (cosmetic) jump, seconds.
pub const JUMP_SECONDS: f64 = 0.5;

/// What the guard says.
pub const GUARD_LINE: &str = "Guard: Keys open locked doors.";

/// An object colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    /// Red.
    Red,
    /// Green.
    Green,
    /// Blue.
    Blue,
    /// Yellow.
    Yellow,
}

impl Colour {
    /// Every colour, in index order.
    pub const ALL: [Colour; 4] = [Colour::Red, Colour::Green, Colour::Blue, Colour::Yellow];

    /// The lower-case name used in task text.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Green => "green",
            Colour::Blue => "blue",
            Colour::Yellow => "yellow",
        }
    }

    /// Index into [`Colour::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }

    /// Display colour.
    #[must_use]
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [220, 40, 40],
            Colour::Green => [40, 200, 60],
            Colour::Blue => [50, 90, 240],
            Colour::Yellow => [240, 210, 40],
        }
    }
}

/// A map cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Solid wall.
    Wall,
    /// Walkable floor (the hall or a closet).
    Floor,
    /// A door: index into [`World::doors`].
    Door(usize),
}

/// A door in the hall's wall, opening into a closet.
#[derive(Debug, Clone, PartialEq)]
pub struct Door {
    /// Its cell.
    pub cell: (i32, i32),
    /// Its colour; `None` for the locked door.
    pub colour: Option<Colour>,
    /// Needs the key to open.
    pub locked: bool,
    /// Opened (walkable, not drawn).
    pub open: bool,
    /// The passage runs along x (open neighbours left and right), else along y.
    pub along_x: bool,
    /// The side (-1 or +1 along the passage) the player entered from, while inside.
    entered_from: i32,
    /// The player walked through it (in one side, out of the other).
    pub passed: bool,
}

/// What an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A chest (solid; F opens it).
    Chest(Colour),
    /// A crystal (walk through it to collect it).
    Crystal(Colour),
    /// The key of the locked door (walk through it to pick it up).
    Key,
    /// The guard (solid; F talks to him).
    Guard,
}

impl ObjectKind {
    /// Whether the object blocks movement.
    #[must_use]
    pub fn solid(self) -> bool {
        matches!(self, ObjectKind::Chest(_) | ObjectKind::Guard)
    }
}

/// An object standing in the middle of a cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// What it is.
    pub kind: ObjectKind,
    /// Its cell.
    pub cell: (i32, i32),
    /// Opened (chest), collected (crystal, key) or talked to (guard).
    pub done: bool,
    /// World time when it became done, seconds.
    pub done_at: Option<f64>,
}

impl Object {
    /// The centre of its cell.
    #[must_use]
    pub fn centre(&self) -> (f64, f64) {
        (f64::from(self.cell.0) + 0.5, f64::from(self.cell.1) + 0.5)
    }
}

/// A rectangular room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    /// Left column.
    pub x: i32,
    /// Top row.
    pub y: i32,
    /// Width in cells.
    pub w: i32,
    /// Height in cells.
    pub h: i32,
}

impl Room {
    /// Whether `(x, y)` is inside.
    #[must_use]
    pub fn contains(&self, x: i32, y: i32) -> bool {
        (self.x..self.x + self.w).contains(&x) && (self.y..self.y + self.h).contains(&y)
    }
}

/// The kinds of task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// "open the red chest".
    Chest,
    /// "collect two blue crystals".
    Crystals,
    /// "talk to the guard".
    Guard,
    /// "go through the green door".
    Door,
    /// "find the key, then open the locked door" (multi-step).
    KeyDoor,
    /// "collect a red crystal, then open the blue chest" (multi-step).
    CrystalChest,
}

impl TaskKind {
    /// Every kind.
    pub const ALL: [TaskKind; 6] = [
        TaskKind::Chest,
        TaskKind::Crystals,
        TaskKind::Guard,
        TaskKind::Door,
        TaskKind::KeyDoor,
        TaskKind::CrystalChest,
    ];

    /// The name on the command line and in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Chest => "chest",
            TaskKind::Crystals => "crystals",
            TaskKind::Guard => "guard",
            TaskKind::Door => "door",
            TaskKind::KeyDoor => "key-door",
            TaskKind::CrystalChest => "crystal-chest",
        }
    }

    /// The kind named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<TaskKind> {
        TaskKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the task needs a plan of more than one goal.
    #[must_use]
    pub fn multi_step(self) -> bool {
        matches!(self, TaskKind::KeyDoor | TaskKind::CrystalChest)
    }
}

/// A task: what to do, in words, and what counts as done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The kind.
    pub kind: TaskKind,
    /// The colour it names (chest, crystals, door; the crystal of `CrystalChest`).
    pub colour: Option<Colour>,
    /// The chest colour of `CrystalChest`.
    pub second: Option<Colour>,
}

impl Task {
    /// The instruction, e.g. "open the red chest".
    #[must_use]
    pub fn text(&self) -> String {
        let c = self.colour.map_or("", Colour::name);
        match self.kind {
            TaskKind::Chest => format!("open the {c} chest"),
            TaskKind::Crystals => format!("collect two {c} crystals"),
            TaskKind::Guard => "talk to the guard".to_owned(),
            TaskKind::Door => format!("go through the {c} door"),
            TaskKind::KeyDoor => "find the key, then open the locked door".to_owned(),
            TaskKind::CrystalChest => format!(
                "collect a {c} crystal, then open the {} chest",
                self.second.map_or("", Colour::name)
            ),
        }
    }
}

/// One interval of input, as the executor plays a chunk: the keys held
/// during it and the mouse motion at its start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Input {
    /// Keys held (pressed at the start if they were up; the others released).
    pub keys: Vec<Key>,
    /// Relative mouse motion, pixels right.
    pub mouse_dx: f64,
    /// Relative mouse motion, pixels down (the arena does not pitch; ignored).
    pub mouse_dy: f64,
}

impl Input {
    /// A chunk's keys with its share of the step's mouse motion.
    #[must_use]
    pub fn from_chunk(chunk: &Chunk, mouse_dx: f64, mouse_dy: f64) -> Input {
        Input {
            keys: chunk.iter().collect(),
            mouse_dx,
            mouse_dy,
        }
    }
}

/// What evaluation sees (never the policy): one JSON line of `--state-out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// World time, seconds.
    pub t: f64,
    /// The layout's seed.
    pub seed: u64,
    /// Task kind.
    pub task_kind: TaskKind,
    /// Task text.
    pub task: String,
    /// Whether the task is multi-step.
    pub multi_step: bool,
    /// Player position, cells.
    pub x: f64,
    /// Player position, cells.
    pub y: f64,
    /// Heading, degrees, 0 = +x, increasing clockwise on the map (y grows down).
    pub heading_deg: f64,
    /// Crystals collected per colour (red, green, blue, yellow).
    pub crystals: [u32; 4],
    /// Holds the key.
    pub key: bool,
    /// Colours of the opened chests.
    pub opened_chests: Vec<Colour>,
    /// Opened doors (`"locked"` for the locked one).
    pub opened_doors: Vec<String>,
    /// Doors walked through (`"locked"` for the locked one).
    pub passed_doors: Vec<String>,
    /// Cells of the crystals and key picked up.
    pub collected: Vec<[i32; 2]>,
    /// Talked to the guard.
    pub talked: bool,
    /// The task is done.
    pub success: bool,
    /// World time of success, seconds.
    pub success_t: Option<f64>,
    /// The X window id, once the window is mapped (window mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<u64>,
}

/// The arena's world.
#[derive(Debug, Clone)]
pub struct World {
    seed: u64,
    pub(crate) cells: Vec<Cell>,
    pub(crate) rooms: Vec<Room>,
    pub(crate) doors: Vec<Door>,
    pub(crate) objects: Vec<Object>,
    task: Task,
    pub(crate) x: f64,
    pub(crate) y: f64,
    pub(crate) heading: f64,
    held: Vec<Key>,
    pub(crate) slot: u8,
    jump_t: Option<f64>,
    pub(crate) crystals: [u32; 4],
    pub(crate) has_key: bool,
    talked: bool,
    message: Option<(String, f64)>,
    time: f64,
    success_at: Option<f64>,
    cell: (i32, i32),
}

/// Why a world could not be made.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// No valid layout for this seed within the attempts allowed.
    #[error("no valid layout for seed {0}")]
    NoLayout(u64),
}

fn wrap_angle(a: f64) -> f64 {
    let mut a = a % TAU;
    if a <= -PI {
        a += TAU;
    } else if a > PI {
        a -= TAU;
    }
    a
}

/// `a - b` wrapped into `(-pi, pi]`.
#[must_use]
pub fn angle_diff(a: f64, b: f64) -> f64 {
    wrap_angle(a - b)
}

impl World {
    /// The world of `seed`, with a task of kind `task` (or one drawn from the seed).
    ///
    /// # Errors
    /// No layout could be made (does not happen for seeds tried so far; the
    /// generator retries up to 1000 variants of the seed).
    pub fn new(seed: u64, task: Option<TaskKind>) -> Result<World, WorldError> {
        let kind = task.unwrap_or_else(|| {
            let mut r = Rng::new(seed ^ 0x7a5c_0000_0000_0001);
            TaskKind::ALL[r.index(TaskKind::ALL.len())]
        });
        for attempt in 0..1000u64 {
            let mut rng = Rng::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ attempt);
            if let Some(world) = generate(seed, kind, &mut rng) {
                return Ok(world);
            }
        }
        Err(WorldError::NoLayout(seed))
    }

    /// The seed.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The task.
    #[must_use]
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// The cell at `(x, y)`; outside the map is wall.
    #[must_use]
    pub fn cell(&self, x: i32, y: i32) -> Cell {
        if (0..MAP_W).contains(&x) && (0..MAP_H).contains(&y) {
            self.cells[(y * MAP_W + x) as usize]
        } else {
            Cell::Wall
        }
    }

    /// The doors.
    #[must_use]
    pub fn doors(&self) -> &[Door] {
        &self.doors
    }

    /// The objects.
    #[must_use]
    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    /// The rooms.
    #[must_use]
    pub fn rooms(&self) -> &[Room] {
        &self.rooms
    }

    /// Player position, cells.
    #[must_use]
    pub fn position(&self) -> (f64, f64) {
        (self.x, self.y)
    }

    /// Heading, radians in `(-pi, pi]`, 0 = +x, clockwise on the map.
    #[must_use]
    pub fn heading(&self) -> f64 {
        self.heading
    }

    /// World time, seconds.
    #[must_use]
    pub fn time(&self) -> f64 {
        self.time
    }

    /// Holds the key.
    #[must_use]
    pub fn has_key(&self) -> bool {
        self.has_key
    }

    /// Crystals collected of `colour`.
    #[must_use]
    pub fn crystals(&self, colour: Colour) -> u32 {
        self.crystals[colour.index()]
    }

    /// The message on screen (dialogue, "locked"), if any.
    #[must_use]
    pub fn message(&self) -> Option<&str> {
        self.message.as_ref().map(|(m, _)| m.as_str())
    }

    /// The selected inventory slot (1-4; cosmetic).
    #[must_use]
    pub fn slot(&self) -> u8 {
        self.slot
    }

    /// Camera height offset of a jump in progress (cosmetic), cells.
    #[must_use]
    pub fn jump_height(&self) -> f64 {
        self.jump_t
            .map_or(0.0, |t| 0.25 * (PI * (t / JUMP_SECONDS).min(1.0)).sin())
    }

    /// Whether the task is done.
    #[must_use]
    pub fn success(&self) -> bool {
        self.success_at.is_some()
    }

    /// Whether the cell blocks movement now (walls, closed doors, chests, the guard).
    #[must_use]
    pub fn blocked(&self, x: i32, y: i32) -> bool {
        match self.cell(x, y) {
            Cell::Wall => true,
            Cell::Door(i) => !self.doors[i].open,
            Cell::Floor => self
                .objects
                .iter()
                .any(|o| o.kind.solid() && o.cell == (x, y)),
        }
    }

    fn blocked_at(&self, x: f64, y: f64) -> bool {
        let r = PLAYER_RADIUS;
        [
            (x - r, y - r),
            (x + r, y - r),
            (x - r, y + r),
            (x + r, y + r),
        ]
        .iter()
        .any(|&(px, py)| self.blocked(px.floor() as i32, py.floor() as i32))
    }

    /// Presses `key` (nothing if it is already down).
    pub fn press(&mut self, key: Key) {
        if self.held.contains(&key) {
            return;
        }
        self.held.push(key);
        match key {
            Key::F => self.interact(),
            Key::Space if self.jump_t.is_none() => self.jump_t = Some(0.0),
            Key::Digit1 => self.slot = 1,
            Key::Digit2 => self.slot = 2,
            Key::Digit3 => self.slot = 3,
            Key::Digit4 => self.slot = 4,
            _ => {}
        }
    }

    /// Releases `key`.
    pub fn release(&mut self, key: Key) {
        self.held.retain(|&k| k != key);
    }

    /// Releases every key (focus lost).
    pub fn release_all(&mut self) {
        self.held.clear();
    }

    /// Turns the view by relative mouse motion (pixels right).
    pub fn turn(&mut self, mouse_dx: f64) {
        self.heading = wrap_angle(self.heading + mouse_dx * TURN_RAD_PER_PX);
    }

    /// One interval of input: presses and releases to match `input.keys`,
    /// turns by its mouse motion, then advances `dt` seconds.
    pub fn step(&mut self, input: &Input, dt: f64) {
        let up: Vec<Key> = self
            .held
            .iter()
            .copied()
            .filter(|k| !input.keys.contains(k))
            .collect();
        for k in up {
            self.release(k);
        }
        for &k in &input.keys {
            self.press(k);
        }
        self.turn(input.mouse_dx);
        self.advance(dt);
    }

    /// Advances `dt` seconds with the keys as they are held.
    pub fn advance(&mut self, dt: f64) {
        if dt <= 0.0 {
            return;
        }
        let down = |k: Key| f64::from(u8::from(self.held.contains(&k)));
        let forward = down(Key::W) - down(Key::S);
        let strafe = down(Key::D) - down(Key::A);
        let speed = if self.held.contains(&Key::Shift) {
            SPRINT_SPEED
        } else {
            WALK_SPEED
        };
        let (s, c) = self.heading.sin_cos();
        // Forward is (cos, sin); right (y grows down) is (-sin, cos).
        let (mut vx, mut vy) = (forward * c - strafe * s, forward * s + strafe * c);
        let norm = vx.hypot(vy);
        if norm > 0.0 {
            vx *= speed / norm;
            vy *= speed / norm;
        }
        // Sub-steps of at most 0.05 cells so nothing is skipped.
        let dist = speed * dt * f64::from(u8::from(norm > 0.0));
        let n = ((dist / 0.05).ceil() as usize).max(1);
        let h = dt / n as f64;
        for _ in 0..n {
            if norm > 0.0 {
                let nx = self.x + vx * h;
                if !self.blocked_at(nx, self.y) {
                    self.x = nx;
                }
                let ny = self.y + vy * h;
                if !self.blocked_at(self.x, ny) {
                    self.y = ny;
                }
                self.after_move();
            }
            self.time += h;
        }
        if let Some(t) = &mut self.jump_t {
            *t += dt;
            if *t >= JUMP_SECONDS {
                self.jump_t = None;
            }
        }
        if self
            .message
            .as_ref()
            .is_some_and(|(_, until)| self.time >= *until)
        {
            self.message = None;
        }
    }

    fn say(&mut self, text: &str) {
        self.message = Some((text.to_owned(), self.time + MESSAGE_SECONDS));
    }

    /// Pick-ups and door passages after a move.
    fn after_move(&mut self) {
        let (x, y, time) = (self.x, self.y, self.time);
        for o in &mut self.objects {
            if o.done || o.kind.solid() {
                continue;
            }
            let (cx, cy) = o.centre();
            if (cx - x).hypot(cy - y) < PICKUP_RANGE {
                o.done = true;
                o.done_at = Some(time);
                match o.kind {
                    ObjectKind::Crystal(c) => self.crystals[c.index()] += 1,
                    ObjectKind::Key => self.has_key = true,
                    _ => {}
                }
            }
        }
        let cell = (x.floor() as i32, y.floor() as i32);
        if cell != self.cell {
            let prev = self.cell;
            self.cell = cell;
            for d in &mut self.doors {
                let side = |c: (i32, i32)| {
                    if d.along_x {
                        (c.0 - d.cell.0).signum()
                    } else {
                        (c.1 - d.cell.1).signum()
                    }
                };
                if d.cell == cell {
                    d.entered_from = side(prev);
                } else if d.cell == prev {
                    if d.entered_from != 0 && side(cell) == -d.entered_from {
                        d.passed = true;
                    }
                    d.entered_from = 0;
                }
            }
        }
        self.check_success();
    }

    /// What F would act on now: the nearest closed door, unopened chest or the
    /// guard within range and in view.
    fn interaction_target(&self) -> Option<Target> {
        let mut best: Option<(f64, Target)> = None;
        let mut consider = |centre: (f64, f64), t: Target| {
            let (dx, dy) = (centre.0 - self.x, centre.1 - self.y);
            let d = dx.hypot(dy);
            let a = angle_diff(dy.atan2(dx), self.heading).abs();
            if d < INTERACT_RANGE && a < INTERACT_ANGLE && best.as_ref().is_none_or(|b| d < b.0) {
                best = Some((d, t));
            }
        };
        for (i, o) in self.objects.iter().enumerate() {
            let open = match o.kind {
                ObjectKind::Chest(_) => !o.done,
                ObjectKind::Guard => true,
                _ => false,
            };
            if open {
                consider(o.centre(), Target::Object(i));
            }
        }
        for (i, d) in self.doors.iter().enumerate() {
            if !d.open {
                let c = (f64::from(d.cell.0) + 0.5, f64::from(d.cell.1) + 0.5);
                consider(c, Target::Door(i));
            }
        }
        best.map(|b| b.1)
    }

    fn interact(&mut self) {
        let time = self.time;
        match self.interaction_target() {
            Some(Target::Object(i)) => {
                let o = &mut self.objects[i];
                match o.kind {
                    ObjectKind::Chest(c) => {
                        o.done = true;
                        o.done_at = Some(time);
                        self.say(&format!("You opened the {} chest.", c.name()));
                    }
                    ObjectKind::Guard => {
                        if !o.done {
                            o.done = true;
                            o.done_at = Some(time);
                        }
                        self.talked = true;
                        self.say(GUARD_LINE);
                    }
                    _ => {}
                }
            }
            Some(Target::Door(i)) => {
                if self.doors[i].locked && !self.has_key {
                    self.say("The door is locked.");
                } else {
                    self.doors[i].open = true;
                    let msg = match self.doors[i].colour {
                        Some(c) => format!("The {} door opens.", c.name()),
                        None => "You unlock the door.".to_owned(),
                    };
                    self.say(&msg);
                }
            }
            None => {}
        }
        self.check_success();
    }

    fn chest(&self, colour: Colour) -> Option<&Object> {
        self.objects
            .iter()
            .find(|o| o.kind == ObjectKind::Chest(colour))
    }

    fn check_success(&mut self) {
        if self.success_at.is_some() {
            return;
        }
        let t = &self.task;
        let done = match t.kind {
            TaskKind::Chest => t.colour.and_then(|c| self.chest(c)).is_some_and(|o| o.done),
            TaskKind::Crystals => t.colour.is_some_and(|c| self.crystals[c.index()] >= 2),
            TaskKind::Guard => self.talked,
            TaskKind::Door => self
                .doors
                .iter()
                .any(|d| d.colour.is_some() && d.colour == t.colour && d.passed),
            TaskKind::KeyDoor => self.doors.iter().any(|d| d.locked && d.open),
            TaskKind::CrystalChest => {
                let chest_at = t.second.and_then(|c| self.chest(c)).and_then(|o| o.done_at);
                let crystal_at = self
                    .objects
                    .iter()
                    .filter(|o| Some(o.kind) == t.colour.map(ObjectKind::Crystal))
                    .filter_map(|o| o.done_at)
                    .reduce(f64::min);
                matches!((crystal_at, chest_at), (Some(a), Some(b)) if a <= b)
            }
        };
        if done {
            self.success_at = Some(self.time);
        }
    }

    /// The state evaluation reads.
    #[must_use]
    pub fn state(&self) -> State {
        let door_name = |d: &Door| d.colour.map_or("locked", Colour::name).to_owned();
        State {
            t: self.time,
            seed: self.seed,
            task_kind: self.task.kind,
            task: self.task.text(),
            multi_step: self.task.kind.multi_step(),
            x: self.x,
            y: self.y,
            heading_deg: self.heading.to_degrees(),
            crystals: self.crystals,
            key: self.has_key,
            opened_chests: self
                .objects
                .iter()
                .filter_map(|o| match o.kind {
                    ObjectKind::Chest(c) if o.done => Some(c),
                    _ => None,
                })
                .collect(),
            opened_doors: self
                .doors
                .iter()
                .filter(|d| d.open)
                .map(door_name)
                .collect(),
            passed_doors: self
                .doors
                .iter()
                .filter(|d| d.passed)
                .map(door_name)
                .collect(),
            collected: self
                .objects
                .iter()
                .filter(|o| o.done && !o.kind.solid())
                .map(|o| [o.cell.0, o.cell.1])
                .collect(),
            talked: self.talked,
            success: self.success_at.is_some(),
            success_t: self.success_at,
            window: None,
        }
    }

    /// Brings a freshly made world of the same seed and task to `state`
    /// (position, heading, what was collected, opened, talked to), so that
    /// the expert can plan from states an arena window reports.
    pub fn sync_to(&mut self, state: &State) {
        self.x = state.x;
        self.y = state.y;
        self.heading = wrap_angle(state.heading_deg.to_radians());
        self.cell = (self.x.floor() as i32, self.y.floor() as i32);
        self.has_key = state.key;
        self.talked = state.talked;
        self.crystals = state.crystals;
        self.time = state.t;
        let name = |d: &Door| d.colour.map_or("locked", Colour::name).to_owned();
        for d in &mut self.doors {
            d.open = state.opened_doors.contains(&name(d));
            d.passed = state.passed_doors.contains(&name(d));
        }
        for o in &mut self.objects {
            o.done = match o.kind {
                ObjectKind::Chest(c) => state.opened_chests.contains(&c),
                ObjectKind::Guard => state.talked,
                ObjectKind::Key | ObjectKind::Crystal(_) => {
                    state.collected.contains(&[o.cell.0, o.cell.1])
                }
            };
        }
        self.success_at = state.success_t;
    }
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Object(usize),
    Door(usize),
}

/// Makes one candidate world; `None` when this variant is not valid.
fn generate(seed: u64, kind: TaskKind, rng: &mut Rng) -> Option<World> {
    let mut cells = vec![Cell::Wall; (MAP_W * MAP_H) as usize];
    let set = |cells: &mut Vec<Cell>, x: i32, y: i32, c: Cell| cells[(y * MAP_W + x) as usize] = c;
    let get = |cells: &[Cell], x: i32, y: i32| {
        if (0..MAP_W).contains(&x) && (0..MAP_H).contains(&y) {
            cells[(y * MAP_W + x) as usize]
        } else {
            Cell::Wall
        }
    };
    // One hall, placed anywhere on the map.
    let (w, h) = (rng.range(HALL_W.0, HALL_W.1), rng.range(HALL_H.0, HALL_H.1));
    let hall = Room {
        x: rng.range(1, MAP_W - 1 - w),
        y: rng.range(1, MAP_H - 1 - h),
        w,
        h,
    };
    for y in hall.y..hall.y + hall.h {
        for x in hall.x..hall.x + hall.w {
            set(&mut cells, x, y, Cell::Floor);
        }
    }
    // Door candidates: wall cells on the hall's sides (away from its corners),
    // each opening into a closet of 3 x 2 cells behind it.
    let mut candidates = Vec::new();
    for x in hall.x + 1..hall.x + hall.w - 1 {
        candidates.push(((x, hall.y - 1), (0, -1)));
        candidates.push(((x, hall.y + hall.h), (0, 1)));
    }
    for y in hall.y + 1..hall.y + hall.h - 1 {
        candidates.push(((hall.x - 1, y), (-1, 0)));
        candidates.push(((hall.x + hall.w, y), (1, 0)));
    }
    rng.shuffle(&mut candidates);
    let mut rooms = vec![hall];
    let mut chosen: Vec<(i32, i32, bool)> = Vec::new();
    for ((dx, dy), (ox, oy)) in candidates {
        // The closet: two cells deep out of the wall, three wide across.
        let closet = Room {
            x: if ox == 0 {
                dx - 1
            } else {
                dx + ox.min(0) * 2 + ox.max(0)
            },
            y: if oy == 0 {
                dy - 1
            } else {
                dy + oy.min(0) * 2 + oy.max(0)
            },
            w: if ox == 0 { 3 } else { 2 },
            h: if oy == 0 { 3 } else { 2 },
        };
        // It and the ring of wall around it must be untouched map, so that
        // closets never merge with each other or the hall.
        let clear = (closet.y - 1..=closet.y + closet.h).all(|y| {
            (closet.x - 1..=closet.x + closet.w).all(|x| {
                (x, y) == (dx, dy)
                    || ((0..MAP_W).contains(&x)
                        && (0..MAP_H).contains(&y)
                        && get(&cells, x, y) == Cell::Wall
                        && !hall.contains(x, y))
            })
        }) && closet.x >= 1
            && closet.y >= 1
            && closet.x + closet.w < MAP_W
            && closet.y + closet.h < MAP_H;
        if !clear {
            continue;
        }
        for y in closet.y..closet.y + closet.h {
            for x in closet.x..closet.x + closet.w {
                set(&mut cells, x, y, Cell::Floor);
            }
        }
        rooms.push(closet);
        chosen.push((dx, dy, oy == 0));
        if chosen.len() == 3 {
            break;
        }
    }
    if chosen.len() < 3 {
        return None;
    }
    let open = |cells: &[Cell], x: i32, y: i32| get(cells, x, y) != Cell::Wall;
    let mut colours = Colour::ALL;
    rng.shuffle(&mut colours);
    let doors: Vec<Door> = chosen
        .iter()
        .enumerate()
        .map(|(i, &(x, y, along_x))| Door {
            cell: (x, y),
            colour: (i > 0).then(|| colours[i - 1]),
            locked: i == 0,
            open: false,
            along_x,
            entered_from: 0,
            passed: false,
        })
        .collect();
    for (i, d) in doors.iter().enumerate() {
        set(&mut cells, d.cell.0, d.cell.1, Cell::Door(i));
    }
    // Objects and the start in the hall, off the cells in front of doors.
    let mut spots = Vec::new();
    for y in hall.y..hall.y + hall.h {
        for x in hall.x..hall.x + hall.w {
            let entrance = [(1, 0), (-1, 0), (0, 1), (0, -1)]
                .iter()
                .any(|&(dx, dy)| open(&cells, x + dx, y + dy) && !hall.contains(x + dx, y + dy));
            if !entrance {
                spots.push((x, y));
            }
        }
    }
    rng.shuffle(&mut spots);
    if spots.len() < 12 {
        return None;
    }
    let start = spots[0];
    let mut chest_colours = Colour::ALL;
    rng.shuffle(&mut chest_colours);
    let mut crystal_colours = Colour::ALL;
    rng.shuffle(&mut crystal_colours);
    let mut kinds = vec![ObjectKind::Guard, ObjectKind::Key];
    kinds.extend(chest_colours[..3].iter().map(|&c| ObjectKind::Chest(c)));
    for &c in &crystal_colours[..3] {
        kinds.push(ObjectKind::Crystal(c));
        kinds.push(ObjectKind::Crystal(c));
    }
    let objects: Vec<Object> = kinds
        .iter()
        .zip(&spots[1..])
        .map(|(&kind, &cell)| Object {
            kind,
            cell,
            done: false,
            done_at: None,
        })
        .collect();
    let task = Task {
        kind,
        colour: match kind {
            TaskKind::Chest => Some(chest_colours[rng.index(3)]),
            TaskKind::Crystals | TaskKind::CrystalChest => Some(crystal_colours[rng.index(3)]),
            TaskKind::Door => doors[1 + rng.index(2)].colour,
            TaskKind::Guard | TaskKind::KeyDoor => None,
        },
        second: (kind == TaskKind::CrystalChest).then(|| chest_colours[rng.index(3)]),
    };
    let heading = wrap_angle(rng.unit() * TAU);
    let world = World {
        seed,
        cells,
        rooms,
        doors,
        objects,
        task,
        x: f64::from(start.0) + 0.5,
        y: f64::from(start.1) + 0.5,
        heading,
        held: Vec::new(),
        slot: 1,
        jump_t: None,
        crystals: [0; 4],
        has_key: false,
        talked: false,
        message: None,
        time: 0.0,
        success_at: None,
        cell: start,
    };
    world.solvable().then_some(world)
}

impl World {
    /// Whether every object and both sides of every coloured door can be
    /// reached without the key (closed coloured doors count as open).
    fn solvable(&self) -> bool {
        let reach = self.reachable(false);
        let r = |x: i32, y: i32| {
            (0..MAP_W).contains(&x) && (0..MAP_H).contains(&y) && reach[(y * MAP_W + x) as usize]
        };
        let near = |c: (i32, i32)| {
            [(1, 0), (-1, 0), (0, 1), (0, -1)]
                .iter()
                .any(|&(dx, dy)| r(c.0 + dx, c.1 + dy))
        };
        let objects_ok = self.objects.iter().all(|o| {
            if o.kind.solid() {
                near(o.cell)
            } else {
                r(o.cell.0, o.cell.1)
            }
        });
        let doors_ok = self.doors.iter().all(|d| {
            let (a, b) = if d.along_x {
                ((d.cell.0 - 1, d.cell.1), (d.cell.0 + 1, d.cell.1))
            } else {
                ((d.cell.0, d.cell.1 - 1), (d.cell.0, d.cell.1 + 1))
            };
            if d.locked {
                r(a.0, a.1) || r(b.0, b.1)
            } else {
                r(a.0, a.1) && r(b.0, b.1)
            }
        });
        objects_ok && doors_ok
    }

    /// Cells reachable from the player's, 4-connected, through floor and
    /// closed-but-openable doors (the locked one only with `with_key`).
    pub(crate) fn reachable(&self, with_key: bool) -> Vec<bool> {
        let mut seen = vec![false; (MAP_W * MAP_H) as usize];
        let start = (self.x.floor() as i32, self.y.floor() as i32);
        let mut queue = std::collections::VecDeque::from([start]);
        seen[(start.1 * MAP_W + start.0) as usize] = true;
        while let Some((x, y)) = queue.pop_front() {
            for (dx, dy) in [(1, 0), (-1, 0), (0, 1), (0, -1)] {
                let (nx, ny) = (x + dx, y + dy);
                if !self.walkable_for_plan(nx, ny, with_key) {
                    continue;
                }
                let i = (ny * MAP_W + nx) as usize;
                if !seen[i] {
                    seen[i] = true;
                    queue.push_back((nx, ny));
                }
            }
        }
        seen
    }

    /// Walkable for planning: floor without solid objects, open doors,
    /// closed doors that can be opened (the locked one only with the key).
    pub(crate) fn walkable_for_plan(&self, x: i32, y: i32, with_key: bool) -> bool {
        match self.cell(x, y) {
            Cell::Wall => false,
            Cell::Door(i) => !self.doors[i].locked || self.doors[i].open || with_key,
            Cell::Floor => !self
                .objects
                .iter()
                .any(|o| o.kind.solid() && o.cell == (x, y)),
        }
    }
}
