//! M-RoPE position ids: three position streams (time, height, width).
//!
//! Mirrors `get_rope_index` of transformers 5.23 (`../shared/QWEN2VL.md` §5): text
//! tokens advance all three streams together; an image's tokens take a (t, h, w)
//! grid offset by the running position, after which text resumes at
//! `start + max(h, w) / merge` — not at `start + number of image tokens`.
//! Decode positions are `cache_len + rope_delta` on all three rows.

/// Positions of a prompt: `[3][S]` rows (t, h, w) and the rope delta for decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RopePositions {
    /// Row-major `[3, S]`: `rows[0]` time, `rows[1]` height, `rows[2]` width.
    pub rows: [Vec<i64>; 3],
    /// `max(position) + 1 - S`; decode token k of a prompt of length S sits at `S + k + delta`.
    pub rope_delta: i64,
}

/// Why positions cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RopeError {
    /// The prompt has a run of image tokens that does not match the next image grid.
    #[error(
        "image {index}: the prompt has {found} image tokens in a run, the grid {grid:?} needs {expected}"
    )]
    TokenCountMismatch {
        /// Which image (0-based, prompt order).
        index: usize,
        /// Tokens found in the run.
        found: usize,
        /// Tokens the grid implies.
        expected: usize,
        /// The image grid `[t, h, w]` in patches.
        grid: [i64; 3],
    },
    /// More runs of image tokens than grids given, or the reverse.
    #[error("the prompt has {runs} runs of image tokens but {grids} image grids were given")]
    ImageCountMismatch {
        /// Runs of image tokens.
        runs: usize,
        /// Grids given.
        grids: usize,
    },
}

/// Computes prefill positions for `input_ids`, where `image_token` marks visual
/// tokens and `grids` holds each image's `[t, h, w]` in patches, in prompt order.
///
/// `merge` is the spatial merge size (2). Runs of consecutive image tokens are one
/// image each (the chat template always puts text tokens between two images).
pub fn rope_positions(
    input_ids: &[u32],
    image_token: u32,
    grids: &[[i64; 3]],
    merge: i64,
) -> Result<RopePositions, RopeError> {
    let (rows, _) = rope_positions_from(0, input_ids, image_token, grids, merge)?;
    let len = input_ids.len();
    let max = rows.iter().flatten().copied().max().unwrap_or(-1);
    let rope_delta = max + 1 - len as i64;
    Ok(RopePositions { rows, rope_delta })
}

/// Positions of `input_ids` appended after a sequence whose running position
/// (`get_rope_index`'s `cur`) is `start`; returns the `[3][S]` rows and the
/// running position after them.
///
/// Running [`rope_positions`] over a whole sequence equals running this over
/// consecutive pieces of it, each starting where the previous one ended, as long
/// as no piece boundary falls inside a run of image tokens: that is how an
/// incremental session keeps its positions identical to a fresh prefill's.
pub fn rope_positions_from(
    start: i64,
    input_ids: &[u32],
    image_token: u32,
    grids: &[[i64; 3]],
    merge: i64,
) -> Result<([Vec<i64>; 3], i64), RopeError> {
    let len = input_ids.len();
    let mut rows = [
        Vec::with_capacity(len),
        Vec::with_capacity(len),
        Vec::with_capacity(len),
    ];
    let mut cur: i64 = start;
    let mut image_index = 0;
    let mut i = 0;
    while i < len {
        if input_ids[i] != image_token {
            for row in &mut rows {
                row.push(cur);
            }
            cur += 1;
            i += 1;
            continue;
        }
        let run_start = i;
        while i < len && input_ids[i] == image_token {
            i += 1;
        }
        let found = i - run_start;
        let Some(&grid) = grids.get(image_index) else {
            return Err(RopeError::ImageCountMismatch {
                runs: image_index + 1 + count_runs(&input_ids[i..], image_token),
                grids: grids.len(),
            });
        };
        let [t, h, w] = grid;
        let (gh, gw) = (h / merge, w / merge);
        let expected = usize::try_from(t * gh * gw).unwrap_or(0);
        if found != expected {
            return Err(RopeError::TokenCountMismatch {
                index: image_index,
                found,
                expected,
                grid,
            });
        }
        for ti in 0..t {
            for hi in 0..gh {
                for wi in 0..gw {
                    rows[0].push(cur + ti);
                    rows[1].push(cur + hi);
                    rows[2].push(cur + wi);
                }
            }
        }
        // The next text starts after the largest spatial extent; `t` is ignored (§5).
        cur += gh.max(gw);
        image_index += 1;
    }
    if image_index != grids.len() {
        return Err(RopeError::ImageCountMismatch {
            runs: image_index,
            grids: grids.len(),
        });
    }
    Ok((rows, cur))
}

fn count_runs(ids: &[u32], token: u32) -> usize {
    ids.iter()
        .enumerate()
        .filter(|&(i, &id)| id == token && (i == 0 || ids[i - 1] != token))
        .count()
}

/// The position (same on all three rows) of the token at absolute index `index`
/// appended after a prompt whose rope delta is `rope_delta`.
pub fn decode_position(index: usize, rope_delta: i64) -> i64 {
    index as i64 + rope_delta
}

/// The text decoder's rotary frequencies and M-RoPE section layout, for rotating
/// cached keys (`../shared/QWEN2VL.md` §5 "Rotary tables").
#[derive(Debug, Clone, PartialEq)]
pub struct RopeTable {
    /// `inv[j] = 1 / theta^(2j / head_dim)` in f32, `j < head_dim / 2`.
    inv: Vec<f32>,
    /// Which position row (0 t, 1 h, 2 w) drives rotary pair `j`.
    axis: Vec<usize>,
}

impl RopeTable {
    /// The table for `head_dim`, `theta` and the contiguous `mrope_section` (pairs
    /// per axis, summing to `head_dim / 2`).
    pub fn new(head_dim: usize, theta: f64, mrope_section: &[usize]) -> Self {
        let half = head_dim / 2;
        let theta = theta as f32;
        let inv = (0..half)
            .map(|j| 1.0 / theta.powf((2 * j) as f32 / head_dim as f32))
            .collect();
        let mut axis = Vec::with_capacity(half);
        for (a, &n) in mrope_section.iter().enumerate().take(3) {
            axis.extend(std::iter::repeat_n(a, n));
        }
        // A malformed section list (rejected by the manifest check) falls back to the width axis.
        axis.resize(half, 2);
        Self { inv, axis }
    }

    /// Per-head size.
    pub fn head_dim(&self) -> usize {
        self.inv.len() * 2
    }

    /// Rotates post-RoPE key vectors (`keys` is a whole number of `head_dim`
    /// vectors) as if their positions had moved by `shift` (t, h, w).
    ///
    /// RoPE is a rotation of each pair `(x[j], x[j + hd/2])` by `pos[axis(j)] * inv[j]`,
    /// and rotations compose, so moving a cached key by Δ is one more rotation by
    /// `Δ * inv[j]`. The angle is computed in f64; the result differs from a key
    /// computed afresh at the new position by the reference's own f32 angle
    /// rounding (about `position * 6e-8` radians).
    pub fn rotate(&self, keys: &mut [f32], shift: [i64; 3]) {
        let half = self.inv.len();
        let (cos, sin): (Vec<f32>, Vec<f32>) = (0..half)
            .map(|j| {
                let angle = shift[self.axis[j]] as f64 * f64::from(self.inv[j]);
                (angle.cos() as f32, angle.sin() as f32)
            })
            .unzip();
        for vector in keys.chunks_exact_mut(half * 2) {
            let (x1, x2) = vector.split_at_mut(half);
            for j in 0..half {
                let (a, b) = (x1[j], x2[j]);
                // rope(x) = x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1].
                x1[j] = a * cos[j] - b * sin[j];
                x2[j] = b * cos[j] + a * sin[j];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMG: u32 = 414;

    fn prompt(parts: &[(usize, bool)]) -> Vec<u32> {
        parts
            .iter()
            .flat_map(|&(n, image)| std::iter::repeat_n(if image { IMG } else { 1 }, n))
            .collect()
    }

    #[test]
    fn text_only_is_arange_with_zero_delta() {
        let p = rope_positions(&[5, 6, 7], IMG, &[], 2).unwrap();
        assert_eq!(p.rows[0], vec![0, 1, 2]);
        assert_eq!(p.rows, [vec![0, 1, 2], vec![0, 1, 2], vec![0, 1, 2]]);
        assert_eq!(p.rope_delta, 0);
    }

    #[test]
    fn case_a_one_1280x720_frame() {
        // QWEN2VL.md §5 case a: 67 text, 1196 image tokens (grid 1x52x92), 43 text.
        let ids = prompt(&[(67, false), (1196, true), (43, false)]);
        let p = rope_positions(&ids, IMG, &[[1, 52, 92]], 2).unwrap();
        assert_eq!(p.rows[0][67], 67);
        assert_eq!(p.rows[1][67], 67);
        assert_eq!(p.rows[1][67 + 1195], 67 + 25);
        assert_eq!(p.rows[2][67 + 1195], 67 + 45);
        assert_eq!(p.rows[0][1263], 113);
        assert_eq!(*p.rows[0].last().unwrap(), 155);
        assert_eq!(p.rope_delta, -1150);
    }

    #[test]
    fn case_b_two_images() {
        // §5 case b: text 0..22, image 26x46 (598 tokens... grid [1,26,46] -> 13x23 = 299),
        // text 15, image [1,18,24] (9x12 = 108), text 39; delta -372.
        let ids = prompt(&[
            (23, false),
            (299, true),
            (15, false),
            (108, true),
            (39, false),
        ]);
        let p = rope_positions(&ids, IMG, &[[1, 26, 46], [1, 18, 24]], 2).unwrap();
        assert_eq!(p.rows[0][23], 23);
        assert_eq!(p.rows[2][23 + 298], 45);
        assert_eq!(p.rows[0][23 + 299], 46);
        assert_eq!(p.rows[0][23 + 299 + 15], 61);
        assert_eq!(p.rows[1][23 + 299 + 15 + 107], 69);
        assert_eq!(p.rows[2][23 + 299 + 15 + 107], 72);
        assert_eq!(*p.rows[0].last().unwrap(), 111);
        assert_eq!(p.rope_delta, -372);
        assert_eq!(decode_position(ids.len(), p.rope_delta), 112);
    }

    #[test]
    fn mismatches_are_errors() {
        let ids = prompt(&[(2, false), (4, true), (1, false)]);
        assert!(matches!(
            rope_positions(&ids, IMG, &[[1, 4, 6]], 2),
            Err(RopeError::TokenCountMismatch {
                found: 4,
                expected: 6,
                ..
            })
        ));
        assert!(matches!(
            rope_positions(&ids, IMG, &[], 2),
            Err(RopeError::ImageCountMismatch { runs: 1, grids: 0 })
        ));
        assert!(matches!(
            rope_positions(&ids, IMG, &[[1, 4, 4], [1, 4, 4]], 2),
            Err(RopeError::ImageCountMismatch { runs: 1, grids: 2 })
        ));
    }

    #[test]
    fn pieces_continue_like_the_whole_sequence() {
        let ids = prompt(&[
            (23, false),
            (299, true),
            (15, false),
            (108, true),
            (39, false),
        ]);
        let grids = [[1, 26, 46], [1, 18, 24]];
        let whole = rope_positions(&ids, IMG, &grids, 2).unwrap();
        let (a, mid) = rope_positions_from(0, &ids[..30 + 299], IMG, &grids[..1], 2).unwrap();
        let (b, end) = rope_positions_from(mid, &ids[30 + 299..], IMG, &grids[1..], 2).unwrap();
        for r in 0..3 {
            let joined: Vec<i64> = a[r].iter().chain(&b[r]).copied().collect();
            assert_eq!(joined, whole.rows[r]);
        }
        assert_eq!(end, 112);
        assert_eq!(end, decode_position(ids.len(), whole.rope_delta));
    }

    #[test]
    fn rotation_composes_and_inverts() {
        let table = RopeTable::new(16, 1e6, &[2, 3, 3]);
        let original: Vec<f32> = (0..32).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut keys = original.clone();
        table.rotate(&mut keys, [5, -7, 11]);
        assert!(
            keys.iter()
                .zip(&original)
                .any(|(a, b)| (a - b).abs() > 1e-3)
        );
        table.rotate(&mut keys, [-5, 7, -11]);
        for (a, b) in keys.iter().zip(&original) {
            assert!((a - b).abs() < 1e-6, "{a} {b}");
        }
        // Pair 0 (time axis) rotates by shift_t * inv[0] = shift_t radians.
        let mut unit = vec![0.0f32; 16];
        unit[0] = 1.0;
        table.rotate(&mut unit, [1, 0, 0]);
        assert!((unit[0] - 1f32.cos()).abs() < 1e-6 && (unit[8] - 1f32.sin()).abs() < 1e-6);
    }
}
