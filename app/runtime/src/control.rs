//! The state shared by the runtime's threads: run state, stop flags and the
//! epoch that invalidates everything queued for the executor.
//!
//! Every state change bumps the epoch. The executor compares it before every
//! chunk: a new epoch means "release everything and drop what is queued", so
//! a pause, a takeover, a focus loss or a stop takes effect within a
//! millisecond, whatever the agent thread is doing (it may be deep inside the
//! policy).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use lumine_action::Turn;

use crate::events::{EventKind, EventSender, PauseReason, RunState, StopReason};
use crate::policy::Canceller;

/// Shared control state. Cheap reads on the hot path (atomics), a mutex for
/// the rest.
pub(crate) struct Control {
    /// Set by a stop command or the emergency stop.
    stop: AtomicBool,
    /// Set by the SIGINT handler.
    pub(crate) interrupt: Arc<AtomicBool>,
    /// Set by the SIGTERM handler.
    pub(crate) terminate: Arc<AtomicBool>,
    epoch: AtomicU64,
    /// Set when the agent thread has wound down (the control thread ends).
    done: AtomicBool,
    inner: Mutex<Inner>,
    canceller: Mutex<Option<Canceller>>,
    events: EventSender,
}

struct Inner {
    state: RunState,
    stop_reason: Option<StopReason>,
    last_operator_input: Option<Instant>,
    /// The operator took control by command: only a command hands it back.
    manual_takeover: bool,
    instruction: Option<Option<String>>,
    injected: VecDeque<Turn>,
}

impl Control {
    pub(crate) fn new(events: EventSender, running: bool) -> Self {
        Self {
            stop: AtomicBool::new(false),
            interrupt: Arc::new(AtomicBool::new(false)),
            terminate: Arc::new(AtomicBool::new(false)),
            epoch: AtomicU64::new(0),
            done: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                state: if running {
                    RunState::Running
                } else {
                    RunState::Ready
                },
                stop_reason: None,
                last_operator_input: None,
                manual_takeover: false,
                instruction: None,
                injected: VecDeque::new(),
            }),
            canceller: Mutex::new(None),
            events,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain data behind: keep going.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current epoch (see the module docs).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// True once any stop was requested (command, hotkey, signal).
    pub(crate) fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
            || self.interrupt.load(Ordering::SeqCst)
            || self.terminate.load(Ordering::SeqCst)
    }

    /// Why the run must stop, if it must.
    pub(crate) fn stop_reason(&self) -> Option<StopReason> {
        if self.terminate.load(Ordering::SeqCst) {
            return Some(StopReason::Terminate);
        }
        if self.interrupt.load(Ordering::SeqCst) {
            return Some(StopReason::Interrupt);
        }
        if self.stop.load(Ordering::SeqCst) {
            return Some(self.lock().stop_reason.unwrap_or(StopReason::Command));
        }
        None
    }

    pub(crate) fn state(&self) -> RunState {
        self.lock().state.clone()
    }

    /// Registers how to cancel the policy's turn in progress.
    pub(crate) fn set_canceller(&self, canceller: Option<Canceller>) {
        if let Ok(mut slot) = self.canceller.lock() {
            *slot = canceller;
        }
    }

    /// Cancels the policy's turn in progress, if the policy can be cancelled.
    pub(crate) fn cancel_policy(&self) {
        let canceller = self.canceller.lock().ok().and_then(|c| c.clone());
        if let Some(cancel) = canceller {
            cancel();
        }
    }

    /// Moves to `state` (a final state is never left), bumps the epoch and
    /// reports it. Returns false when nothing changed.
    pub(crate) fn set_state(&self, state: RunState) -> bool {
        let mut inner = self.lock();
        if inner.state == state || inner.state.is_final() {
            return false;
        }
        inner.state = state.clone();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        drop(inner);
        if state != RunState::Running {
            self.cancel_policy();
        }
        self.events.send(EventKind::State(state));
        true
    }

    /// Moves from `from` to `to` only if the state is still `from`.
    pub(crate) fn transition(&self, from: &RunState, to: RunState) -> bool {
        let current = self.lock().state.clone();
        current == *from && self.set_state(to)
    }

    /// Pauses for `reason` if running (or under operator control).
    pub(crate) fn pause_if_active(&self, reason: PauseReason) -> bool {
        let current = self.lock().state.clone();
        matches!(current, RunState::Running | RunState::OperatorControl)
            && self.set_state(RunState::Paused(reason))
    }

    /// Requests a stop: the executor releases at its next check (within a
    /// millisecond), the policy is cancelled, the agent thread winds down.
    pub(crate) fn request_stop(&self, reason: StopReason) {
        {
            let mut inner = self.lock();
            inner.stop_reason.get_or_insert(reason);
        }
        self.stop.store(true, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.cancel_policy();
    }

    /// Marks the run as over (the control thread ends).
    pub(crate) fn set_done(&self) {
        self.done.store(true, Ordering::SeqCst);
    }

    /// True once the agent thread has wound down.
    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }

    /// The operator takes control by command (only a command hands it back).
    pub(crate) fn take_control(&self) -> bool {
        let active = {
            let mut inner = self.lock();
            let active = matches!(
                inner.state,
                RunState::Running | RunState::Paused(_) | RunState::Ready
            );
            if active {
                inner.manual_takeover = true;
            }
            active
        };
        active && self.set_state(RunState::OperatorControl)
    }

    /// True when the current takeover came from a command.
    pub(crate) fn is_manual_takeover(&self) -> bool {
        self.lock().manual_takeover
    }

    /// Records operator input at `at`; while running, the operator takes
    /// over. Returns true when that caused a takeover.
    pub(crate) fn operator_input(&self, at: Instant) -> bool {
        let running = {
            let mut inner = self.lock();
            inner.last_operator_input = Some(at);
            let running = inner.state == RunState::Running;
            if running {
                inner.manual_takeover = false;
            }
            running
        };
        running && self.transition(&RunState::Running, RunState::OperatorControl)
    }

    /// When the operator last touched the controls.
    pub(crate) fn last_operator_input(&self) -> Option<Instant> {
        self.lock().last_operator_input
    }

    /// Stores a new instruction for the agent thread to pick up.
    pub(crate) fn set_instruction(&self, instruction: Option<String>) {
        self.lock().instruction = Some(instruction);
    }

    /// The instruction set since the last call, if any.
    pub(crate) fn take_instruction(&self) -> Option<Option<String>> {
        self.lock().instruction.take()
    }

    /// Queues an operator's action for the next step.
    pub(crate) fn inject(&self, turn: Turn) {
        self.lock().injected.push_back(turn);
    }

    /// The next queued operator action, if any.
    pub(crate) fn take_injected(&self) -> Option<Turn> {
        self.lock().injected.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::event_channel;

    #[test]
    fn every_change_bumps_the_epoch_and_final_states_stick() {
        let (tx, rx) = event_channel(16);
        let control = Control::new(tx, false);
        let e0 = control.epoch();
        assert!(control.set_state(RunState::Running));
        assert!(!control.set_state(RunState::Running));
        assert!(control.operator_input(Instant::now()));
        assert_eq!(control.state(), RunState::OperatorControl);
        assert!(control.epoch() >= e0 + 2);
        assert!(control.pause_if_active(PauseReason::FocusLost));
        assert!(control.set_state(RunState::Stopped(StopReason::Command)));
        assert!(!control.set_state(RunState::Running));
        assert_eq!(rx.len(), 4);
    }

    #[test]
    fn stop_reasons() {
        let (tx, _rx) = event_channel(16);
        let control = Control::new(tx, true);
        assert_eq!(control.stop_reason(), None);
        control.request_stop(StopReason::EmergencyStop);
        control.request_stop(StopReason::Command);
        assert_eq!(control.stop_reason(), Some(StopReason::EmergencyStop));
        control.terminate.store(true, Ordering::SeqCst);
        assert_eq!(control.stop_reason(), Some(StopReason::Terminate));
    }
}
