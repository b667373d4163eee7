//! The practice arena: a small first-person world for the agent to play
//! without a game, a GPU or a large checkpoint.
//!
//! * [`world`]: a seeded hall with three doors into closets, coloured chests,
//!   crystals and doors, a key, a locked door and a guard; movement,
//!   collision and interaction rules; the task and its success predicate;
//!   the [`world::State`] evaluation reads (never drawn for the policy).
//! * [`render`]: a software ray-caster (walls, doors, floor, sprites) and the
//!   HUD ([`hud`]) into a 320x180 RGB frame.
//! * [`expert`]: scripted experts that read the world and answer each 200 ms
//!   step with an action in the model's action language: the servo (what the
//!   bundled policy imitates: it acts on what the frame shows) and the looking
//!   expert (it plans its path on the grid).
//! * `window` (Linux): the world in an ordinary X11 window, controlled only
//!   like a game (keys, relative mouse motion through XInput2 raw events),
//!   with the state written as JSON lines for an evaluator.
//!
//! Headless use, faster than real time:
//!
//! ```
//! use lumine_arena::world::{Input, World, TaskKind};
//! use lumine_action::Key;
//! let mut world = World::new(7, Some(TaskKind::Guard)).unwrap();
//! let before = world.position();
//! world.step(&Input { keys: vec![Key::W], mouse_dx: 40.0, mouse_dy: 0.0 }, 0.2);
//! let mut rgb = Vec::new();
//! world.render(&mut rgb);
//! assert_eq!(rgb.len(), 320 * 180 * 3);
//! # let _ = before;
//! ```

pub mod expert;
pub mod hud;
pub mod render;
pub mod rng;
#[cfg(target_os = "linux")]
pub mod window;
pub mod world;

pub use world::{State, Task, TaskKind, World};

impl World {
    /// Renders the view into `rgb` as packed RGB8, [`render::RENDER_W`] x
    /// [`render::RENDER_H`].
    pub fn render(&self, rgb: &mut Vec<u8>) {
        render::render(self, rgb);
    }
}
