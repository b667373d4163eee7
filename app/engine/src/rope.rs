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
    let len = input_ids.len();
    let mut rows = [
        Vec::with_capacity(len),
        Vec::with_capacity(len),
        Vec::with_capacity(len),
    ];
    let mut cur: i64 = 0;
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
    let max = rows.iter().flatten().copied().max().unwrap_or(-1);
    let rope_delta = max + 1 - len as i64;
    Ok(RopePositions { rows, rope_delta })
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
        let ids = prompt(&[(23, false), (299, true), (15, false), (108, true), (39, false)]);
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
            Err(RopeError::TokenCountMismatch { found: 4, expected: 6, .. })
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
}
