//! The 30 Hz grid and precise waiting.
//!
//! Chunk boundaries are computed from one anchor in exact integer
//! nanoseconds (`anchor + n * 200 ms / 6`), never by adding 33 ms steps, so
//! the grid does not drift. Waiting sleeps until [`SPIN_MARGIN`] before the
//! boundary (the OS may wake us late by a fraction of a millisecond, more on
//! a loaded machine) and spins the rest.

use std::time::{Duration, Instant};

use lumine_action::{CHUNKS_PER_ACTION, STEP_MS};

/// Nanoseconds per step (200 ms).
pub const STEP_NS: u64 = STEP_MS as u64 * 1_000_000;

/// One step.
pub const STEP: Duration = Duration::from_nanos(STEP_NS);

/// How long before a boundary the executor stops sleeping and spins.
pub const SPIN_MARGIN: Duration = Duration::from_micros(1500);

/// The boundaries of the steps and chunks of one run (until the next pause).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// Start of `first_step`'s first chunk.
    pub anchor: Instant,
    /// The step that starts at `anchor`.
    pub first_step: u64,
}

impl Grid {
    /// Start of chunk `index` of `step` (steps before `first_step` map to
    /// `anchor`).
    #[must_use]
    pub fn chunk_start(&self, step: u64, index: usize) -> Instant {
        let chunks = step.saturating_sub(self.first_step) * CHUNKS_PER_ACTION as u64 + index as u64;
        self.anchor + Duration::from_nanos(chunks * STEP_NS / CHUNKS_PER_ACTION as u64)
    }

    /// Start of `step`.
    #[must_use]
    pub fn step_start(&self, step: u64) -> Instant {
        self.chunk_start(step, 0)
    }

    /// The step being played at `at` (`first_step` before the anchor).
    #[must_use]
    pub fn step_at(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.anchor).as_nanos();
        self.first_step + u64::try_from(since / u128::from(STEP_NS)).unwrap_or(u64::MAX / 2)
    }
}

/// Sleeps until `SPIN_MARGIN` before `deadline`, then spins until it.
pub fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now + SPIN_MARGIN {
        std::thread::sleep(deadline - now - SPIN_MARGIN);
    }
    spin_until(deadline);
}

/// Busy-waits until `deadline`.
pub fn spin_until(deadline: Instant) {
    while Instant::now() < deadline {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_exact_and_does_not_drift() {
        let anchor = Instant::now();
        let grid = Grid {
            anchor,
            first_step: 10,
        };
        assert_eq!(grid.step_start(10), anchor);
        assert_eq!(
            grid.chunk_start(10, 1) - anchor,
            Duration::from_nanos(33_333_333)
        );
        // A thousand steps later: exactly 200 s, no accumulated rounding.
        assert_eq!(grid.step_start(1010) - anchor, Duration::from_secs(200));
        assert_eq!(grid.step_at(anchor + Duration::from_millis(450)), 12);
        assert_eq!(grid.step_at(anchor), 10);
    }

    #[test]
    fn sleep_until_is_not_early() {
        let deadline = Instant::now() + Duration::from_millis(5);
        sleep_until(deadline);
        assert!(Instant::now() >= deadline);
    }
}
