//! The console's side of the runtime: what it asks for (a [`LaunchRequest`]),
//! how it hears back ([`UiEvent`]s through a bounded channel that wakes the
//! UI), and who does the work ([`Launcher`]). The console never runs
//! inference or I/O itself: a launcher does it on its own named threads.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use lumine_runtime::policy::SharedFrame;
use lumine_runtime::{Command, Event, RunState};

/// Capacity of the channel from the launcher's threads to the UI.
pub const UI_EVENT_CAPACITY: usize = 2048;

/// What the agent plays into.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TargetChoice {
    /// The built-in practice arena (`lumine arena`), started as a child
    /// process: the first-run default, needs no game.
    PracticeArena,
    /// A window on the desktop, found by its title (ids change between runs).
    Window {
        /// Title, or a unique part of it.
        title: String,
    },
}

/// Which policy runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ModelChoice {
    /// The default model shipped in the `models/` folder.
    Bundled,
    /// A model directory (holding `manifest.ron`).
    Folder(PathBuf),
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Provider {
    /// ONNX Runtime's CPU execution provider.
    Cpu,
    /// CUDA (needs the GPU runtime, `scripts/setup-onnxruntime --gpu`).
    Cuda,
    /// TensorRT (likewise).
    TensorRt,
}

impl Provider {
    /// Every provider, for the picker.
    pub const ALL: [Provider; 3] = [Provider::Cpu, Provider::Cuda, Provider::TensorRt];

    /// Display name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "CPU",
            Provider::Cuda => "CUDA",
            Provider::TensorRt => "TensorRT",
        }
    }
}

/// The agent's mode (SPEC.md section 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// Follows the operator's instruction, no thoughts.
    Instruction,
    /// Writes short thoughts when its plan changes.
    Reasoning,
}

/// Everything a run needs, as the operator chose it.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchRequest {
    /// What to play into.
    pub target: TargetChoice,
    /// Which model.
    pub model: ModelChoice,
    /// Where the model runs.
    pub provider: Provider,
    /// GPU device id (ignored on the CPU).
    pub device: u32,
    /// Instruction following or reasoning.
    pub mode: Mode,
    /// Frames of history in the context window.
    pub history_frames: usize,
    /// The operator's instruction at the start.
    pub instruction: Option<String>,
    /// Record the run into a new folder under this one.
    pub record_into: Option<PathBuf>,
}

/// What the launcher tells the console once a run is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// The target window's title.
    pub window: String,
    /// The policy (`model:NAME`).
    pub policy: String,
    /// The execution provider in use (after any fallback).
    pub provider: String,
    /// The system prompt the model sees.
    pub system_prompt: String,
    /// Prompt token budget, if any.
    pub token_budget: Option<usize>,
    /// Frames of history.
    pub history_frames: usize,
    /// The emergency-stop hotkey's name.
    pub emergency_key: String,
    /// Where the run is recorded, if it is.
    pub recording: Option<PathBuf>,
    /// The instruction the run starts with (the practice arena's task when
    /// the operator gave none; the context panel shows it as the goal).
    pub instruction: Option<String>,
}

/// A window the agent could play, for the picker.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowChoice {
    /// Title.
    pub title: String,
    /// Size, pixels.
    pub size: (u32, u32),
    /// A small capture of it, if it could be read.
    pub thumbnail: Option<SharedFrame>,
}

/// What reaches the console.
#[derive(Debug, Clone, PartialEq)]
pub enum UiEvent {
    /// A run started.
    Launched(RunInfo),
    /// A run could not start; the text says why and what to do.
    LaunchFailed(String),
    /// An event of the running agent.
    Runtime(Event),
    /// The run ended: its final state and a one-line summary.
    Ended {
        /// Final state.
        state: RunState,
        /// Steps, chunks, misses, recording.
        summary: String,
    },
    /// The window list asked for.
    Windows(Result<Vec<WindowChoice>, String>),
    /// The operator picked a model folder in the dialog.
    ModelPicked(PathBuf),
}

/// Wakes the UI thread (egui's `request_repaint`).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// The sending side of the UI channel: never blocks the runtime, wakes the UI.
#[derive(Clone)]
pub struct UiSender {
    tx: Sender<UiEvent>,
    wake: Waker,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for UiSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiSender")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

/// A UI channel of [`UI_EVENT_CAPACITY`] events that calls `wake` after each.
#[must_use]
pub fn ui_channel(wake: Waker) -> (UiSender, Receiver<UiEvent>) {
    let (tx, rx) = crossbeam_channel::bounded(UI_EVENT_CAPACITY);
    (
        UiSender {
            tx,
            wake,
            dropped: Arc::new(AtomicU64::new(0)),
        },
        rx,
    )
}

impl UiSender {
    /// Sends a frequent event (frames, chunks); drops it if the UI is behind.
    pub fn send_lossy(&self, event: UiEvent) {
        match self.tx.try_send(event) {
            Ok(()) => (self.wake)(),
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                (self.wake)();
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Sends an event the UI must see (launched, failed, ended), waiting up
    /// to a second for room.
    pub fn send(&self, event: UiEvent) {
        if self.tx.send_timeout(event, Duration::from_secs(1)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        (self.wake)();
    }

    /// Events dropped because the UI was behind.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Starts runs and lists windows, off the UI thread.
pub trait Launcher {
    /// Starts a run on a thread of its own and returns at once. The run
    /// reports through `events` ([`UiEvent::Launched`] or
    /// [`UiEvent::LaunchFailed`], then runtime events, then
    /// [`UiEvent::Ended`]) and obeys `commands` until it ends; the returned
    /// handle's thread ends only after every key is released.
    ///
    /// # Errors
    /// The thread could not be started.
    fn launch(
        &mut self,
        request: LaunchRequest,
        commands: Receiver<Command>,
        events: UiSender,
    ) -> std::io::Result<JoinHandle<()>>;

    /// Lists the windows the agent could play (with thumbnails) on a thread
    /// of its own, answering with [`UiEvent::Windows`].
    fn list_windows(&mut self, events: UiSender);
}
