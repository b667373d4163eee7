//! The agent thread: at each step, capture, update the context, ask the
//! policy and stream its chunks to the executor; watch focus and the window;
//! record.
//!
//! Timing: the frame for step `s` is captured when step `s - 1` starts
//! playing, so the policy has one step (200 ms) until `s`'s first chunk is
//! due and 33 ms for each later one (SPEC.md section 2). A policy that runs
//! late makes the executor miss deadlines (it releases rather than play
//! blind), and the agent skips ahead to the next step it can still make.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use lumine_action::{KeyVocabulary, StreamEvent, Turn};
use lumine_context::Context;
use lumine_platform::OperatorEvent;

use crate::clock::Grid;
use crate::control::Control;
use crate::events::{
    Actor, ContextStep, EventKind, EventSender, PauseReason, RunState, StageLatency, StepDecided,
    StopReason,
};
use crate::executor::{ExecMsg, ExecutorStats, StepPlayed};
use crate::frames::{FrameError, FrameInput, scale_frame};
use crate::policy::{Observation, Policy, PolicyError, SharedFrame, stream_turn};
use crate::quantize::Quantizer;
use crate::recorder::Recorder;
use crate::runtime::FocusTarget;
use crate::trajectory::StepRecord;

/// How long after a complete turn is handed over its first chunk plays
/// (lockstep pacing, injected actions): the chunks are queued already.
const LOCKSTEP_LEAD: Duration = Duration::from_millis(3);

/// How long after a step's end the operator's events are quantised (the
/// input monitor delivers them a little late).
const QUANTIZE_MARGIN: Duration = Duration::from_millis(30);

/// How the agent thread is set up.
pub(crate) struct AgentSettings {
    pub vocab: KeyVocabulary,
    pub frame_size: Option<(u32, u32)>,
    pub mouse_scale: (f32, f32),
    pub max_steps: Option<u64>,
    pub first_step_lead: Duration,
    pub takeover_idle: Duration,
    pub instruction: Option<String>,
    pub lockstep: bool,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// How it ended.
    pub state: RunState,
    /// Steps decided (played or queued), by the agent or the operator.
    pub steps: u64,
    /// Turns rejected (parse errors, engine stalls).
    pub rejected: u64,
    /// What the executor did.
    pub executor: ExecutorStats,
    /// Steps written to the trajectory, or why recording failed.
    pub recorded: Option<Result<u64, String>>,
}

enum Flow {
    Continue,
    Finished,
}

pub(crate) struct Draft {
    record: StepRecord,
    frame: Option<SharedFrame>,
}

/// Records the operator's steps during a takeover.
pub(crate) struct Demo {
    quantizer: Quantizer,
    /// The frame of the step being quantised: (step, captured at, frame).
    pending: Option<(u64, Instant, SharedFrame)>,
}

pub(crate) struct Agent {
    pub control: Arc<Control>,
    pub events: EventSender,
    pub exec: Sender<ExecMsg>,
    pub executor: Option<JoinHandle<ExecutorStats>>,
    pub played: Receiver<StepPlayed>,
    pub frames: FrameInput,
    pub focus: Option<FocusTarget>,
    pub policy: Box<dyn Policy>,
    pub context: Context<SharedFrame>,
    pub recorder: Option<Recorder>,
    pub operator_rx: Receiver<(Instant, OperatorEvent)>,
    pub settings: AgentSettings,
    pub next_step: u64,
    pub grid: Option<(u64, Grid)>,
    pub decided: u64,
    pub rejected: u64,
    pub last_sent: Option<(u64, u64)>,
    pub drafts: BTreeMap<u64, Draft>,
    pub demo: Option<Demo>,
}

/// What ended the loop.
enum End {
    Stopped(StopReason),
    Failed(String),
}

impl Agent {
    pub(crate) fn run(mut self) -> RunSummary {
        if let Some(i) = self.settings.instruction.clone() {
            self.context.set_instruction(Some(i));
        }
        let end = loop {
            self.drain_played();
            self.apply_instruction();
            if let Some(reason) = self.control.stop_reason() {
                break End::Stopped(reason);
            }
            let state = self.control.state();
            if state != RunState::Running && !self.drafts.is_empty() {
                // Interrupted steps will not be reported as played: write
                // them now, before any operator step, so steps stay in order.
                self.flush_drafts();
            }
            if state != RunState::OperatorControl {
                self.demo = None;
                if state != RunState::Running {
                    // Operator input outside a takeover is not recorded.
                    while self.operator_rx.try_recv().is_ok() {}
                }
            }
            match state {
                RunState::Stopped(reason) => break End::Stopped(reason),
                RunState::Failed(message) => break End::Failed(message),
                RunState::Running => match self.agent_step() {
                    Flow::Continue => {}
                    Flow::Finished => {
                        self.finish_playing();
                        break End::Stopped(StopReason::Finished);
                    }
                },
                RunState::Ready | RunState::Paused(PauseReason::Command) => {
                    self.play_injected_now();
                    std::thread::sleep(Duration::from_millis(10));
                }
                RunState::Paused(PauseReason::FocusLost) => {
                    if self.focused() != Some(false) {
                        self.control.transition(&state, RunState::Running);
                    } else {
                        std::thread::sleep(Duration::from_millis(30));
                    }
                }
                RunState::Paused(PauseReason::WindowUnavailable(_)) => {
                    std::thread::sleep(Duration::from_millis(200));
                    // A capture that works again resumes the run.
                    if self.frames.next_frame().is_ok() {
                        self.control.transition(&state, RunState::Running);
                    }
                }
                RunState::OperatorControl => self.operator_tick(),
            }
        };
        self.wind_down(end)
    }

    fn wind_down(mut self, end: End) -> RunSummary {
        let _ = self.exec.send(ExecMsg::Shutdown);
        let executor = self
            .executor
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        // Steps whose chunks never all played still belong in the record.
        self.flush_drafts();
        let recorded = self
            .recorder
            .take()
            .map(|r| r.finish().map_err(|e| e.to_string()));
        let state = match end {
            End::Stopped(reason) => RunState::Stopped(reason),
            End::Failed(message) => RunState::Failed(message),
        };
        // The executor has released everything by now: the final state is
        // reported last.
        self.control.set_state(state);
        self.control.set_done();
        RunSummary {
            state: self.control.state(),
            steps: self.decided,
            rejected: self.rejected,
            executor,
            recorded,
        }
    }

    /// Tells the console what the context window holds now.
    fn context_changed(&self, step: u64, change: lumine_context::ContextChange) {
        let window = self
            .context
            .steps()
            .map(|entry| ContextStep {
                step: entry.step,
                tokens: entry.tokens(),
                answer: entry.answer.clone(),
            })
            .collect();
        self.events.send(EventKind::ContextChanged {
            step,
            frames: change.frames,
            tokens: change.tokens,
            evicted: change.evicted,
            flushed: change.flushed,
            window,
            goal: self.context.goal().map(str::to_owned),
            fixed_tokens: self.context.fixed_tokens(),
        });
    }

    /// Picks up an instruction set by command.
    fn apply_instruction(&mut self) {
        if let Some(instruction) = self.control.take_instruction() {
            self.settings.instruction.clone_from(&instruction);
            let change = self.context.set_instruction(instruction);
            self.context_changed(self.next_step, change);
        }
    }

    /// Whether the target window has focus (`None`: nothing to check).
    fn focused(&mut self) -> Option<bool> {
        let focus = self.focus.as_mut()?;
        match focus.windows.focused() {
            Ok(current) => Some(current == Some(focus.target)),
            Err(err) => {
                self.events
                    .send(EventKind::Notice(format!("cannot query focus: {err}")));
                Some(false)
            }
        }
    }

    /// Waits until `at`; false if the state changed meanwhile.
    fn wait_until(&mut self, at: Instant, epoch: u64) -> bool {
        loop {
            if self.control.should_stop() || self.control.epoch() != epoch {
                return false;
            }
            let now = Instant::now();
            if now >= at {
                return true;
            }
            self.drain_played();
            std::thread::sleep((at - now).min(Duration::from_millis(5)));
        }
    }

    /// The grid of the current epoch, starting one if needed.
    fn grid(&mut self, epoch: u64) -> Grid {
        match self.grid {
            Some((e, grid)) if e == epoch => grid,
            _ => {
                let grid = Grid {
                    anchor: Instant::now() + self.settings.first_step_lead,
                    first_step: self.next_step,
                };
                let _ = self.exec.send(ExecMsg::Run {
                    epoch,
                    grid,
                    end_after: None,
                });
                self.grid = Some((epoch, grid));
                grid
            }
        }
    }

    fn capture(&mut self) -> Result<(SharedFrame, f64, f64), Flow> {
        let start = Instant::now();
        let image = match self.frames.next_frame() {
            Ok(image) => image,
            Err(FrameError::End) => return Err(Flow::Finished),
            Err(err) => {
                self.control
                    .pause_if_active(PauseReason::WindowUnavailable(err.to_string()));
                return Err(Flow::Continue);
            }
        };
        let captured = Instant::now();
        let (width, height) = (image.width, image.height);
        let frame = Arc::new(scale_frame(image, self.settings.frame_size));
        let scaled = Instant::now();
        self.events.send_at(
            captured,
            EventKind::FrameCaptured {
                step: self.next_step,
                width,
                height,
                frame: Arc::clone(&frame),
            },
        );
        Ok((frame, ms(captured - start), ms(scaled - captured)))
    }

    fn agent_step(&mut self) -> Flow {
        let epoch = self.control.epoch();
        let lockstep = self.settings.lockstep;
        // Lockstep: the grid starts anew when each turn is complete.
        let grid = (!lockstep).then(|| self.grid(epoch));
        if let Some(grid) = grid
            && self.next_step > grid.first_step
        {
            if !self.wait_until(grid.step_start(self.next_step - 1), epoch) {
                return Flow::Continue;
            }
            // Running late (a slow turn): skip to the next step we can make.
            let playing = grid.step_at(Instant::now());
            self.next_step = self.next_step.max(playing + 1);
        }
        let step = self.next_step;
        if self.focused() == Some(false) {
            self.control.pause_if_active(PauseReason::FocusLost);
            return Flow::Continue;
        }
        let captured_at = Instant::now();
        let (frame, capture_ms, scale_ms) = match self.capture() {
            Ok(captured) => captured,
            Err(flow) => return flow,
        };
        let injected = self.control.take_injected();
        let context_start = Instant::now();
        let change = self.context.push_frame(step, Arc::clone(&frame), None);
        self.context_changed(step, change);
        let messages = self.context.messages();
        let context_ms = ms(context_start.elapsed());

        let turn_start = Instant::now();
        let mut first_chunk: Option<Instant> = None;
        let mut buffered: Vec<StreamEvent> = Vec::new();
        let (result, actor) = {
            let exec = &self.exec;
            let events = &self.events;
            let mut forward = |event: StreamEvent| {
                if lockstep && !matches!(event, StreamEvent::Thought(_)) {
                    if matches!(event, StreamEvent::Chunk { .. }) {
                        first_chunk.get_or_insert_with(Instant::now);
                    }
                    buffered.push(event);
                } else {
                    forward_event(exec, events, epoch, step, &mut first_chunk, event);
                }
            };
            match injected {
                Some(turn) => {
                    stream_turn(&turn, &mut forward);
                    (Ok(turn), Actor::Operator)
                }
                None => {
                    let observation = Observation {
                        step,
                        frame: &frame,
                        messages: &messages,
                        first_chunk_due: grid.map(|g| g.step_start(step)),
                    };
                    let policy = &mut self.policy;
                    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        policy.next_turn(&observation, &mut forward)
                    }));
                    let result = outcome.unwrap_or_else(|payload| {
                        Err(PolicyError::Failed(format!(
                            "the policy panicked: {}",
                            panic_message(payload.as_ref())
                        )))
                    });
                    (result, Actor::Agent)
                }
            }
        };
        let latency = StageLatency {
            capture_ms,
            scale_ms,
            context_ms,
            first_chunk_ms: first_chunk.map_or(0.0, |t| ms(t - turn_start)),
            turn_ms: ms(turn_start.elapsed()),
            ..StageLatency::default()
        };
        let latency = match self.policy.last_stages() {
            Some(stages) if result.is_ok() && actor == Actor::Agent => StageLatency {
                preprocess_ms: stages.preprocess_ms,
                vision_ms: stages.vision_ms,
                prefill_ms: stages.prefill_ms,
                ..latency
            },
            _ => latency,
        };
        self.next_step = step + 1;
        let turn = match result {
            Ok(turn) => turn,
            Err(PolicyError::Exhausted) => {
                self.context.discard_pending();
                return Flow::Finished;
            }
            Err(err) => {
                let _ = self.exec.send(ExecMsg::Abort { epoch, step });
                self.context.discard_pending();
                if err.is_fatal() {
                    self.control.set_state(RunState::Failed(err.to_string()));
                } else if err != PolicyError::Cancelled {
                    self.rejected += 1;
                    self.events.send(EventKind::TurnRejected {
                        step,
                        error: err.to_string(),
                    });
                }
                return Flow::Continue;
            }
        };
        if self.control.epoch() != epoch {
            // Paused or taken over mid-turn: the executor dropped it.
            self.context.discard_pending();
            return Flow::Continue;
        }
        self.last_sent = Some((epoch, step));
        self.decided += 1;
        self.step_decided(step, actor, &turn, latency, captured_at, Some(frame));
        if lockstep {
            self.play_now(epoch, step, buffered);
        }
        if self
            .settings
            .max_steps
            .is_some_and(|max| self.decided >= max)
        {
            return Flow::Finished;
        }
        if lockstep && let Some((_, grid)) = self.grid {
            // Capture the next frame once this step has played.
            self.wait_until(grid.step_start(step + 1), epoch);
        }
        Flow::Continue
    }

    /// Lockstep: plays a complete turn from now, keeping keys held after it.
    fn play_now(&mut self, epoch: u64, step: u64, events: Vec<StreamEvent>) {
        let grid = self.run_from_now(epoch, step, events, false);
        self.grid = Some((epoch, grid));
    }

    /// Sends a whole turn to the executor and starts its grid from now;
    /// after it, the keys stay held (`release_at_end` false) or are released.
    fn run_from_now(
        &mut self,
        epoch: u64,
        step: u64,
        events: Vec<StreamEvent>,
        release_at_end: bool,
    ) -> Grid {
        let mut first_chunk = None;
        // The chunks first: the executor holds them until their grid starts,
        // so a preempted agent thread cannot make the first one late.
        for event in events {
            forward_event(
                &self.exec,
                &self.events,
                epoch,
                step,
                &mut first_chunk,
                event,
            );
        }
        let grid = Grid {
            anchor: Instant::now() + LOCKSTEP_LEAD,
            first_step: step,
        };
        let _ = self.exec.send(ExecMsg::Run {
            epoch,
            grid,
            end_after: Some((step, release_at_end)),
        });
        grid
    }

    /// Context, event and record for a decided step.
    fn step_decided(
        &mut self,
        step: u64,
        actor: Actor,
        turn: &Turn,
        latency: StageLatency,
        captured_at: Instant,
        frame: Option<SharedFrame>,
    ) {
        let vocab = &self.settings.vocab;
        if let Ok(change) =
            self.context
                .record_answer(step, turn.thought.clone(), turn.format_model(vocab))
        {
            self.context_changed(step, change);
        }
        let action = turn.action.format(vocab);
        self.events.send(EventKind::StepDecided(StepDecided {
            step,
            actor,
            thought: turn.thought.clone(),
            action: action.clone(),
            latency,
        }));
        if let Some(recorder) = &self.recorder {
            let record = StepRecord {
                step,
                frame: None,
                captured_ms: recorder.ms(captured_at),
                actor,
                instruction: self.settings.instruction.clone(),
                thought: turn.thought.clone(),
                action,
                chunks_ms: vec![None; lumine_action::CHUNKS_PER_ACTION],
                deadline_misses: 0,
                latency_ms: latency,
            };
            self.drafts.insert(step, Draft { record, frame });
        }
    }

    /// Hands finished steps to the recorder as their chunks are reported.
    fn drain_played(&mut self) {
        while let Ok(played) = self.played.try_recv() {
            let Some(recorder) = &self.recorder else {
                continue;
            };
            let older: Vec<u64> = self.drafts.range(..=played.step).map(|(&s, _)| s).collect();
            for step in older {
                let Some(mut draft) = self.drafts.remove(&step) else {
                    continue;
                };
                if step == played.step {
                    draft.record.chunks_ms = played
                        .chunk_times
                        .iter()
                        .map(|t| t.map(|t| recorder.ms(t)))
                        .collect();
                    draft.record.deadline_misses = played.misses;
                }
                recorder.write(draft.record, draft.frame);
            }
        }
    }

    /// Writes every step still waiting for its chunk times, in order, with
    /// the times reported so far.
    fn flush_drafts(&mut self) {
        self.drain_played();
        for (_, draft) in std::mem::take(&mut self.drafts) {
            if let Some(recorder) = &self.recorder {
                recorder.write(draft.record, draft.frame);
            }
        }
    }

    /// After the last step: let it play out, then stop the grid.
    fn finish_playing(&mut self) {
        let Some((epoch, last)) = self.last_sent else {
            return;
        };
        let _ = self.exec.send(ExecMsg::EndAfter {
            epoch,
            step: last,
            release: true,
        });
        let Some((_, grid)) = self.grid.filter(|(e, _)| *e == epoch) else {
            return;
        };
        let done = grid.step_start(last + 1) + Duration::from_millis(50);
        while Instant::now() < done && self.control.epoch() == epoch && !self.control.should_stop()
        {
            self.drain_played();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Plays an operator's injected action at once while not running.
    fn play_injected_now(&mut self) {
        let Some(turn) = self.control.take_injected() else {
            return;
        };
        let epoch = self.control.epoch();
        let step = self.next_step;
        let mut events = Vec::new();
        stream_turn(&turn, &mut |event| events.push(event));
        self.run_from_now(epoch, step, events, true);
        // The next run starts a fresh grid.
        self.grid = None;
        self.next_step = step + 1;
        self.decided += 1;
        let vocab = &self.settings.vocab;
        self.events.send(EventKind::StepDecided(StepDecided {
            step,
            actor: Actor::Operator,
            thought: turn.thought.clone(),
            action: turn.action.format(vocab),
            latency: StageLatency::default(),
        }));
    }

    /// During a takeover: hand back after the idle time, record the
    /// operator's steps, play injected actions.
    fn operator_tick(&mut self) {
        let idle = self.settings.takeover_idle;
        if !self.control.is_manual_takeover()
            && self
                .control
                .last_operator_input()
                .is_none_or(|t| t.elapsed() >= idle)
        {
            self.control
                .transition(&RunState::OperatorControl, RunState::Running);
            return;
        }
        self.play_injected_now();
        let events: Vec<(Instant, OperatorEvent)> = self.operator_rx.try_iter().collect();
        if self.recorder.is_none() {
            std::thread::sleep(Duration::from_millis(10));
            return;
        }
        let demo = self.demo.get_or_insert_with(|| {
            let start = events.first().map_or_else(Instant::now, |(t, _)| *t);
            Demo {
                quantizer: Quantizer::new(start, &self.settings.vocab, self.settings.mouse_scale),
                pending: None,
            }
        });
        for (at, event) in events {
            demo.quantizer.push(at, event);
        }
        if Instant::now() < demo.quantizer.step_end() + QUANTIZE_MARGIN {
            std::thread::sleep(Duration::from_millis(5));
            return;
        }
        let quantized = demo.quantizer.finish_step();
        let pending = demo.pending.take();
        if let Some((step, captured_at, frame)) = pending {
            let turn = Turn::from(quantized.action);
            self.decided += 1;
            // The model sees what the operator did, in its own language.
            let change = self.context.push_frame(step, Arc::clone(&frame), None);
            self.context_changed(step, change);
            self.step_decided(
                step,
                Actor::Operator,
                &turn,
                StageLatency::default(),
                captured_at,
                Some(frame),
            );
            // Operator steps are not played by the executor: write them now.
            if let (Some(draft), Some(recorder)) = (self.drafts.remove(&step), &self.recorder) {
                recorder.write(draft.record, draft.frame);
            }
        }
        if let Ok((frame, _, _)) = self.capture() {
            let step = self.next_step;
            self.next_step += 1;
            if let Some(demo) = &mut self.demo {
                demo.pending = Some((step, Instant::now(), frame));
            }
        }
    }
}

/// Sends one streamed event where it belongs.
fn forward_event(
    exec: &Sender<ExecMsg>,
    events: &EventSender,
    epoch: u64,
    step: u64,
    first_chunk: &mut Option<Instant>,
    event: StreamEvent,
) {
    match event {
        StreamEvent::Thought(text) => events.send(EventKind::Thought { step, text }),
        StreamEvent::Mouse { dx, dy, dz } => {
            let _ = exec.send(ExecMsg::Mouse {
                epoch,
                step,
                dx,
                dy,
                dz,
            });
        }
        StreamEvent::Chunk { index, chunk } => {
            first_chunk.get_or_insert_with(Instant::now);
            let _ = exec.send(ExecMsg::Chunk {
                epoch,
                step,
                index,
                chunk,
            });
        }
        StreamEvent::End(_) => {}
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}
