//! The real-time agent runtime (SPEC.md sections 2-4, 8): capture, the
//! context window, the policy, the 30 Hz executor, safety, operator
//! takeover and recording, behind one handle ([`Runtime`]) that takes
//! [`Command`]s and emits [`Event`]s.
//!
//! ```text
//! FrameInput ─▶ agent thread ─(context)─▶ Policy ─streamed chunks─▶ executor thread ─▶ InputSink
//!                   │                                                   │ 30 Hz grid, hold diffs,
//!                   └──▶ recorder thread (trajectory on disk)           │ deny-list, releases
//! commands ─▶ control thread ◀─ InputMonitor (takeover, emergency stop), signals
//! every thread ─▶ bounded, lossy event stream ─▶ console / CLI
//! ```
//!
//! Safety is layered so that no single stuck thread can leave a key held:
//! the executor checks the stop flags and the epoch before every chunk and
//! releases on any change; it releases on a refused injection (focus lost),
//! on a deadline miss, on exit and when it panics; the policy runs under
//! `catch_unwind`; SIGINT and SIGTERM only flip flags the executor watches.

mod agent;
pub mod clock;
mod command;
mod control;
mod dry_run;
mod events;
mod executor;
pub mod frames;
pub mod live;
mod mouse;
pub mod policy;
mod priority;
pub mod quantize;
pub mod record;
mod recorder;
mod runtime;
pub mod safety;
pub mod signals;
pub mod timing;
pub mod trajectory;

pub use agent::RunSummary;
pub use command::{COMMAND_CAPACITY, Command};
pub use dry_run::DryRunSink;
pub use events::{
    Actor, ChunkPlayed, ContextStep, EVENT_CAPACITY, Event, EventKind, EventSender, PauseReason,
    PolicyStages, RunState, StageLatency, StepDecided, StopReason, event_channel,
};
pub use executor::ExecutorStats;
pub use frames::{DirFrames, FrameError, FrameInput};
pub use mouse::MouseScaler;
pub use policy::{Observation, Policy, PolicyError};
pub use runtime::{FocusTarget, Runtime, RuntimeConfig, RuntimeError, RuntimeParts};
pub use safety::{DenyList, key_from_name};
pub use timing::BoundaryStats;
