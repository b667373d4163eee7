//! Action units to pixels, exactly.
//!
//! A step's `DX DY` are multiplied by the manifest's mouse scale, rounded to
//! whole pixels with the rounding remainder carried into the next step (so
//! the long-run total is exact even for fractional scales), then spread over
//! the six chunks with [`lumine_action::split_even`] (so each step's parts
//! sum exactly to its pixels).

use lumine_action::{CHUNKS_PER_ACTION, split_even};

/// Pixels per action unit, with the carried remainders.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MouseScaler {
    scale_x: f64,
    scale_y: f64,
    carry_x: f64,
    carry_y: f64,
}

impl MouseScaler {
    /// A scaler with `x`, `y` pixels per unit.
    #[must_use]
    pub fn new(x: f32, y: f32) -> MouseScaler {
        MouseScaler {
            scale_x: f64::from(x),
            scale_y: f64::from(y),
            carry_x: 0.0,
            carry_y: 0.0,
        }
    }

    /// One unit is one pixel.
    #[must_use]
    pub fn identity() -> MouseScaler {
        MouseScaler::new(1.0, 1.0)
    }

    /// The whole pixels of a step of `dx`, `dy` units (remainders carried).
    pub fn step_pixels(&mut self, dx: i32, dy: i32) -> (i32, i32) {
        let (px, cx) = round_carry(f64::from(dx) * self.scale_x + self.carry_x);
        let (py, cy) = round_carry(f64::from(dy) * self.scale_y + self.carry_y);
        self.carry_x = cx;
        self.carry_y = cy;
        (px, py)
    }

    /// The pixels of each chunk of a step of `dx`, `dy` units.
    pub fn chunk_pixels(&mut self, dx: i32, dy: i32) -> [(i32, i32); CHUNKS_PER_ACTION] {
        let (px, py) = self.step_pixels(dx, dy);
        let mut out = [(0, 0); CHUNKS_PER_ACTION];
        for ((slot, x), y) in out
            .iter_mut()
            .zip(split_even(px, CHUNKS_PER_ACTION))
            .zip(split_even(py, CHUNKS_PER_ACTION))
        {
            *slot = (x, y);
        }
        out
    }
}

/// `value` rounded to an integer, and what rounding left over.
fn round_carry(value: f64) -> (i32, f64) {
    let rounded = value.round();
    // Clamped first, so the cast cannot wrap.
    let whole = rounded.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32;
    (whole, value - rounded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_scale_is_exact_per_step() {
        let mut s = MouseScaler::new(5.0, 4.0);
        let parts = s.chunk_pixels(92, -7);
        assert_eq!(parts.iter().map(|p| p.0).sum::<i32>(), 460);
        assert_eq!(parts.iter().map(|p| p.1).sum::<i32>(), -28);
    }

    #[test]
    fn fractional_scale_carries_the_remainder() {
        let mut s = MouseScaler::new(0.3, 1.5);
        let mut total = (0, 0);
        for _ in 0..10 {
            let parts = s.chunk_pixels(1, 1);
            total.0 += parts.iter().map(|p| p.0).sum::<i32>();
            total.1 += parts.iter().map(|p| p.1).sum::<i32>();
        }
        // 10 * 0.3 = 3 and 10 * 1.5 = 15 exactly, though no single step is whole.
        assert_eq!(total, (3, 15));
    }
}
