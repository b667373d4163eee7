//! What the console knows about the run: a pure fold of [`UiEvent`]s, so
//! the panels only draw and the tests can check the bookkeeping without a
//! window.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use lumine_action::Chunk;
use lumine_runtime::policy::SharedFrame;
use lumine_runtime::{
    ContextStep, Event, EventKind, PauseReason, RunState, StageLatency, StopReason,
};

use crate::backend::{RunInfo, UiEvent};

/// Thoughts kept in the history.
const THOUGHTS_KEPT: usize = 200;
/// Chunks kept for the timeline (the last ~5 s at 30 Hz).
const CHUNKS_KEPT: usize = 150;
/// Steps kept for the latency plots.
const LATENCIES_KEPT: usize = 150;
/// How long an evicted step is shown leaving the context strip.
pub const EVICTED_SHOWN: Duration = Duration::from_millis(1500);
/// Window over which the effective frame rate is measured.
const FPS_WINDOW: Duration = Duration::from_secs(3);

/// Where the run is, as the status bar says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Nothing launched.
    Idle,
    /// A launch was asked for; the model and the window are being opened.
    Launching,
    /// The runtime's own state.
    Run(RunState),
    /// The launch failed.
    LaunchFailed(String),
}

impl Phase {
    /// True while a run is launching or alive (Start would be a second run).
    #[must_use]
    pub fn is_active(&self) -> bool {
        match self {
            Phase::Launching => true,
            Phase::Run(state) => !state.is_final(),
            Phase::Idle | Phase::LaunchFailed(_) => false,
        }
    }
}

/// A thought with its step and arrival time.
#[derive(Debug, Clone, PartialEq)]
pub struct ThoughtEntry {
    /// Step index.
    pub step: u64,
    /// When it arrived.
    pub at: Instant,
    /// The text.
    pub text: String,
}

/// One cell of the chunk timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkCell {
    /// Step index.
    pub step: u64,
    /// Chunk index, `0..6`.
    pub index: usize,
    /// Keys held.
    pub keys: Chunk,
    /// Pointer motion, pixels.
    pub mouse_px: (i32, i32),
    /// When it started.
    pub at: Instant,
    /// True for a deadline miss (nothing was ready; keys were released).
    pub missed: bool,
    /// How late its boundary landed, ms.
    pub late_ms: f64,
}

/// A step leaving the context window.
#[derive(Debug, Clone, PartialEq)]
pub struct Evicted {
    /// Step index.
    pub step: u64,
    /// When it left.
    pub at: Instant,
}

/// The console's model of the run.
#[derive(Debug, Default)]
pub struct RunModel {
    /// Launch and runtime state.
    pub phase: PhaseCell,
    /// What the launcher said about the run.
    pub info: Option<RunInfo>,
    /// The newest frame and its step.
    pub frame: Option<(u64, SharedFrame)>,
    /// Bumped on each new frame (the live view uploads a texture only then).
    pub frame_serial: u64,
    /// Frames of the steps in the context window, by step.
    pub frames: BTreeMap<u64, SharedFrame>,
    /// The newest thought.
    pub thought: Option<ThoughtEntry>,
    /// Earlier thoughts, newest last.
    pub thoughts: VecDeque<ThoughtEntry>,
    /// The context window, oldest first.
    pub window: Vec<ContextStep>,
    /// The goal text the prompt carries.
    pub goal: Option<String>,
    /// Prompt tokens now.
    pub tokens: usize,
    /// Tokens of the system prompt and the goal.
    pub fixed_tokens: usize,
    /// Steps recently evicted.
    pub evicted: VecDeque<Evicted>,
    /// The chunk timeline, oldest first.
    pub chunks: VecDeque<ChunkCell>,
    /// Keys held right now (by the last chunk played).
    pub held: Chunk,
    /// Pointer motion of the last chunk played, pixels.
    pub mouse_px: (i32, i32),
    /// Per-step latencies, oldest first.
    pub latencies: VecDeque<(u64, StageLatency)>,
    /// Steps decided.
    pub steps: u64,
    /// Deadline misses.
    pub misses: u64,
    /// Frame capture times, for the effective rate.
    captures: VecDeque<Instant>,
    /// The last few things the operator should read (rejections, denials).
    pub notices: VecDeque<String>,
}

/// The phase, with a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseCell(pub Phase);

impl Default for PhaseCell {
    fn default() -> Self {
        PhaseCell(Phase::Idle)
    }
}

fn push_capped<T>(queue: &mut VecDeque<T>, item: T, cap: usize) {
    if queue.len() == cap {
        queue.pop_front();
    }
    queue.push_back(item);
}

impl RunModel {
    /// The phase.
    #[must_use]
    pub fn phase(&self) -> &Phase {
        &self.phase.0
    }

    /// A launch was asked for: forget the previous run.
    pub fn launching(&mut self) {
        *self = RunModel {
            phase: PhaseCell(Phase::Launching),
            ..RunModel::default()
        };
    }

    /// Frames captured per second over the last few seconds.
    #[must_use]
    pub fn fps(&self, now: Instant) -> f64 {
        let recent = self
            .captures
            .iter()
            .filter(|t| now.saturating_duration_since(**t) <= FPS_WINDOW)
            .count();
        recent as f64 / FPS_WINDOW.as_secs_f64()
    }

    /// True while the operator has the controls.
    #[must_use]
    pub fn operator_control(&self) -> bool {
        matches!(self.phase(), Phase::Run(RunState::OperatorControl))
    }

    /// Folds one event in.
    pub fn apply(&mut self, event: UiEvent) {
        match event {
            UiEvent::Launched(info) => {
                self.info = Some(info);
                if self.phase() == &Phase::Launching {
                    self.phase.0 = Phase::Run(RunState::Ready);
                }
            }
            UiEvent::LaunchFailed(message) => self.phase.0 = Phase::LaunchFailed(message),
            UiEvent::Runtime(event) => self.apply_runtime(event),
            UiEvent::Ended { state, summary } => {
                self.phase.0 = Phase::Run(state);
                self.held = Chunk::default();
                self.mouse_px = (0, 0);
                push_capped(&mut self.notices, summary, 8);
            }
            UiEvent::Windows(_) | UiEvent::ModelPicked(_) => {}
        }
    }

    fn apply_runtime(&mut self, event: Event) {
        let at = event.at;
        match event.kind {
            EventKind::State(state) => {
                if !matches!(state, RunState::Running) {
                    self.held = Chunk::default();
                    self.mouse_px = (0, 0);
                }
                self.phase.0 = Phase::Run(state);
            }
            EventKind::FrameCaptured { step, frame, .. } => {
                push_capped(&mut self.captures, at, 64);
                self.frames.insert(step, std::sync::Arc::clone(&frame));
                self.frame = Some((step, frame));
                self.frame_serial += 1;
            }
            EventKind::ContextChanged {
                tokens,
                evicted,
                window,
                goal,
                fixed_tokens,
                ..
            } => {
                for step in evicted {
                    push_capped(&mut self.evicted, Evicted { step, at }, 32);
                }
                // Keep the frames of steps in the window, the newest capture
                // (about to enter it) and those shown leaving.
                let newest = self.frame.as_ref().map(|(s, _)| *s);
                let leaving: Vec<u64> = self.evicted.iter().map(|e| e.step).collect();
                self.frames.retain(|step, _| {
                    Some(*step) == newest
                        || window.iter().any(|w| w.step == *step)
                        || leaving.contains(step)
                });
                self.window = window;
                self.goal = goal;
                self.tokens = tokens;
                self.fixed_tokens = fixed_tokens;
            }
            EventKind::Thought { step, text } => {
                if let Some(previous) = self.thought.take() {
                    push_capped(&mut self.thoughts, previous, THOUGHTS_KEPT);
                }
                self.thought = Some(ThoughtEntry { step, at, text });
            }
            EventKind::ChunkPlayed(played) => {
                self.held = played.keys;
                self.mouse_px = played.mouse_px;
                push_capped(
                    &mut self.chunks,
                    ChunkCell {
                        step: played.step,
                        index: played.index,
                        keys: played.keys,
                        mouse_px: played.mouse_px,
                        at: played.started,
                        missed: false,
                        late_ms: played.boundary_error_us() as f64 / 1000.0,
                    },
                    CHUNKS_KEPT,
                );
            }
            EventKind::DeadlineMiss { step, index, .. } => {
                self.misses += 1;
                self.held = Chunk::default();
                self.mouse_px = (0, 0);
                push_capped(
                    &mut self.chunks,
                    ChunkCell {
                        step,
                        index,
                        keys: Chunk::default(),
                        mouse_px: (0, 0),
                        at,
                        missed: true,
                        late_ms: 0.0,
                    },
                    CHUNKS_KEPT,
                );
            }
            EventKind::StepDecided(decided) => {
                self.steps += 1;
                push_capped(
                    &mut self.latencies,
                    (decided.step, decided.latency),
                    LATENCIES_KEPT,
                );
            }
            EventKind::TurnRejected { step, error } => {
                push_capped(&mut self.notices, format!("step {step}: {error}"), 8);
            }
            EventKind::KeysDenied {
                step, combination, ..
            } => {
                push_capped(
                    &mut self.notices,
                    format!("step {step}: {combination} denied"),
                    8,
                );
            }
            EventKind::Notice(text) => push_capped(&mut self.notices, text, 8),
        }
    }

    /// Forgets evicted steps shown long enough.
    pub fn expire(&mut self, now: Instant) {
        while let Some(front) = self.evicted.front() {
            if now.saturating_duration_since(front.at) > EVICTED_SHOWN {
                let step = front.step;
                self.evicted.pop_front();
                if !self.window.iter().any(|w| w.step == step) {
                    self.frames.remove(&step);
                }
            } else {
                break;
            }
        }
    }
}

/// Which locale id describes a pause reason, and its detail argument.
#[must_use]
pub fn pause_reason_id(reason: &PauseReason) -> (&'static str, Option<&str>) {
    match reason {
        PauseReason::Command => ("reason-command", None),
        PauseReason::FocusLost => ("reason-focus", None),
        PauseReason::WindowUnavailable(detail) => ("reason-window", Some(detail)),
    }
}

/// Which locale id describes a stop reason.
#[must_use]
pub fn stop_reason_id(reason: StopReason) -> &'static str {
    match reason {
        StopReason::Command => "reason-command",
        StopReason::EmergencyStop => "reason-emergency",
        StopReason::Interrupt | StopReason::Terminate => "reason-interrupt",
        StopReason::Finished => "reason-finished",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use lumine_runtime::{ChunkPlayed, StepDecided};

    fn ev(kind: EventKind) -> UiEvent {
        UiEvent::Runtime(Event {
            at: Instant::now(),
            kind,
        })
    }

    fn frame() -> SharedFrame {
        Arc::new(lumine_vision::RgbImage::new(4, 2, vec![0; 24]).expect("valid frame"))
    }

    #[test]
    fn thoughts_move_to_history_and_frames_follow_the_window() {
        let mut m = RunModel::default();
        m.launching();
        assert!(m.phase().is_active());
        for step in 0..3 {
            m.apply(ev(EventKind::FrameCaptured {
                step,
                width: 4,
                height: 2,
                frame: frame(),
            }));
        }
        m.apply(ev(EventKind::ContextChanged {
            step: 2,
            frames: 2,
            tokens: 100,
            evicted: vec![0],
            flushed: false,
            window: vec![
                ContextStep {
                    step: 1,
                    tokens: 40,
                    answer: Some("a".into()),
                },
                ContextStep {
                    step: 2,
                    tokens: 40,
                    answer: None,
                },
            ],
            goal: Some("open the red chest".into()),
            fixed_tokens: 20,
        }));
        // Step 0 left: shown leaving, then forgotten.
        assert!(m.frames.contains_key(&0));
        m.expire(Instant::now() + EVICTED_SHOWN * 2);
        assert_eq!(m.frames.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(m.tokens, 100);

        m.apply(ev(EventKind::Thought {
            step: 1,
            text: "go left".into(),
        }));
        m.apply(ev(EventKind::Thought {
            step: 2,
            text: "左边有箱子".into(),
        }));
        assert_eq!(
            m.thought.as_ref().map(|t| t.text.as_str()),
            Some("左边有箱子")
        );
        assert_eq!(m.thoughts.len(), 1);
    }

    #[test]
    fn chunks_and_misses_fill_the_timeline_and_stopping_clears_held_keys() {
        let mut m = RunModel::default();
        let now = Instant::now();
        let keys = Chunk::new(&[lumine_action::Key::W]).expect("one key");
        m.apply(ev(EventKind::ChunkPlayed(ChunkPlayed {
            step: 0,
            index: 0,
            keys,
            pressed: keys,
            released: Chunk::default(),
            mouse_px: (12, -3),
            scroll: 0,
            scheduled: now,
            started: now,
            inject_us: 10,
        })));
        assert_eq!(m.held, keys);
        assert_eq!(m.mouse_px, (12, -3));
        m.apply(ev(EventKind::DeadlineMiss {
            step: 0,
            index: 1,
            released: keys,
        }));
        assert_eq!(m.misses, 1);
        assert!(m.held.keys().is_empty());
        assert!(m.chunks.back().is_some_and(|c| c.missed));
        m.apply(ev(EventKind::StepDecided(StepDecided {
            step: 0,
            actor: lumine_runtime::Actor::Agent,
            thought: None,
            action: "0 0 0 ; W ; ; ; ; ;".into(),
            latency: StageLatency::default(),
        })));
        assert_eq!(m.steps, 1);
        m.apply(ev(EventKind::ChunkPlayed(ChunkPlayed {
            step: 1,
            index: 0,
            keys,
            pressed: keys,
            released: Chunk::default(),
            mouse_px: (0, 0),
            scroll: 0,
            scheduled: now,
            started: now,
            inject_us: 10,
        })));
        m.apply(UiEvent::Ended {
            state: RunState::Stopped(StopReason::Command),
            summary: "done".into(),
        });
        assert!(m.held.keys().is_empty());
        assert!(!m.phase().is_active());
    }
}
