//! [`DryRunSink`]: an input sink for offline runs that injects nothing.

use std::collections::BTreeSet;

use lumine_action::Key;
use lumine_platform::{InjectOutcome, InputOp, InputSink, PlatformError};

/// Accepts every batch and only tracks what would be held, so offline runs
/// (recorded frames, no window) exercise the executor unchanged.
#[derive(Debug, Clone, Default)]
pub struct DryRunSink {
    held: BTreeSet<Key>,
    ops: u64,
}

impl DryRunSink {
    /// A sink holding nothing.
    #[must_use]
    pub fn new() -> DryRunSink {
        DryRunSink::default()
    }

    /// Operations accepted so far.
    #[must_use]
    pub fn ops(&self) -> u64 {
        self.ops
    }
}

impl InputSink for DryRunSink {
    fn inject(&mut self, ops: &[InputOp]) -> Result<InjectOutcome, PlatformError> {
        for op in ops {
            match *op {
                InputOp::Press(key) => {
                    self.held.insert(key);
                }
                InputOp::Release(key) => {
                    self.held.remove(&key);
                }
                InputOp::MoveRelative { .. } | InputOp::Scroll(_) => {}
            }
        }
        self.ops += ops.len() as u64;
        Ok(InjectOutcome::Injected)
    }

    fn release_all(&mut self) -> Result<(), PlatformError> {
        self.held.clear();
        Ok(())
    }

    fn held(&self) -> Vec<Key> {
        self.held.iter().copied().collect()
    }
}
