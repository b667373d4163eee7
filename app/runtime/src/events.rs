//! What the runtime reports: a bounded, lossy event stream with monotonic
//! timestamps.
//!
//! The real-time path never blocks on a slow reader: [`EventSender::send`]
//! drops the event when the channel is full and counts it
//! ([`EventSender::dropped`]). The console drains the receiver every frame.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use lumine_action::{Chunk, Key};

use crate::policy::SharedFrame;

/// Default capacity of the event channel.
pub const EVENT_CAPACITY: usize = 1024;

/// One event with the monotonic time it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When it happened.
    pub at: Instant,
    /// What happened.
    pub kind: EventKind,
}

/// What the runtime is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// Set up, waiting for [`crate::Command::Start`].
    Ready,
    /// Capturing, asking the policy and playing its actions.
    Running,
    /// Not acting; nothing is held.
    Paused(PauseReason),
    /// The operator's hands are on the controls; the agent yields.
    OperatorControl,
    /// Finished; nothing is held and the threads are ending.
    Stopped(StopReason),
    /// Ended by an error (a policy panic, a failed sink); nothing is held.
    Failed(String),
}

impl RunState {
    /// True for [`RunState::Stopped`] and [`RunState::Failed`].
    #[must_use]
    pub fn is_final(&self) -> bool {
        matches!(self, RunState::Stopped(_) | RunState::Failed(_))
    }
}

/// Why the agent is paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PauseReason {
    /// The operator asked for it.
    Command,
    /// The target window lost keyboard focus (resumes when it has it again).
    FocusLost,
    /// The target window cannot be captured: closed, minimised, unmapped
    /// (resumes when a capture succeeds again).
    WindowUnavailable(String),
}

/// Why the runtime stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// [`crate::Command::Stop`].
    Command,
    /// The emergency-stop hotkey or [`crate::Command::EmergencyStop`].
    EmergencyStop,
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// The step limit was reached or the policy has no more turns.
    Finished,
}

/// Who produced a step's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The policy.
    Agent,
    /// The human operator (takeover, injected action text, demonstrations).
    Operator,
}

/// A chunk the executor played.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlayed {
    /// Step index.
    pub step: u64,
    /// Chunk index in the step, `0..6`.
    pub index: usize,
    /// Keys held during the chunk (after the deny-list).
    pub keys: Chunk,
    /// Keys pressed at its start.
    pub pressed: Chunk,
    /// Keys released at its start.
    pub released: Chunk,
    /// Pointer motion injected, pixels.
    pub mouse_px: (i32, i32),
    /// Wheel steps injected.
    pub scroll: i32,
    /// Where the 30 Hz grid put the chunk boundary.
    pub scheduled: Instant,
    /// When the executor started injecting it.
    pub started: Instant,
    /// How long the injection call took, microseconds.
    pub inject_us: u64,
}

impl ChunkPlayed {
    /// How far the boundary landed from the grid, microseconds (positive: late).
    #[must_use]
    pub fn boundary_error_us(&self) -> i64 {
        if self.started >= self.scheduled {
            i64::try_from((self.started - self.scheduled).as_micros()).unwrap_or(i64::MAX)
        } else {
            -i64::try_from((self.scheduled - self.started).as_micros()).unwrap_or(i64::MAX)
        }
    }
}

/// Per-stage latencies of one step, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct StageLatency {
    /// Reading the window.
    pub capture_ms: f64,
    /// Scaling the frame to the model's size.
    pub scale_ms: f64,
    /// Updating and rendering the context.
    pub context_ms: f64,
    /// From asking the policy to its first chunk.
    pub first_chunk_ms: f64,
    /// From asking the policy to the end of its turn.
    pub turn_ms: f64,
    /// Inside the policy (engine only): image preprocessing.
    #[serde(default)]
    pub preprocess_ms: f64,
    /// Inside the policy (engine only): the vision encoder.
    #[serde(default)]
    pub vision_ms: f64,
    /// Inside the policy (engine only): embedding and the prefill pass.
    #[serde(default)]
    pub prefill_ms: f64,
}

/// Where a model-backed policy spent its last turn, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PolicyStages {
    /// Image preprocessing.
    pub preprocess_ms: f64,
    /// The vision encoder.
    pub vision_ms: f64,
    /// Embedding and the prefill pass.
    pub prefill_ms: f64,
}

/// One step decided: what will be played and how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDecided {
    /// Step index.
    pub step: u64,
    /// Who decided it.
    pub actor: Actor,
    /// The thought, if any.
    pub thought: Option<String>,
    /// The action, canonical text.
    pub action: String,
    /// Latencies of the stages.
    pub latency: StageLatency,
}

/// One step in the context window, as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextStep {
    /// Step index.
    pub step: u64,
    /// Tokens the step costs in the prompt.
    pub tokens: usize,
    /// The answer the model sees for it (`None` while it is being decided).
    pub answer: Option<String>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// The run state changed.
    State(RunState),
    /// A frame was captured for a step.
    FrameCaptured {
        /// Step index.
        step: u64,
        /// Captured width, pixels.
        width: u32,
        /// Captured height, pixels.
        height: u32,
        /// The frame as the policy sees it (scaled to the model's size),
        /// shared, not copied: the console shows it.
        frame: SharedFrame,
    },
    /// The context window changed.
    ContextChanged {
        /// The step whose frame was added or answered.
        step: u64,
        /// Frames in the window.
        frames: usize,
        /// Estimated prompt tokens.
        tokens: usize,
        /// Steps evicted, oldest first.
        evicted: Vec<u64>,
        /// True when a new thought flushed the window.
        flushed: bool,
        /// The window after the change, oldest step first.
        window: Vec<ContextStep>,
        /// The goal text the prompt carries: the latest thought, else the
        /// operator's instruction.
        goal: Option<String>,
        /// Tokens of the system prompt and the goal.
        fixed_tokens: usize,
    },
    /// The policy wrote a thought.
    Thought {
        /// Step index.
        step: u64,
        /// The thought.
        text: String,
    },
    /// A chunk was played.
    ChunkPlayed(ChunkPlayed),
    /// A chunk was not ready at its boundary: the executor released what was
    /// held instead of running blind.
    DeadlineMiss {
        /// Step index.
        step: u64,
        /// Chunk index, `0..6`.
        index: usize,
        /// Keys released because of it.
        released: Chunk,
    },
    /// The deny-list dropped keys from a chunk.
    KeysDenied {
        /// Step index.
        step: u64,
        /// Chunk index, `0..6`.
        index: usize,
        /// The combination that would have been held, e.g. `Alt+F4`.
        combination: String,
        /// Keys dropped from the chunk.
        dropped: Vec<Key>,
    },
    /// A turn was rejected (parse error, policy error): nothing more of it
    /// is played and every key is released.
    TurnRejected {
        /// Step index.
        step: u64,
        /// Why.
        error: String,
    },
    /// A step's input is decided.
    StepDecided(StepDecided),
    /// Something the operator should know that does not change the state.
    Notice(String),
}

/// The sending side of the event stream (cheap to clone).
#[derive(Debug, Clone)]
pub struct EventSender {
    tx: Sender<Event>,
    dropped: Arc<AtomicU64>,
}

/// Creates an event stream of `capacity` events.
#[must_use]
pub fn event_channel(capacity: usize) -> (EventSender, Receiver<Event>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    (
        EventSender {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        },
        rx,
    )
}

impl EventSender {
    /// Sends `kind` stamped now; never blocks (drops and counts when full).
    pub fn send(&self, kind: EventKind) {
        self.send_at(Instant::now(), kind);
    }

    /// Sends `kind` stamped `at`; never blocks.
    pub fn send_at(&self, at: Instant, kind: EventKind) {
        match self.tx.try_send(Event { at, kind }) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Events dropped so far because the reader was slow.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_channel_drops_and_counts() {
        let (tx, rx) = event_channel(2);
        for _ in 0..5 {
            tx.send(EventKind::Notice("x".to_owned()));
        }
        assert_eq!(rx.len(), 2);
        assert_eq!(tx.dropped(), 3);
        drop(rx);
        // A gone reader is not an error either.
        tx.send(EventKind::Notice("y".to_owned()));
    }
}
