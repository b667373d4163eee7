//! Hold semantics and the even split of mouse motion (SPEC.md section 3).
//!
//! Pure functions: the executor owns the clock and the OS calls, this module
//! only says which keys go down or up at each chunk boundary and how much the
//! mouse moves in each chunk.
//!
//! * A key present in consecutive chunks stays down (it is not pressed
//!   again); a key absent from a chunk is released at that chunk's start,
//!   releases before presses.
//! * The rule continues across steps: the previous step's sixth chunk is the
//!   `prev` of the next step's first chunk ([`HeldKeys`] carries it), so a
//!   held `W` does not flicker at 5 Hz. On stop, focus loss or an error, the
//!   executor plays [`release_all`].

use crate::action::{Action, CHUNKS_PER_ACTION};
use crate::chunk::Chunk;

/// The key events at one chunk boundary: first release `release`, then press
/// `press`, each in the order listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KeyTransition {
    /// Keys to release (held before, absent now), in the previous chunk's
    /// order.
    pub release: Chunk,
    /// Keys to press (absent before, present now), in the new chunk's order.
    pub press: Chunk,
}

impl KeyTransition {
    /// True when nothing changes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.release.is_empty() && self.press.is_empty()
    }
}

/// The events that take the keyboard from holding `prev` to holding `next`.
#[must_use]
pub fn transition(prev: &Chunk, next: &Chunk) -> KeyTransition {
    KeyTransition {
        release: difference(prev, next),
        press: difference(next, prev),
    }
}

/// The events that release everything `prev` holds.
#[must_use]
pub fn release_all(prev: &Chunk) -> KeyTransition {
    KeyTransition {
        release: *prev,
        press: Chunk::EMPTY,
    }
}

/// Keys of `a` not in `b`, in `a`'s order.
fn difference(a: &Chunk, b: &Chunk) -> Chunk {
    let mut out = Chunk::EMPTY;
    for key in a.iter().filter(|&k| !b.contains(k)) {
        // A subset of a valid chunk: distinct and at most four, cannot fail.
        let _ = out.push(key);
    }
    out
}

impl Action {
    /// The transitions for the six chunks of this action, starting from the
    /// keys held before it (the previous action's last chunk, or
    /// [`Chunk::EMPTY`]).
    #[must_use]
    pub fn transitions(&self, prev: &Chunk) -> [KeyTransition; CHUNKS_PER_ACTION] {
        let mut held = *prev;
        let mut out = [KeyTransition::default(); CHUNKS_PER_ACTION];
        for (slot, chunk) in out.iter_mut().zip(&self.chunks) {
            *slot = transition(&held, chunk);
            held = *chunk;
        }
        out
    }
}

/// The keys currently held down, carried from chunk to chunk and from step
/// to step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeldKeys {
    held: Chunk,
}

impl HeldKeys {
    /// Nothing held.
    #[must_use]
    pub fn new() -> HeldKeys {
        HeldKeys::default()
    }

    /// The keys held now.
    #[must_use]
    pub fn held(&self) -> &Chunk {
        &self.held
    }

    /// Moves to the next chunk and returns the events that get there.
    pub fn advance(&mut self, next: &Chunk) -> KeyTransition {
        let t = transition(&self.held, next);
        self.held = *next;
        t
    }

    /// Releases everything (stop, error, focus loss) and returns the events.
    pub fn release_all(&mut self) -> KeyTransition {
        let t = release_all(&self.held);
        self.held = Chunk::EMPTY;
        t
    }
}

/// Spreads `total` over `parts` integers as evenly as possible, preserving
/// the exact sum, sign-symmetric (`split_even(-x, n)` is `-split_even(x, n)`
/// part by part).
///
/// Part `i` is `round(total·(i+1)/parts) − round(total·i/parts)`, rounding
/// halves away from zero, in exact integer arithmetic. Parts differ by at
/// most one. Zero `parts` yields nothing.
#[must_use]
pub fn split_even(total: i32, parts: usize) -> SplitEven {
    SplitEven {
        total: i128::from(total),
        parts: parts as i128,
        next: 0,
        prev: 0,
    }
}

/// Iterator returned by [`split_even`].
#[derive(Debug, Clone)]
pub struct SplitEven {
    total: i128,
    parts: i128,
    next: i128,
    prev: i128,
}

/// `a / b` rounded to nearest, halves away from zero; `b > 0`.
fn div_round(a: i128, b: i128) -> i128 {
    let q = (2 * a.abs() + b) / (2 * b);
    if a < 0 { -q } else { q }
}

impl Iterator for SplitEven {
    type Item = i32;

    fn next(&mut self) -> Option<i32> {
        if self.next >= self.parts {
            return None;
        }
        self.next += 1;
        let cut = div_round(self.total * self.next, self.parts);
        let part = cut - self.prev;
        self.prev = cut;
        // |part| <= |total| + 1 would need rounding to cross a whole unit;
        // the cuts are monotone between 0 and total, so it fits i32.
        Some(i32::try_from(part).unwrap_or(0))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.parts - self.next).unwrap_or(0);
        (left, Some(left))
    }
}

impl ExactSizeIterator for SplitEven {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Key;

    fn chunk(keys: &[Key]) -> Chunk {
        Chunk::new(keys).unwrap()
    }

    #[test]
    fn holds_are_not_repressed() {
        let t = transition(&chunk(&[Key::Shift, Key::W]), &chunk(&[Key::F, Key::W]));
        assert_eq!(t.release, chunk(&[Key::Shift]));
        assert_eq!(t.press, chunk(&[Key::F]));
        let same = chunk(&[Key::W]);
        assert!(transition(&same, &same).is_empty());
        assert_eq!(release_all(&same).release, same);
    }

    #[test]
    fn spec_example_transitions() {
        let sw = chunk(&[Key::Shift, Key::W]);
        let fw = chunk(&[Key::F, Key::W]);
        let f = chunk(&[Key::F]);
        let a = Action::new(92, 0, 0, [sw, sw, sw, fw, fw, f]).unwrap();
        let ts = a.transitions(&Chunk::EMPTY);
        assert_eq!(ts[0].press, sw);
        assert!(ts[1].is_empty() && ts[2].is_empty() && ts[4].is_empty());
        assert_eq!(
            ts[3],
            KeyTransition {
                release: chunk(&[Key::Shift]),
                press: chunk(&[Key::F])
            }
        );
        assert_eq!(
            ts[5],
            KeyTransition {
                release: chunk(&[Key::W]),
                press: Chunk::EMPTY
            }
        );
        // Across the step boundary: F stays down into the next step.
        let next = a.transitions(&a.chunks[5]);
        assert_eq!(
            next[0],
            KeyTransition {
                release: f,
                press: chunk(&[Key::Shift, Key::W])
            }
        );
    }

    #[test]
    fn held_keys_tracks() {
        let mut h = HeldKeys::new();
        h.advance(&chunk(&[Key::W]));
        assert_eq!(
            h.advance(&chunk(&[Key::W, Key::Space])).press,
            chunk(&[Key::Space])
        );
        assert_eq!(h.release_all().release, chunk(&[Key::W, Key::Space]));
        assert!(h.held().is_empty());
    }

    #[test]
    fn split_examples() {
        let s: Vec<i32> = split_even(92, 6).collect();
        assert_eq!(s, [15, 16, 15, 15, 16, 15]);
        let s: Vec<i32> = split_even(-92, 6).collect();
        assert_eq!(s, [-15, -16, -15, -15, -16, -15]);
        assert_eq!(split_even(1, 6).collect::<Vec<_>>(), [0, 0, 1, 0, 0, 0]);
        assert_eq!(split_even(3, 6).collect::<Vec<_>>(), [1, 0, 1, 0, 1, 0]);
        assert_eq!(split_even(0, 6).collect::<Vec<_>>(), [0; 6]);
        assert_eq!(split_even(7, 0).count(), 0);
        assert_eq!(split_even(7, 1).collect::<Vec<_>>(), [7]);
        assert_eq!(
            split_even(i32::MIN, 3).map(i64::from).sum::<i64>(),
            i64::from(i32::MIN)
        );
        assert_eq!(split_even(5, 6).len(), 6);
    }
}
