//! Human input to the model's action language: what the operator did during
//! each 200 ms step, as an action string the model could have written.
//!
//! * Keys: a key is in a chunk if it was down at any time during the
//!   chunk's 33 ms (down at its start, or pressed during it). At most four
//!   keys per chunk (those down longest first); keys the model's vocabulary
//!   cannot name are dropped and reported.
//! * Mouse: the step's motion is summed, divided by the mouse scale and
//!   rounded, the remainder carried into the next step (so the long-run
//!   total is exact); beyond ±999 units the excess is carried too.
//! * Scroll: summed and clamped to ±5.

use std::time::{Duration, Instant};

use lumine_action::{Action, CHUNKS_PER_ACTION, Chunk, Key, KeyVocabulary, MAX_MOUSE, MAX_SCROLL};
use lumine_platform::OperatorEvent;

use crate::clock::STEP_NS;

/// One quantised step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantizedStep {
    /// Start of the step.
    pub start: Instant,
    /// The action.
    pub action: Action,
    /// Keys that were down but could not be written (no name in the
    /// vocabulary, or a fifth key in a chunk).
    pub dropped: Vec<Key>,
}

/// Turns a stream of operator events into one action per step.
#[derive(Debug, Clone)]
pub struct Quantizer {
    vocab: KeyVocabulary,
    scale: (f64, f64),
    carry: (f64, f64),
    step_start: Instant,
    /// Keys down, in the order they went down.
    down: Vec<Key>,
    /// Events not yet consumed, in time order.
    queue: Vec<(Instant, OperatorEvent)>,
}

impl Quantizer {
    /// Quantises steps starting at `start`, with the model's key names and
    /// mouse scale (pixels per unit).
    #[must_use]
    pub fn new(start: Instant, vocab: &KeyVocabulary, mouse_scale: (f32, f32)) -> Quantizer {
        let unit = |s: f32| if s > 0.0 { f64::from(s) } else { 1.0 };
        Quantizer {
            vocab: vocab.clone(),
            scale: (unit(mouse_scale.0), unit(mouse_scale.1)),
            carry: (0.0, 0.0),
            step_start: start,
            down: Vec::new(),
            queue: Vec::new(),
        }
    }

    /// Start of the next step to finish.
    #[must_use]
    pub fn step_start(&self) -> Instant {
        self.step_start
    }

    /// End of the next step to finish.
    #[must_use]
    pub fn step_end(&self) -> Instant {
        self.step_start + Duration::from_nanos(STEP_NS)
    }

    /// Adds an event (events may arrive slightly out of order; they are
    /// sorted by time).
    pub fn push(&mut self, at: Instant, event: OperatorEvent) {
        let pos = self.queue.partition_point(|(t, _)| *t <= at);
        self.queue.insert(pos, (at, event));
    }

    /// Quantises the step `[step_start, step_start + 200 ms)` from the
    /// events before its end, and moves to the next step. Call it once the
    /// events of the step have been pushed (a little after its end).
    pub fn finish_step(&mut self) -> QuantizedStep {
        let start = self.step_start;
        let chunk_ns = STEP_NS / CHUNKS_PER_ACTION as u64;
        let mut chunks = [Chunk::EMPTY; CHUNKS_PER_ACTION];
        let mut dropped = Vec::new();
        let (mut px, mut py, mut dz) = (0i64, 0i64, 0i64);
        let mut consumed = 0;
        for (k, chunk) in chunks.iter_mut().enumerate() {
            let end = start + Duration::from_nanos(chunk_ns * (k as u64 + 1));
            // Down at the chunk's start, longest-held first.
            let mut keys: Vec<Key> = self.down.clone();
            for &(at, event) in self.queue.iter().skip(consumed) {
                if at >= end {
                    break;
                }
                consumed += 1;
                match event {
                    OperatorEvent::Press(key) => {
                        if !self.down.contains(&key) {
                            self.down.push(key);
                        }
                        if !keys.contains(&key) {
                            keys.push(key);
                        }
                    }
                    OperatorEvent::Release(key) => self.down.retain(|&k| k != key),
                    OperatorEvent::Move { dx, dy } => {
                        px += i64::from(dx);
                        py += i64::from(dy);
                    }
                    OperatorEvent::Scroll(steps) => dz += i64::from(steps),
                    OperatorEvent::EmergencyStop => {}
                }
            }
            for key in keys {
                if self.vocab.name(key).is_none() || chunk.is_full() {
                    if !dropped.contains(&key) {
                        dropped.push(key);
                    }
                } else {
                    // Distinct by construction and not full: cannot fail.
                    let _ = chunk.push(key);
                }
            }
        }
        self.queue.drain(..consumed);
        let dx = self.units(px, true);
        let dy = self.units(py, false);
        let dz =
            i32::try_from(dz.clamp(-i64::from(MAX_SCROLL), i64::from(MAX_SCROLL))).unwrap_or(0);
        self.step_start += Duration::from_nanos(STEP_NS);
        QuantizedStep {
            start,
            // In range by construction.
            action: Action::new(dx, dy, dz, chunks).unwrap_or(Action::IDLE),
            dropped,
        }
    }

    /// Pixels to whole units, the remainder (and any excess over the range)
    /// carried.
    fn units(&mut self, pixels: i64, horizontal: bool) -> i32 {
        let (scale, carry) = if horizontal {
            (self.scale.0, &mut self.carry.0)
        } else {
            (self.scale.1, &mut self.carry.1)
        };
        // Pixel sums are far below 2^53: exact as f64.
        let total = pixels as f64 / scale + *carry;
        let units = total
            .round()
            .clamp(-f64::from(MAX_MOUSE), f64::from(MAX_MOUSE));
        *carry = total - units;
        // Clamped to ±999 above: the cast is exact.
        units as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn keys_are_in_every_chunk_they_touch() {
        let vocab = KeyVocabulary::default();
        let t0 = Instant::now();
        let mut q = Quantizer::new(t0, &vocab, (5.0, 4.0));
        // W held from 10 ms to 120 ms (chunks 0..=3), F tapped inside chunk 4.
        q.push(ms(t0, 10), OperatorEvent::Press(Key::W));
        q.push(ms(t0, 120), OperatorEvent::Release(Key::W));
        q.push(ms(t0, 140), OperatorEvent::Press(Key::F));
        q.push(ms(t0, 150), OperatorEvent::Release(Key::F));
        // Shift goes down in the last chunk and stays down into the next step.
        q.push(ms(t0, 190), OperatorEvent::Press(Key::Shift));
        q.push(ms(t0, 250), OperatorEvent::Release(Key::Shift));
        let step = q.finish_step();
        assert_eq!(
            step.action.format(&vocab),
            "0 0 0 ; W ; W ; W ; W ; F ; Shift"
        );
        let next = q.finish_step();
        assert_eq!(next.action.format(&vocab), "0 0 0 ; Shift ; Shift ; ; ; ;");
    }

    #[test]
    fn mouse_is_scaled_with_the_remainder_carried() {
        let vocab = KeyVocabulary::default();
        let t0 = Instant::now();
        let mut q = Quantizer::new(t0, &vocab, (5.0, 4.0));
        q.push(ms(t0, 20), OperatorEvent::Move { dx: 7, dy: -6 });
        q.push(ms(t0, 60), OperatorEvent::Scroll(-2));
        let a = q.finish_step().action;
        assert_eq!((a.dx, a.dy, a.dz), (1, -2, -2)); // 1.4 -> 1 (carry 0.4), -1.5 -> -2 (carry 0.5)
        q.push(ms(t0, 220), OperatorEvent::Move { dx: 3, dy: 2 });
        let b = q.finish_step().action;
        // 0.6 + 0.4 = 1; 0.5 + 0.5 = 1: totals exact, 10 px = 2 units, -4 px = -1 unit.
        assert_eq!((b.dx, b.dy), (1, 1));
    }

    #[test]
    fn unnamed_and_fifth_keys_are_dropped() {
        let vocab = KeyVocabulary::default();
        let t0 = Instant::now();
        let mut q = Quantizer::new(t0, &vocab, (1.0, 1.0));
        for (i, key) in [Key::A, Key::B, Key::C, Key::D, Key::E, Key::PageUp]
            .into_iter()
            .enumerate()
        {
            q.push(ms(t0, i as u64), OperatorEvent::Press(key));
        }
        let step = q.finish_step();
        assert_eq!(
            step.action.chunks[0].keys(),
            [Key::A, Key::B, Key::C, Key::D]
        );
        assert_eq!(step.dropped, [Key::E, Key::PageUp]);
    }
}
