//! The executor: plays chunks into the [`InputSink`] on the 30 Hz grid, on
//! its own high-priority thread.
//!
//! It takes chunks one by one as the policy streams them, tagged with their
//! step and index, and plays each at its boundary on the [`Grid`]. At each
//! boundary it applies the hold semantics (only the differences are pressed
//! and released, across step boundaries too), the deny-list, and the step's
//! share of the mouse motion and scroll. A chunk that is not there at its
//! boundary is a deadline miss: everything held is released rather than
//! played blind, and a chunk arriving after its boundary is dropped.
//!
//! Safety does not wait for anyone: before every wait and every chunk the
//! executor checks the shared stop flags and the epoch ([`crate::control`]),
//! and releases everything on a change. It also releases on exit, on a
//! refused injection (focus lost) and when its own loop panics.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use lumine_action::{CHUNKS_PER_ACTION, Chunk, split_even, transition};
use lumine_platform::{InjectOutcome, InputOp, InputSink, PlatformError};

use crate::clock::{Grid, SPIN_MARGIN, STEP_NS};
use crate::control::Control;
use crate::events::{ChunkPlayed, EventKind, EventSender, PauseReason, RunState};
use crate::mouse::MouseScaler;
use crate::safety::DenyList;
use crate::timing::BoundaryStats;

/// Capacity of the channel into the executor.
pub(crate) const EXEC_CAPACITY: usize = 256;

/// Longest the executor sleeps between checks of the stop flags.
const POLL: Duration = Duration::from_millis(2);

/// One chunk, in nanoseconds.
const CHUNK_NS: u64 = STEP_NS / CHUNKS_PER_ACTION as u64;

/// What the agent thread sends the executor. Everything but `Shutdown`
/// carries the epoch it was made in; the executor drops messages of an old
/// epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ExecMsg {
    /// Start (or re-anchor) the grid; with `end_after`, stop it again after
    /// that step (see `EndAfter`).
    Run {
        epoch: u64,
        grid: Grid,
        end_after: Option<(u64, bool)>,
    },
    /// A step's mouse motion (units) and scroll.
    Mouse {
        epoch: u64,
        step: u64,
        dx: i32,
        dy: i32,
        dz: i32,
    },
    /// A step's chunk.
    Chunk {
        epoch: u64,
        step: u64,
        index: usize,
        chunk: Chunk,
    },
    /// The step's turn was rejected: release now, play nothing more of it.
    Abort { epoch: u64, step: u64 },
    /// Stop the grid after this step has played; release everything if
    /// `release` (the end of a run), else keep holding (lockstep pacing: the
    /// next step re-anchors the grid when it is ready).
    EndAfter {
        epoch: u64,
        step: u64,
        release: bool,
    },
    /// Release everything and end the thread.
    Shutdown,
}

/// When each chunk of a step started, reported after its last chunk (or
/// when the grid stops mid-step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StepPlayed {
    pub step: u64,
    pub chunk_times: [Option<Instant>; CHUNKS_PER_ACTION],
    pub misses: u32,
}

/// Configuration of the executor.
#[derive(Debug, Clone)]
pub(crate) struct ExecutorConfig {
    pub deny: DenyList,
    pub mouse: MouseScaler,
}

/// What the executor did over a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutorStats {
    /// Chunks injected.
    pub chunks_played: u64,
    /// Chunks that were not ready at their boundary.
    pub deadline_misses: u64,
    /// Chunks skipped because the executor itself woke more than a chunk late.
    pub late_skips: u64,
    /// How far each played chunk's start was from its grid boundary.
    pub boundary: BoundaryStats,
    /// How the thread's priority was raised (or why not).
    pub priority: String,
}

#[derive(Debug, Default)]
struct PendingStep {
    mouse: Option<[(i32, i32); CHUNKS_PER_ACTION]>,
    scroll: [i32; CHUNKS_PER_ACTION],
    chunks: [Option<Chunk>; CHUNKS_PER_ACTION],
    aborted: bool,
}

enum Wait {
    Due,
    Interrupted,
    Shutdown,
}

struct Executor {
    sink: Box<dyn InputSink>,
    rx: Receiver<ExecMsg>,
    control: Arc<Control>,
    events: EventSender,
    played: Option<Sender<StepPlayed>>,
    deny: DenyList,
    mouse: MouseScaler,
    epoch: u64,
    grid: Option<Grid>,
    end_after: Option<(u64, bool)>,
    next: (u64, usize),
    held: Chunk,
    pending: BTreeMap<u64, PendingStep>,
    current: Option<StepPlayed>,
    stats: ExecutorStats,
}

/// Starts the executor thread (`lumine-executor`).
pub(crate) fn spawn(
    sink: Box<dyn InputSink>,
    rx: Receiver<ExecMsg>,
    control: Arc<Control>,
    events: EventSender,
    played: Option<Sender<StepPlayed>>,
    config: ExecutorConfig,
) -> std::io::Result<JoinHandle<ExecutorStats>> {
    let epoch = control.epoch();
    let mut exec = Executor {
        sink,
        rx,
        control,
        events,
        played,
        deny: config.deny,
        mouse: config.mouse,
        epoch,
        grid: None,
        end_after: None,
        next: (0, 0),
        held: Chunk::EMPTY,
        pending: BTreeMap::new(),
        current: None,
        stats: ExecutorStats::default(),
    };
    std::thread::Builder::new()
        .name("lumine-executor".to_owned())
        .spawn(move || {
            exec.stats.priority = crate::priority::raise_current_thread();
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| exec.run()));
            // Every exit path, a panic included, ends with nothing held.
            exec.release_everything();
            exec.flush_current();
            if outcome.is_err() {
                exec.control
                    .set_state(RunState::Failed("the executor panicked".to_owned()));
            }
            exec.stats
        })
}

impl Executor {
    fn run(&mut self) {
        loop {
            if self.control.should_stop() {
                return;
            }
            self.sync_epoch();
            let Some(grid) = self.grid else {
                match self.rx.recv_timeout(POLL) {
                    Ok(ExecMsg::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                    Ok(msg) => self.handle(msg),
                    Err(RecvTimeoutError::Timeout) => {}
                }
                continue;
            };
            let (step, index) = self.next;
            let due = grid.chunk_start(step, index);
            match self.wait_until(due, grid) {
                Wait::Due => {}
                Wait::Interrupted => continue,
                Wait::Shutdown => return,
            }
            self.play_slot(step, index, due);
            self.next = if index + 1 == CHUNKS_PER_ACTION {
                (step + 1, 0)
            } else {
                (step, index + 1)
            };
            if index + 1 == CHUNKS_PER_ACTION
                && let Some((last, release)) = self.end_after
                && last == step
            {
                self.stop_grid(release);
            }
        }
    }

    /// Waits for `due`, handling messages meanwhile; sleeps, then spins the
    /// last [`SPIN_MARGIN`].
    fn wait_until(&mut self, due: Instant, grid: Grid) -> Wait {
        loop {
            if self.control.should_stop() || self.control.epoch() != self.epoch {
                return Wait::Interrupted;
            }
            let now = Instant::now();
            if now + SPIN_MARGIN >= due {
                break;
            }
            let wake = (due - SPIN_MARGIN).min(now + POLL);
            match self.rx.recv_deadline(wake) {
                Ok(ExecMsg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                    return Wait::Shutdown;
                }
                Ok(msg) => {
                    self.handle(msg);
                    if self.grid != Some(grid) {
                        return Wait::Interrupted;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        while Instant::now() < due {
            match self.rx.try_recv() {
                Ok(ExecMsg::Shutdown) | Err(TryRecvError::Disconnected) => return Wait::Shutdown,
                Ok(msg) => {
                    self.handle(msg);
                    if self.grid != Some(grid) {
                        return Wait::Interrupted;
                    }
                }
                Err(TryRecvError::Empty) => std::hint::spin_loop(),
            }
        }
        Wait::Due
    }

    /// A new epoch: release, forget the queue, stop the grid.
    fn sync_epoch(&mut self) {
        let epoch = self.control.epoch();
        if epoch != self.epoch {
            self.epoch = epoch;
            self.release_everything();
            self.flush_current();
            self.pending.clear();
            self.grid = None;
            self.end_after = None;
        }
    }

    /// True when chunk `index` of `step` has already had its boundary.
    fn passed(&self, step: u64, index: usize) -> bool {
        self.grid.is_some() && (step, index) < self.next
    }

    fn handle(&mut self, msg: ExecMsg) {
        // The epoch may have moved while we waited for this message: catch
        // up first, so a message of the new epoch is not taken for stale.
        self.sync_epoch();
        match msg {
            ExecMsg::Run {
                epoch,
                grid,
                end_after,
            } if epoch == self.epoch => {
                self.grid = Some(grid);
                self.end_after = end_after;
                self.next = (grid.first_step, 0);
                self.pending.retain(|&step, _| step >= grid.first_step);
            }
            ExecMsg::Mouse {
                epoch,
                step,
                dx,
                dy,
                dz,
            } if epoch == self.epoch => {
                let parts = self.mouse.chunk_pixels(dx, dy);
                let entry = self.pending.entry(step).or_default();
                entry.mouse = Some(parts);
                for (slot, z) in entry
                    .scroll
                    .iter_mut()
                    .zip(split_even(dz, CHUNKS_PER_ACTION))
                {
                    *slot = z;
                }
            }
            ExecMsg::Chunk {
                epoch,
                step,
                index,
                chunk,
            } if epoch == self.epoch && index < CHUNKS_PER_ACTION => {
                // A chunk after its boundary was already counted as a miss.
                if !self.passed(step, index)
                    && let Some(slot) = self.pending.entry(step).or_default().chunks.get_mut(index)
                {
                    *slot = Some(chunk);
                }
            }
            ExecMsg::Abort { epoch, step } if epoch == self.epoch => {
                self.pending.entry(step).or_default().aborted = true;
                self.release_everything();
            }
            ExecMsg::EndAfter {
                epoch,
                step,
                release,
            } if epoch == self.epoch => {
                self.end_after = Some((step, release));
                if self.grid.is_none() || self.next > (step, CHUNKS_PER_ACTION - 1) {
                    self.stop_grid(release);
                }
            }
            // Stale epochs, and Shutdown (handled by the callers).
            _ => {}
        }
    }

    fn play_slot(&mut self, step: u64, index: usize, due: Instant) {
        if index == 0 {
            self.flush_current();
            self.current = Some(StepPlayed {
                step,
                chunk_times: [None; CHUNKS_PER_ACTION],
                misses: 0,
            });
        }
        let (chunk, aborted, mouse_px, scroll) = match self.pending.get(&step) {
            Some(p) => (
                p.chunks.get(index).copied().flatten(),
                p.aborted,
                p.mouse
                    .and_then(|m| m.get(index).copied())
                    .unwrap_or((0, 0)),
                p.scroll.get(index).copied().unwrap_or(0),
            ),
            None => (None, false, (0, 0), 0),
        };
        match chunk {
            _ if aborted => {}
            None => self.miss(step, index),
            Some(_) if Instant::now() > due + Duration::from_nanos(CHUNK_NS) => {
                // We, not the policy, are late (starved by the OS): skip
                // rather than burst, keep what is held.
                self.stats.late_skips += 1;
            }
            Some(chunk) => self.play(step, index, due, chunk, mouse_px, scroll),
        }
        if index + 1 == CHUNKS_PER_ACTION {
            self.flush_current();
            self.pending.retain(|&s, _| s > step);
        }
    }

    fn miss(&mut self, step: u64, index: usize) {
        let released = self.held;
        if !released.is_empty() {
            self.release_everything();
        }
        self.stats.deadline_misses += 1;
        if let Some(current) = &mut self.current {
            current.misses += 1;
        }
        self.events.send(EventKind::DeadlineMiss {
            step,
            index,
            released,
        });
    }

    fn play(
        &mut self,
        step: u64,
        index: usize,
        due: Instant,
        chunk: Chunk,
        mouse_px: (i32, i32),
        scroll: i32,
    ) {
        let (safe, denials) = self.deny.filter(&self.held, &chunk);
        for denial in denials {
            self.events.send(EventKind::KeysDenied {
                step,
                index,
                combination: denial.combination,
                dropped: vec![denial.dropped],
            });
        }
        let t = transition(&self.held, &safe);
        let mut ops: Vec<InputOp> = Vec::with_capacity(t.release.len() + t.press.len() + 2);
        ops.extend(t.release.iter().map(InputOp::Release));
        ops.extend(t.press.iter().map(InputOp::Press));
        if mouse_px != (0, 0) {
            ops.push(InputOp::MoveRelative {
                dx: mouse_px.0,
                dy: mouse_px.1,
            });
        }
        if scroll != 0 {
            ops.push(InputOp::Scroll(scroll));
        }
        let started = Instant::now();
        let outcome = self.sink.inject(&ops);
        let inject_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match outcome {
            Ok(InjectOutcome::Injected) => {
                self.held = safe;
                let played = ChunkPlayed {
                    step,
                    index,
                    keys: safe,
                    pressed: t.press,
                    released: t.release,
                    mouse_px,
                    scroll,
                    scheduled: due,
                    started,
                    inject_us,
                };
                self.stats.chunks_played += 1;
                self.stats.boundary.add(played.boundary_error_us());
                if let Some(current) = &mut self.current
                    && let Some(slot) = current.chunk_times.get_mut(index)
                {
                    *slot = Some(started);
                }
                self.events.send_at(started, EventKind::ChunkPlayed(played));
            }
            Ok(InjectOutcome::Refused) => {
                // The target lost focus: nothing reached it; pause.
                self.release_everything();
                self.control.pause_if_active(PauseReason::FocusLost);
            }
            Err(err) => {
                self.release_everything();
                match err {
                    PlatformError::WindowGone(_) | PlatformError::Minimized(_) => {
                        self.control
                            .pause_if_active(PauseReason::WindowUnavailable(err.to_string()));
                    }
                    other => {
                        self.control.set_state(RunState::Failed(format!(
                            "input injection failed: {other}"
                        )));
                    }
                }
            }
        }
    }

    /// Stops the grid (no slot is due until the next `Run`).
    fn stop_grid(&mut self, release: bool) {
        if release {
            self.release_everything();
        }
        self.grid = None;
        self.end_after = None;
    }

    /// Releases every key and button, whatever we think is held.
    fn release_everything(&mut self) {
        self.held = Chunk::EMPTY;
        if let Err(err) = self.sink.release_all() {
            self.events
                .send(EventKind::Notice(format!("releasing keys failed: {err}")));
        }
    }

    fn flush_current(&mut self) {
        if let Some(current) = self.current.take()
            && let Some(tx) = &self.played
        {
            // Never block the real-time path; the agent drains this quickly.
            let _ = tx.try_send(current);
        }
    }
}
