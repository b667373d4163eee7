//! In-memory implementations of the platform traits, for unit tests of pure logic
//! and for fault injection (a window that disappears, focus that moves away).
//! End-to-end behaviour is tested against the real backends.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use lumine_action::Key;

use crate::{InjectOutcome, InputOp, InputSink, PlatformError};

/// What a [`FakeSink`] received, shared with the test that inspects it.
#[derive(Debug, Default)]
pub struct FakeSinkLog {
    /// Every injected op with its time.
    pub ops: Vec<(Instant, InputOp)>,
    /// Whether the target currently has focus (tests flip it).
    pub unfocused: bool,
    /// Keys currently down.
    pub down: BTreeSet<Key>,
}

/// An [`InputSink`] that records what it is asked to inject.
#[derive(Debug, Clone, Default)]
pub struct FakeSink {
    /// The shared log.
    pub log: Arc<Mutex<FakeSinkLog>>,
}

impl InputSink for FakeSink {
    fn inject(&mut self, ops: &[InputOp]) -> Result<InjectOutcome, PlatformError> {
        let mut log = self
            .log
            .lock()
            .map_err(|_| PlatformError::Os("fake sink poisoned".to_owned()))?;
        if log.unfocused {
            return Ok(InjectOutcome::Refused);
        }
        let now = Instant::now();
        for &op in ops {
            match op {
                InputOp::Press(k) => {
                    log.down.insert(k);
                }
                InputOp::Release(k) => {
                    log.down.remove(&k);
                }
                InputOp::MoveRelative { .. } | InputOp::Scroll(_) => {}
            }
            log.ops.push((now, op));
        }
        Ok(InjectOutcome::Injected)
    }

    fn release_all(&mut self) -> Result<(), PlatformError> {
        let mut log = self
            .log
            .lock()
            .map_err(|_| PlatformError::Os("fake sink poisoned".to_owned()))?;
        let now = Instant::now();
        let down: Vec<Key> = log.down.iter().copied().collect();
        for k in down {
            log.ops.push((now, InputOp::Release(k)));
        }
        log.down.clear();
        Ok(())
    }

    fn held(&self) -> Vec<Key> {
        self.log
            .lock()
            .map(|log| log.down.iter().copied().collect())
            .unwrap_or_default()
    }
}
