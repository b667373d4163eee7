//! [`Runtime`]: wires the threads together and is the handle the console
//! (or the CLI) holds: commands in, events out.
//!
//! Threads (all named):
//!
//! * `lumine-agent`: capture, context, policy, streaming to the executor.
//! * `lumine-executor`: the 30 Hz clock and every injection (high priority).
//! * `lumine-control`: commands, the input monitor (takeover, emergency
//!   stop), signals; it never waits on the others, so a stop lands even
//!   while the policy is busy.
//! * `lumine-recorder`: JPEG encoding and the trajectory file, if recording.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use lumine_action::{KeyVocabulary, parse_turn};
use lumine_context::{Context, ContextConfig, TokenCounter, frame_tokens};
use lumine_platform::{InputMonitor, InputSink, OperatorEvent, WindowId, WindowSystem};

use crate::agent::{Agent, AgentSettings, RunSummary};
use crate::command::{COMMAND_CAPACITY, Command};
use crate::control::Control;
use crate::events::{
    EVENT_CAPACITY, Event, EventKind, EventSender, PauseReason, RunState, StopReason, event_channel,
};
use crate::executor::{EXEC_CAPACITY, ExecutorConfig};
use crate::frames::FrameInput;
use crate::mouse::MouseScaler;
use crate::policy::Policy;
use crate::recorder::Recorder;
use crate::safety::DenyList;
use crate::trajectory::TrajectoryWriter;

/// Operator events buffered between the control and agent threads.
const OPERATOR_CAPACITY: usize = 4096;

/// How often the control thread polls the input monitor.
const MONITOR_POLL: Duration = Duration::from_millis(4);

/// Settings of a run.
#[derive(Clone)]
pub struct RuntimeConfig {
    /// The model's key names (parsing injected text, formatting actions).
    pub vocab: KeyVocabulary,
    /// System prompt (the manifest's prompt for the mode).
    pub system_prompt: String,
    /// The operator's instruction.
    pub instruction: Option<String>,
    /// Frames in the context window, the newest included.
    pub history_frames: usize,
    /// Upper bound on prompt tokens, if any.
    pub token_budget: Option<usize>,
    /// Counts text tokens (the model's tokenizer); an estimate if `None`.
    pub text_tokens: Option<TokenCounter>,
    /// Frames are scaled to this size (the manifest's); `None` keeps them.
    pub frame_size: Option<(u32, u32)>,
    /// Pixels per action unit, x and y (the manifest's mouse scale).
    pub mouse_scale: (f32, f32),
    /// Key combinations never injected.
    pub deny_list: DenyList,
    /// Operator idle time after which a takeover ends by itself.
    pub takeover_idle: Duration,
    /// Stop after this many steps.
    pub max_steps: Option<u64>,
    /// Time from the first capture to the first chunk (the policy's budget
    /// for its first turn).
    pub first_step_lead: Duration,
    /// Start running at once (else wait for [`Command::Start`]).
    pub start_running: bool,
    /// Lockstep pacing: each turn is played only once it is complete, and
    /// the next frame is captured after it has played (keys stay held in
    /// between). No deadline is ever missed, but the game runs on while the
    /// policy thinks: for offline runs and policies too slow for real time.
    pub lockstep: bool,
    /// Capacity of the event stream.
    pub event_capacity: usize,
}

impl std::fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeConfig")
            .field("instruction", &self.instruction)
            .field("history_frames", &self.history_frames)
            .field("token_budget", &self.token_budget)
            .field("frame_size", &self.frame_size)
            .field("mouse_scale", &self.mouse_scale)
            .field("deny_list", &self.deny_list)
            .field("max_steps", &self.max_steps)
            .finish_non_exhaustive()
    }
}

impl RuntimeConfig {
    /// Defaults: 10 frames of history, 1 px per unit, no deny-list, 3 s
    /// takeover idle, one step of lead, running at once.
    #[must_use]
    pub fn new(vocab: KeyVocabulary) -> RuntimeConfig {
        RuntimeConfig {
            vocab,
            system_prompt: String::new(),
            instruction: None,
            history_frames: 10,
            token_budget: None,
            text_tokens: None,
            frame_size: None,
            mouse_scale: (1.0, 1.0),
            deny_list: DenyList::none(),
            takeover_idle: Duration::from_millis(3000),
            max_steps: None,
            first_step_lead: crate::clock::STEP,
            start_running: true,
            lockstep: false,
            event_capacity: EVENT_CAPACITY,
        }
    }
}

/// The window whose focus gates the run.
pub struct FocusTarget {
    /// Window queries.
    pub windows: Box<dyn WindowSystem>,
    /// The target.
    pub target: WindowId,
}

/// The parts a run plays with.
pub struct RuntimeParts {
    /// Where frames come from.
    pub frames: FrameInput,
    /// Where input goes.
    pub sink: Box<dyn InputSink>,
    /// Focus checks before each step (the sink also refuses without focus).
    pub focus: Option<FocusTarget>,
    /// Operator input: takeover and the emergency hotkey.
    pub monitor: Option<Box<dyn InputMonitor>>,
    /// What decides each step.
    pub policy: Box<dyn Policy>,
    /// Where to record the run, if anywhere.
    pub record: Option<TrajectoryWriter>,
}

/// A run that could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A thread could not be started.
    #[error("cannot start a runtime thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// A running agent: send commands, read events, wait for the end.
pub struct Runtime {
    commands: Sender<Command>,
    events: Receiver<Event>,
    event_tx: EventSender,
    control: Arc<Control>,
    agent: Option<JoinHandle<RunSummary>>,
    control_thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("state", &self.control.state())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Starts the threads.
    ///
    /// # Errors
    /// A thread could not be started (everything started is stopped again).
    pub fn start(parts: RuntimeParts, config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let start = Instant::now();
        let (event_tx, events) = event_channel(config.event_capacity);
        let control = Arc::new(Control::new(event_tx.clone(), config.start_running));
        event_tx.send(EventKind::State(control.state()));
        control.set_canceller(parts.policy.canceller());

        let (exec_tx, exec_rx) = crossbeam_channel::bounded(EXEC_CAPACITY);
        let (played_tx, played_rx) = crossbeam_channel::bounded(64);
        let executor = crate::executor::spawn(
            parts.sink,
            exec_rx,
            Arc::clone(&control),
            event_tx.clone(),
            Some(played_tx),
            ExecutorConfig {
                deny: config.deny_list.clone(),
                mouse: MouseScaler::new(config.mouse_scale.0, config.mouse_scale.1),
            },
        )?;
        let stop_all = |control: &Control, exec_tx: &Sender<crate::executor::ExecMsg>| {
            control.request_stop(StopReason::Command);
            let _ = exec_tx.send(crate::executor::ExecMsg::Shutdown);
        };

        let recorder = match parts.record {
            Some(writer) => match Recorder::spawn(writer, start, event_tx.clone()) {
                Ok(r) => Some(r),
                Err(e) => {
                    stop_all(&control, &exec_tx);
                    return Err(e.into());
                }
            },
            None => None,
        };

        let (commands, command_rx) = crossbeam_channel::bounded(COMMAND_CAPACITY);
        let (operator_tx, operator_rx) = crossbeam_channel::bounded(OPERATOR_CAPACITY);
        let control_thread = {
            let control = Arc::clone(&control);
            let events = event_tx.clone();
            let vocab = config.vocab.clone();
            let monitor = parts.monitor;
            std::thread::Builder::new()
                .name("lumine-control".to_owned())
                .spawn(move || {
                    control_loop(
                        &control,
                        &command_rx,
                        monitor,
                        &operator_tx,
                        &vocab,
                        &events,
                    );
                })
        };
        let control_thread = match control_thread {
            Ok(t) => t,
            Err(e) => {
                stop_all(&control, &exec_tx);
                return Err(e.into());
            }
        };

        let tokens = frame_tokens(
            config.frame_size.map_or(1280, |s| s.0),
            config.frame_size.map_or(720, |s| s.1),
        );
        let context_config = ContextConfig {
            system_prompt: config.system_prompt.clone(),
            history_frames: config.history_frames,
            token_budget: config.token_budget,
            frame_tokens: tokens,
        };
        let context = match &config.text_tokens {
            Some(counter) => Context::with_counter(context_config, Arc::clone(counter)),
            None => Context::new(context_config),
        };
        let agent = Agent {
            control: Arc::clone(&control),
            events: event_tx.clone(),
            exec: exec_tx.clone(),
            executor: Some(executor),
            played: played_rx,
            frames: parts.frames,
            focus: parts.focus,
            policy: parts.policy,
            context,
            recorder,
            operator_rx,
            settings: AgentSettings {
                vocab: config.vocab,
                frame_size: config.frame_size,
                mouse_scale: config.mouse_scale,
                max_steps: config.max_steps,
                first_step_lead: config.first_step_lead,
                takeover_idle: config.takeover_idle,
                instruction: config.instruction,
                lockstep: config.lockstep,
            },
            next_step: 0,
            grid: None,
            decided: 0,
            rejected: 0,
            last_sent: None,
            drafts: BTreeMap::new(),
            demo: None,
        };
        let agent = std::thread::Builder::new()
            .name("lumine-agent".to_owned())
            .spawn(move || agent.run());
        let agent = match agent {
            Ok(a) => a,
            Err(e) => {
                stop_all(&control, &exec_tx);
                control.set_done();
                return Err(e.into());
            }
        };
        Ok(Runtime {
            commands,
            events,
            event_tx,
            control,
            agent: Some(agent),
            control_thread: Some(control_thread),
        })
    }

    /// Where to send commands.
    #[must_use]
    pub fn commands(&self) -> Sender<Command> {
        self.commands.clone()
    }

    /// The event stream.
    #[must_use]
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// Events dropped because the reader was slow.
    #[must_use]
    pub fn events_dropped(&self) -> u64 {
        self.event_tx.dropped()
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> RunState {
        self.control.state()
    }

    /// True once the run has ended.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.control.is_done()
    }

    /// Makes SIGINT and SIGTERM stop the run cleanly: the executor releases
    /// every key within a millisecond and the threads end; a second signal
    /// exits the process at once (status 130 or 143). Unix only; elsewhere
    /// a no-op.
    ///
    /// # Errors
    /// The handlers could not be installed.
    pub fn install_signal_handlers(&self) -> std::io::Result<()> {
        crate::signals::stop_on_signals(&self.control.interrupt, &self.control.terminate)
    }

    /// Waits for the run to end (it ends by itself at a step limit, the end
    /// of a script, a stop command, the hotkey, a signal or a failure).
    #[must_use]
    pub fn wait(mut self) -> RunSummary {
        let summary = self.join();
        if let Some(t) = self.control_thread.take() {
            let _ = t.join();
        }
        summary
    }

    fn join(&mut self) -> RunSummary {
        let summary = self.agent.take().map(JoinHandle::join);
        match summary {
            Some(Ok(summary)) => summary,
            _ => {
                self.control.set_done();
                RunSummary {
                    state: RunState::Failed("the agent thread panicked".to_owned()),
                    steps: 0,
                    rejected: 0,
                    executor: crate::executor::ExecutorStats::default(),
                    recorded: None,
                }
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if self.agent.is_some() {
            self.control.request_stop(StopReason::Command);
            let _ = self.join();
        }
        self.control.set_done();
        if let Some(t) = self.control_thread.take() {
            let _ = t.join();
        }
    }
}

/// The control thread: commands and the input monitor.
fn control_loop(
    control: &Control,
    commands: &Receiver<Command>,
    mut monitor: Option<Box<dyn InputMonitor>>,
    operator_tx: &Sender<(Instant, OperatorEvent)>,
    vocab: &KeyVocabulary,
    events: &EventSender,
) {
    let mut commands_open = true;
    let mut cancelled = false;
    while !control.is_done() {
        if commands_open {
            match commands.recv_timeout(MONITOR_POLL) {
                Ok(command) => handle_command(control, command, vocab, events),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => commands_open = false,
            }
        } else {
            std::thread::sleep(MONITOR_POLL);
        }
        if let Some(monitor) = monitor.as_mut() {
            for (at, event) in monitor.poll() {
                if event == OperatorEvent::EmergencyStop {
                    events.send(EventKind::Notice("emergency stop (hotkey)".to_owned()));
                    control.request_stop(StopReason::EmergencyStop);
                } else {
                    control.operator_input(at);
                    // The agent records these during a takeover; drop when full.
                    let _ = operator_tx.try_send((at, event));
                }
            }
        }
        if !cancelled && control.should_stop() {
            // A signal only flips a flag: make sure a long turn ends too.
            cancelled = true;
            control.cancel_policy();
        }
    }
}

fn handle_command(
    control: &Control,
    command: Command,
    vocab: &KeyVocabulary,
    events: &EventSender,
) {
    match command {
        Command::Start | Command::HandBack => {
            let state = control.state();
            let resumable = match &state {
                RunState::Ready | RunState::Paused(_) => command == Command::Start,
                RunState::OperatorControl => true,
                _ => false,
            };
            if resumable {
                control.set_state(RunState::Running);
            }
        }
        Command::Pause => {
            if matches!(
                control.state(),
                RunState::Running | RunState::OperatorControl | RunState::Ready
            ) {
                control.set_state(RunState::Paused(PauseReason::Command));
            }
        }
        Command::Stop => control.request_stop(StopReason::Command),
        Command::EmergencyStop => control.request_stop(StopReason::EmergencyStop),
        Command::SetInstruction(instruction) => control.set_instruction(instruction),
        Command::TakeControl => {
            control.take_control();
        }
        Command::InjectAction(text) => match parse_turn(&text, vocab) {
            Ok(turn) => control.inject(turn),
            Err(err) => events.send(EventKind::Notice(format!(
                "injected action {text:?} rejected, nothing played: {err}"
            ))),
        },
    }
}
