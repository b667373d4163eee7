//! Relative mouse motion as the backends inject it: split into small steps
//! whose sum is exact.

/// Largest relative step per injected motion event, pixels per axis. A real mouse
/// reports at most 127 counts per USB report, so games (and X11's and Win32's
/// fields) see steps they are built for; a 5000 px turn becomes 40 steps
/// whose sum is exact.
pub const MAX_MOTION_STEP_PX: i32 = 127;

/// Splits (`dx`, `dy`) into steps of at most `max` per axis whose sums are
/// exactly `dx` and `dy`, spread evenly (no big last step).
#[must_use]
pub fn motion_steps(dx: i32, dy: i32, max: i32) -> Vec<(i16, i16)> {
    let max = i64::from(max.clamp(1, i32::from(i16::MAX)));
    let (dx, dy) = (i64::from(dx), i64::from(dy));
    let n = (dx.abs().max(dy.abs()) + max - 1) / max;
    let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    let (mut px, mut py) = (0i64, 0i64);
    for i in 1..=n {
        // Integer positions along the line; consecutive differences sum exactly.
        let (x, y) = (dx * i / n, dy * i / n);
        // |x - px| <= ceil(|dx| / n) <= max, which fits i16.
        out.push(((x - px) as i16, (y - py) as i16));
        (px, py) = (x, y);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::motion_steps;

    #[test]
    fn motion_steps_sum_exactly_and_stay_small() {
        for &(dx, dy) in &[
            (0, 0),
            (1, 0),
            (-1, 1),
            (127, -127),
            (128, 0),
            (5000, -37),
            (-3333, 2999),
            (100_000, 1),
        ] {
            let steps = motion_steps(dx, dy, 127);
            let sx: i64 = steps.iter().map(|s| i64::from(s.0)).sum();
            let sy: i64 = steps.iter().map(|s| i64::from(s.1)).sum();
            assert_eq!((sx, sy), (i64::from(dx), i64::from(dy)));
            assert!(steps.iter().all(|s| s.0.abs() <= 127 && s.1.abs() <= 127));
            assert!(steps.iter().all(|s| *s != (0, 0)) || (dx, dy) == (0, 0));
        }
        assert!(motion_steps(0, 0, 127).is_empty());
    }
}
