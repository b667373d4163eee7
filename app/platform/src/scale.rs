//! Resizing packed RGB8 images: a separable triangle (bilinear) filter whose
//! support widens when shrinking, so a downscale averages every source pixel
//! instead of skipping some (what Pillow's `BILINEAR` does). Preview quality,
//! fast enough per frame; the model's exact preprocessing lives in
//! `lumine-vision`.

/// Filter taps of one output pixel: the first source index and 14-bit weights.
struct Taps {
    start: usize,
    weights: Vec<i32>,
}

const SHIFT: u32 = 14;
const ONE: i32 = 1 << SHIFT;

/// Taps for resampling `src` samples to `dst` along one axis.
fn taps(src: usize, dst: usize) -> Vec<Taps> {
    let scale = src as f64 / dst as f64;
    let support = scale.max(1.0);
    (0..dst)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            let lo = ((center - support).floor().max(0.0)) as usize;
            let hi = ((center + support).ceil() as usize).min(src);
            let raw: Vec<f64> = (lo..hi)
                .map(|j| {
                    let d = ((j as f64 + 0.5) - center).abs() / support;
                    (1.0 - d).max(0.0)
                })
                .collect();
            let sum: f64 = raw.iter().sum();
            let mut weights: Vec<i32> = raw
                .iter()
                .map(|w| (w / sum * f64::from(ONE)).round() as i32)
                .collect();
            // Make the fixed-point weights sum to exactly ONE (flat colours stay flat).
            let err = ONE - weights.iter().sum::<i32>();
            if let Some(m) = weights.iter_mut().max_by_key(|w| **w) {
                *m += err;
            }
            Taps { start: lo, weights }
        })
        .collect()
}

/// Resizes a `sw` x `sh` packed RGB8 image to `dw` x `dh`.
///
/// # Panics
/// If `src` is not `sw * sh * 3` bytes.
#[must_use]
pub fn resize_rgb(src: &[u8], sw: u32, sh: u32, dw: u32, dh: u32) -> Vec<u8> {
    let (sw, sh, dw, dh) = (sw as usize, sh as usize, dw as usize, dh as usize);
    assert_eq!(src.len(), sw * sh * 3, "source is not {sw}x{sh} RGB8");
    if dw == 0 || dh == 0 || sw == 0 || sh == 0 {
        return vec![0; dw * dh * 3];
    }
    if (sw, sh) == (dw, dh) {
        return src.to_vec();
    }
    // Vertical pass first, into a rounded u8 image of `sw` x `dh`, then the
    // horizontal pass. The vertical pass runs over whole rows (vectorised), and
    // doing it first leaves the slower per-pixel horizontal pass fewer rows when
    // shrinking. Weights sum to 2^14 and are never negative, so every
    // accumulator fits an i32.
    let xt = taps(sw, dw);
    let yt = taps(sh, dh);
    let src_row = sw * 3;
    let mut mid = vec![0u8; src_row * dh];
    let mut acc = vec![0i32; src_row];
    for (t, mrow) in yt.iter().zip(mid.chunks_exact_mut(src_row)) {
        acc.fill(HALF);
        for (k, &w) in t.weights.iter().enumerate() {
            let srow = &src[(t.start + k) * src_row..(t.start + k + 1) * src_row];
            for (a, &s) in acc.iter_mut().zip(srow) {
                *a += i32::from(s) * w;
            }
        }
        for (m, &a) in mrow.iter_mut().zip(&acc) {
            *m = clamp_u8(a);
        }
    }
    let mut out = vec![0u8; dw * dh * 3];
    // The horizontal taps padded to one length K, so the per-pixel loop has a
    // constant trip count the compiler unrolls (this pass dominates the cost).
    let k = xt
        .iter()
        .map(|t| t.weights.len())
        .max()
        .unwrap_or(1)
        .min(sw);
    let mut starts = Vec::with_capacity(dw);
    let mut weights = Vec::with_capacity(dw * k);
    for t in &xt {
        // Shift windows that would run past the right edge left, zero-padding in front.
        let start = t.start.min(sw - k);
        let lead = t.start - start;
        starts.push(start);
        weights.extend(std::iter::repeat_n(0, lead));
        weights.extend_from_slice(&t.weights);
        weights.extend(std::iter::repeat_n(0, k - lead - t.weights.len()));
    }
    let pass: RowPass = match k {
        1 => hpass::<1>,
        2 => hpass::<2>,
        3 => hpass::<3>,
        4 => hpass::<4>,
        5 => hpass::<5>,
        6 => hpass::<6>,
        7 => hpass::<7>,
        8 => hpass::<8>,
        _ => |row, out, starts, weights| hpass_any(row, out, starts, weights),
    };
    for (row, orow) in mid.chunks_exact(src_row).zip(out.chunks_exact_mut(dw * 3)) {
        pass(row, orow, &starts, &weights);
    }
    out
}

/// One row of the horizontal pass: (source row, output row, tap starts, weights).
type RowPass = fn(&[u8], &mut [u8], &[usize], &[i32]);

/// One row of the horizontal pass with exactly `K` taps per output pixel.
fn hpass<const K: usize>(row: &[u8], out: &mut [u8], starts: &[usize], weights: &[i32]) {
    for ((px, &st), w) in out
        .chunks_exact_mut(3)
        .zip(starts)
        .zip(weights.chunks_exact(K))
    {
        let s = &row[st * 3..st * 3 + 3 * K];
        let (mut r, mut g, mut b) = (HALF, HALF, HALF);
        for i in 0..K {
            r += i32::from(s[3 * i]) * w[i];
            g += i32::from(s[3 * i + 1]) * w[i];
            b += i32::from(s[3 * i + 2]) * w[i];
        }
        px[0] = clamp_u8(r);
        px[1] = clamp_u8(g);
        px[2] = clamp_u8(b);
    }
}

/// [`hpass`] for any tap count (large shrink factors).
fn hpass_any(row: &[u8], out: &mut [u8], starts: &[usize], weights: &[i32]) {
    let k = weights.len() / starts.len().max(1);
    for ((px, &st), w) in out
        .chunks_exact_mut(3)
        .zip(starts)
        .zip(weights.chunks_exact(k.max(1)))
    {
        let s = &row[st * 3..(st + k) * 3];
        let (mut r, mut g, mut b) = (HALF, HALF, HALF);
        for (p, &wi) in s.chunks_exact(3).zip(w) {
            r += i32::from(p[0]) * wi;
            g += i32::from(p[1]) * wi;
            b += i32::from(p[2]) * wi;
        }
        px[0] = clamp_u8(r);
        px[1] = clamp_u8(g);
        px[2] = clamp_u8(b);
    }
}

/// Rounding offset for a 14-bit fixed-point accumulator.
const HALF: i32 = 1 << (SHIFT - 1);

fn clamp_u8(acc: i32) -> u8 {
    (acc >> SHIFT).clamp(0, 255) as u8
}

#[cfg(test)]
mod tests {
    use super::resize_rgb;

    fn solid(w: u32, h: u32, c: [u8; 3]) -> Vec<u8> {
        c.repeat((w * h) as usize)
    }

    #[test]
    fn flat_colour_stays_flat_at_any_size() {
        for &(sw, sh, dw, dh) in &[(1920, 1080, 1280, 720), (640, 360, 1280, 720), (7, 3, 2, 5)] {
            let out = resize_rgb(&solid(sw, sh, [10, 200, 77]), sw, sh, dw, dh);
            assert_eq!(out, solid(dw, dh, [10, 200, 77]));
        }
    }

    #[test]
    fn halving_averages_pixel_pairs_and_keeps_edges() {
        // Left half black, right half white, 4x1 -> 2x1: edges stay pure.
        let src = [0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255];
        let out = resize_rgb(&src, 4, 1, 2, 1);
        assert!(out[0] < 70 && out[3] > 185, "{out:?}");
        // Quadrants survive a downscale: sample the centre of each.
        let (w, h) = (64u32, 32u32);
        let mut img = Vec::new();
        for y in 0..h {
            for x in 0..w {
                img.extend_from_slice(if (x < w / 2) == (y < h / 2) {
                    &[255, 0, 0]
                } else {
                    &[0, 0, 255]
                });
            }
        }
        let out = resize_rgb(&img, w, h, 16, 8);
        let px = |x: usize, y: usize| &out[(y * 16 + x) * 3..(y * 16 + x) * 3 + 3];
        assert_eq!(px(3, 2), [255, 0, 0]);
        assert_eq!(px(12, 2), [0, 0, 255]);
        assert_eq!(px(12, 6), [255, 0, 0]);
    }

    #[test]
    fn large_shrinks_and_upscales_keep_flat_colours() {
        // 3840 -> 320 needs more than 8 taps per pixel (the generic pass).
        let out = resize_rgb(&solid(3840, 4, [9, 99, 199]), 3840, 4, 320, 2);
        assert_eq!(out, solid(320, 2, [9, 99, 199]));
        let out = resize_rgb(&solid(5, 5, [1, 2, 3]), 5, 5, 17, 11);
        assert_eq!(out, solid(17, 11, [1, 2, 3]));
    }

    #[test]
    fn same_size_is_a_copy_and_empty_is_empty() {
        let img = solid(3, 2, [1, 2, 3]);
        assert_eq!(resize_rgb(&img, 3, 2, 3, 2), img);
        assert!(resize_rgb(&img, 3, 2, 0, 5).is_empty());
    }
}
