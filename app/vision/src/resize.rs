//! torchvision/ATen's uint8 antialiased bicubic resize, bit for bit (QWEN2VL.md §2).
//!
//! `tvF.resize(u8, size, BICUBIC, antialias=True)` on CPU keeps the tensor
//! uint8 and runs ATen's integer kernel: per axis, f64 Keys-cubic weights
//! (a = −0.5) with the support scaled by the downscale factor, taps outside the
//! image dropped and the rest renormalised, quantised to int16 with a per-axis
//! precision `p`; each output is `clamp((2^(p−1) + Σ src·w16) >> p, 0, 255)` with
//! i32 accumulation. The width pass runs first into a uint8 intermediate, then
//! the height pass; an axis whose size does not change is skipped.
//!
//! Everything after the weights is exact integer arithmetic, so the summation
//! order is free: the passes below are written for auto-vectorisation, not to
//! mirror ATen's loops.

use std::sync::Arc;

use crate::image::rgb_len;
use crate::simd::{self, Isa};
use crate::{PreprocessError, RgbImage, RgbImageRef};

/// Keys' cubic convolution kernel with a = −0.5, as ATen's `aa_filter` for
/// bicubic. The evaluation order (`(… ) * t * t`, left to right) is ATen's.
fn keys_cubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let t = x.abs();
    if t < 1.0 {
        ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0
    } else if t < 2.0 {
        ((A * t - 5.0 * A) * t + 8.0 * A) * t - 4.0 * A
    } else {
        0.0
    }
}

/// The int16 weights of one resize axis (`n_in` → `n_out` samples), as ATen's
/// `_compute_index_ranges_int16_weights` builds them.
///
/// Internally every output sample gets the same number of taps
/// ([`max_taps`](Self::max_taps)), zero-padded and with the first tap shifted
/// so that it never reads past the input: the inner loops then have a
/// constant trip count and no bounds branches. [`taps`](Self::taps) gives
/// the unpadded view (ATen's `xmin`, `xsize`) for diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AxisWeights {
    n_in: usize,
    n_out: usize,
    precision: u32,
    /// Taps per output sample after padding (max of ATen's `xsize`, ≥ 1).
    k: usize,
    /// Padded first input index per output: `start[i] + k <= n_in`.
    start: Vec<usize>,
    /// ATen's `xmin` per output.
    lo: Vec<usize>,
    /// ATen's `xsize` per output.
    len: Vec<usize>,
    /// `n_out · k` weights; output `i`'s tap `j` multiplies input `start[i] + j`.
    w16: Vec<i16>,
    /// Width-pass layout: maximal runs of outputs whose windows advance by one
    /// input pixel per output pixel.
    runs: Vec<Run>,
    /// Width-pass layout: `k` rows of `3 · n_out` weights, `w3[j][3x + c] = w16[x][j]`.
    w3: Vec<i16>,
    /// Height-pass layout: `w16` with every weight splatted over `LANES` lanes.
    lanes: Vec<[i16; LANES]>,
    /// Width-pass layout of the SIMD kernels: for each tap pair `q`, `3 · n_out`
    /// i32 lanes holding the i16 pair `(w3[2q][e], w3[2q + 1][e])` (0 past `k`).
    /// Empty when the width pass goes pixel by pixel.
    pairs: Vec<i32>,
    /// The same pairs for the SIMD kernels' 32-element blocks: for each tap
    /// pair, every run of at least 32 elements as `ceil(n / 32)` blocks (the
    /// last one ending at the run's end), each holding its 32 lanes in the
    /// order the kernel's in-lane unpacks produce (see [`block_lane`]).
    pairs32: Vec<i32>,
    /// Per run: the offset of its first block in one tap pair's part of
    /// `pairs32` (`usize::MAX` for runs shorter than 32 elements).
    block_off: Vec<usize>,
}

/// Element (relative to a 32-element block) of lane `l` of the block's
/// `g`-th vector: unpacking 32 bytes in-lane twice yields elements
/// `4g..4g + 4` and `16 + 4g..16 + 4g + 4` in vector `g`.
pub(crate) fn block_lane(g: usize, l: usize) -> usize {
    if l < 4 { 4 * g + l } else { 16 + 4 * g + l - 4 }
}

/// Elements per vectorised chunk (16 × i32 accumulators: 4 SSE2 / 2 AVX2 registers).
const LANES: usize = 16;

/// Below this mean run length (in output pixels) the width pass goes pixel by pixel.
const MIN_MEAN_RUN: usize = 4;

/// Outputs `x0..x1` whose windows start at `s0 + (x − x0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// First output of the run.
    pub(crate) x0: usize,
    /// One past the last output of the run.
    pub(crate) x1: usize,
    /// First input index of output `x0`'s window.
    pub(crate) s0: usize,
}

impl AxisWeights {
    /// Computes the weights for resizing an axis of `n_in` samples to `n_out`.
    ///
    /// # Panics
    /// If `n_in` or `n_out` is zero.
    pub fn new(n_in: usize, n_out: usize) -> Self {
        assert!(n_in > 0 && n_out > 0, "cannot resize {n_in} -> {n_out}");
        // f64 throughout, in ATen's operation order (QWEN2VL.md §2).
        let scale = n_in as f64 / n_out as f64;
        let (support, inv_scale) = if scale >= 1.0 {
            (2.0 * scale, 1.0 / scale)
        } else {
            (2.0, 1.0)
        };
        let kmax = (support.ceil() as usize) * 2 + 1;

        let mut lo = Vec::with_capacity(n_out);
        let mut len = Vec::with_capacity(n_out);
        let mut wf = vec![0.0f64; n_out * kmax];
        let mut w_max = 0.0f64;
        for (i, row) in wf.chunks_exact_mut(kmax).enumerate() {
            let center = scale * (i as f64 + 0.5);
            // `as i64` truncates toward zero like C++'s static_cast.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(n_in as i64);
            // Taps outside the image are dropped (then the rest renormalised).
            let n = (xmax - xmin).clamp(0, kmax as i64) as usize;
            let mut total = 0.0;
            for (j, w) in row[..n].iter_mut().enumerate() {
                // C++: `(j + xmin - center + 0.5) * invscale`, the int sum first.
                *w = keys_cubic(((j as i64 + xmin) as f64 - center + 0.5) * inv_scale);
                total += *w;
            }
            if total != 0.0 {
                for w in &mut row[..n] {
                    *w /= total;
                    w_max = w_max.max(*w);
                }
            }
            lo.push(xmin as usize);
            len.push(n);
        }

        // The largest precision at which the biggest weight still fits in i16.
        let precision = (0..22u32)
            .find(|&p| (0.5 + w_max * f64::from(1u32 << (p + 1))) as i64 >= 1 << 15)
            .unwrap_or(22);
        let one = f64::from(1u32 << precision);

        let k = len.iter().copied().max().unwrap_or(0).max(1);
        let mut start = Vec::with_capacity(n_out);
        let mut w16 = vec![0i16; n_out * k];
        for i in 0..n_out {
            // Shift the window left where it would run past the input; the
            // extra leading taps get weight 0 (exact in integer arithmetic).
            let s = lo[i].min(n_in - k);
            let off = lo[i] - s;
            let row = &mut w16[i * k + off..i * k + off + len[i]];
            for (dst, &w) in row.iter_mut().zip(&wf[i * kmax..i * kmax + len[i]]) {
                let v = w * one;
                // Round half away from zero, then C++'s truncating int cast.
                *dst = if v < 0.0 {
                    (v - 0.5) as i32 as i16
                } else {
                    (v + 0.5) as i32 as i16
                };
            }
            start.push(s);
        }

        let mut runs: Vec<Run> = Vec::new();
        for (x, &s) in start.iter().enumerate() {
            match runs.last_mut() {
                Some(run) if run.s0 + (x - run.x0) == s => run.x1 = x + 1,
                _ => runs.push(Run {
                    x0: x,
                    x1: x + 1,
                    s0: s,
                }),
            }
        }
        let mut w3 = vec![0i16; k * 3 * n_out];
        for (j, row) in w3.chunks_exact_mut(3 * n_out).enumerate() {
            for (px, wk) in row
                .as_chunks_mut::<3>()
                .0
                .iter_mut()
                .zip(w16.chunks_exact(k))
            {
                *px = [wk[j]; 3];
            }
        }
        let lanes = w16.iter().map(|&v| [v; LANES]).collect();
        let mut pairs = Vec::new();
        let mut pairs32 = Vec::new();
        let mut block_off = Vec::new();
        if runs.len() * MIN_MEAN_RUN <= n_out {
            let row_out = 3 * n_out;
            let tap = |j: usize, e: usize| if j < k { w3[j * row_out + e] } else { 0 };
            let pair = |q: usize, e: usize| {
                i32::from(tap(2 * q, e) as u16) | (i32::from(tap(2 * q + 1, e)) << 16)
            };
            for q in 0..k.div_ceil(2) {
                pairs.extend((0..row_out).map(|e| pair(q, e)));
            }
            let mut total = 0;
            for run in &runs {
                let n = 3 * (run.x1 - run.x0);
                if n >= 32 {
                    block_off.push(total);
                    total += n.div_ceil(32) * 32;
                } else {
                    block_off.push(usize::MAX);
                }
            }
            for q in 0..k.div_ceil(2) {
                for run in &runs {
                    let (e0, n) = (3 * run.x0, 3 * (run.x1 - run.x0));
                    if n < 32 {
                        continue;
                    }
                    for b in 0..n.div_ceil(32) {
                        let c = (32 * b).min(n - 32);
                        for g in 0..4 {
                            pairs32.extend((0..8).map(|l| pair(q, e0 + c + block_lane(g, l))));
                        }
                    }
                }
            }
        }

        Self {
            n_in,
            n_out,
            precision,
            k,
            start,
            lo,
            len,
            w16,
            runs,
            w3,
            lanes,
            pairs,
            pairs32,
            block_off,
        }
    }

    /// Input length.
    pub fn n_in(&self) -> usize {
        self.n_in
    }

    /// Output length.
    pub fn n_out(&self) -> usize {
        self.n_out
    }

    /// Fixed-point precision `p` of the int16 weights (the weights of one
    /// output sum to about `2^p`).
    pub fn precision(&self) -> u32 {
        self.precision
    }

    /// Taps per output sample in the padded internal layout.
    pub fn max_taps(&self) -> usize {
        self.k
    }

    /// The width pass's runs of consecutive windows.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
    pub(crate) fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// See the `pairs` field.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
    pub(crate) fn pairs(&self) -> &[i32] {
        &self.pairs
    }

    /// See the `pairs32` field.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
    pub(crate) fn pairs32(&self) -> &[i32] {
        &self.pairs32
    }

    /// See the `block_off` field.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
    pub(crate) fn block_off(&self) -> &[usize] {
        &self.block_off
    }

    /// Output `i`'s first input index in the padded layout.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
    pub(crate) fn row_start(&self, i: usize) -> usize {
        self.start[i]
    }

    /// Output `i`'s `k` padded weights.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // read by the x86-64 kernels
    pub(crate) fn row_weights(&self, i: usize) -> &[i16] {
        &self.w16[i * self.k..(i + 1) * self.k]
    }

    /// The input range read by outputs `outputs` (in the padded layout).
    pub(crate) fn input_rows(&self, outputs: std::ops::Range<usize>) -> std::ops::Range<usize> {
        match (outputs.start < outputs.end, self.start.get(outputs.start)) {
            (true, Some(&first)) => first..self.start[outputs.end - 1] + self.k,
            _ => 0..0,
        }
    }

    /// Output `i`'s first input index (ATen's `xmin`) and its int16 weights
    /// for inputs `lo..lo + weights.len()` (ATen's `xsize` taps).
    ///
    /// # Panics
    /// If `i >= n_out`.
    pub fn taps(&self, i: usize) -> (usize, &[i16]) {
        let off = self.lo[i] - self.start[i];
        let base = i * self.k + off;
        (self.lo[i], &self.w16[base..base + self.len[i]])
    }
}

/// Resizes RGB8 images with [`AxisWeights`] cached by `(n_in, n_out)` and a
/// reusable intermediate buffer, so that resizing a stream of same-sized
/// frames allocates nothing after the first.
#[derive(Debug, Default)]
pub struct Resizer {
    /// Most recently used first; a handful of entries at most.
    cache: Vec<Arc<AxisWeights>>,
    /// Width-pass output, `[H_in, W_out]`, reused across calls.
    mid: Vec<u8>,
}

/// Weight tables kept per [`Resizer`]; frames come in one or two sizes.
const CACHE_CAPACITY: usize = 8;

impl Resizer {
    /// An empty resizer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The (cached) weights for resizing `n_in` samples to `n_out`.
    pub fn weights(&mut self, n_in: usize, n_out: usize) -> Arc<AxisWeights> {
        if let Some(pos) = self
            .cache
            .iter()
            .position(|w| w.n_in == n_in && w.n_out == n_out)
        {
            let w = self.cache.remove(pos);
            self.cache.insert(0, Arc::clone(&w));
            return w;
        }
        let w = Arc::new(AxisWeights::new(n_in, n_out));
        self.cache.truncate(CACHE_CAPACITY - 1);
        self.cache.insert(0, Arc::clone(&w));
        w
    }

    /// Resizes `src` to `new_width × new_height` into `dst` (reallocating its
    /// buffer only when it is too small). A same-size resize copies `src`.
    ///
    /// # Errors
    /// [`PreprocessError::BufferSize`] if `src.data` does not match its size,
    /// [`PreprocessError::ZeroSize`] if a source or target side is zero.
    pub fn resize_into(
        &mut self,
        src: RgbImageRef<'_>,
        new_width: u32,
        new_height: u32,
        dst: &mut RgbImage,
    ) -> Result<(), PreprocessError> {
        src.validate()?;
        for (height, width) in [(src.height, src.width), (new_height, new_width)] {
            if height == 0 || width == 0 {
                return Err(PreprocessError::ZeroSize { height, width });
            }
        }
        dst.width = new_width;
        dst.height = new_height;
        // Every byte is overwritten below; `resize` only zero-fills on growth.
        dst.data.resize(rgb_len(new_width, new_height), 0);

        let (h_in, h_out) = (src.height as usize, new_height as usize);
        let row_len = new_width as usize * 3;
        let wy = (h_in != h_out).then(|| self.weights(h_in, h_out));
        let isa = Isa::detect();
        // Width first, into a uint8 intermediate (ATen's order).
        let mid = self.width_pass(isa, src, new_width as usize);
        match wy {
            Some(wy) => vertical_pass(isa, mid, 0, row_len, &wy, 0, &mut dst.data),
            None => dst.data.copy_from_slice(mid),
        }
        Ok(())
    }

    /// The width pass of a resize to `new_width`: `src` itself when the width
    /// does not change, else the resized `[src.height, new_width]` RGB8 rows
    /// in this resizer's intermediate buffer. `src` must be valid.
    fn width_pass<'a>(&'a mut self, isa: Isa, src: RgbImageRef<'a>, new_width: usize) -> &'a [u8] {
        let (w_in, h_in) = (src.width as usize, src.height as usize);
        if w_in == new_width {
            return src.data;
        }
        let wx = self.weights(w_in, new_width);
        self.mid.resize(h_in * new_width * 3, 0);
        horizontal_pass(isa, src.data, w_in, h_in, &wx, &mut self.mid);
        &self.mid
    }
}

/// Resizes a packed RGB8 image to `new_width × new_height` exactly as
/// `torchvision.transforms.v2.functional.resize(chw_u8, [new_height, new_width],
/// InterpolationMode.BICUBIC, antialias=True)` does on CPU (QWEN2VL.md §2).
/// Resizing to the same size returns a copy of the input.
///
/// Uses a fresh weight cache; use a [`Resizer`] to resize many frames.
///
/// # Panics
/// If `src.data.len() != width · height · 3` or any side is zero.
pub fn resize_bicubic_u8(src: RgbImageRef<'_>, new_width: u32, new_height: u32) -> RgbImage {
    let mut dst = RgbImage::default();
    if let Err(e) = Resizer::new().resize_into(src, new_width, new_height, &mut dst) {
        panic!("resize_bicubic_u8: {e}");
    }
    dst
}

/// `2^(p−1)`, the rounding term every accumulator starts from.
pub(crate) fn rounding_bias(p: u32) -> i32 {
    if p == 0 { 0 } else { 1 << (p - 1) }
}

/// `clamp(acc >> p, 0, 255)`; `acc` already holds the `2^(p−1)` rounding bias.
#[inline(always)]
fn finish(acc: i32, p: u32) -> u8 {
    (acc >> p).clamp(0, 255) as u8
}

/// `L` consecutive elements of `s` from `off` as an array reference.
#[inline(always)]
fn lanes_at<T, const L: usize>(s: &[T], off: usize) -> &[T; L] {
    s[off..].first_chunk().expect("lane chunk in bounds")
}

/// `acc[l] += v[l] · w[l]` over one chunk of `LANES` elements: u8 × i16 → i32.
///
/// Both operands come from memory with their 8/16-bit types visible, which
/// lets LLVM use 16-bit multiplies (`pmaddwd`) even on baseline SSE2 instead
/// of emulating 32-bit ones.
#[inline(always)]
fn mac(acc: &mut [i32; LANES], v: &[u8; LANES], w: &[i16; LANES]) {
    for ((a, &v), &w) in acc.iter_mut().zip(v).zip(w) {
        *a += i32::from(v) * i32::from(w);
    }
}

/// Writes `finish(acc)` to `out`.
#[inline(always)]
fn store(out: &mut [u8], acc: &[i32; LANES], p: u32) {
    for (o, &a) in out.iter_mut().zip(acc) {
        *o = finish(a, p);
    }
}

/// Width pass: `src` is `[rows, w_in]` RGB8, `dst` is `[rows, w.n_out]` RGB8.
pub(crate) fn horizontal_pass(
    isa: Isa,
    src: &[u8],
    w_in: usize,
    rows: usize,
    w: &AxisWeights,
    dst: &mut [u8],
) {
    let (row_in, row_out) = (w_in * 3, w.n_out * 3);
    debug_assert_eq!(src.len(), rows * row_in);
    debug_assert_eq!(dst.len(), rows * row_out);
    // Runs of consecutive windows are vectorised; strong downscales, where
    // every window starts a new run, take the per-pixel path.
    if w.runs.len() * MIN_MEAN_RUN > w.n_out {
        for (row, out) in src.chunks_exact(row_in).zip(dst.chunks_exact_mut(row_out)) {
            horizontal_row_pixels(row, w, out);
        }
        return;
    }
    // Two rows at a time: they share every weight load.
    let mut pairs_in = src.chunks_exact(2 * row_in);
    let mut pairs_out = dst.chunks_exact_mut(2 * row_out);
    for (src2, dst2) in (&mut pairs_in).zip(&mut pairs_out) {
        let (a, b) = src2.split_at(row_in);
        let (oa, ob) = dst2.split_at_mut(row_out);
        horizontal_rows_runs(isa, [a, b], w, [oa, ob]);
    }
    let (last_in, last_out) = (pairs_in.remainder(), pairs_out.into_remainder());
    if !last_in.is_empty() {
        horizontal_rows_runs(isa, [last_in], w, [last_out]);
    }
}

/// Width pass over `R` rows, run by run. Inside a run of consecutive windows
/// (`start[x] = s0 + x − x0`), tap `j` of every output element `e` reads
/// `row[3·(s0 + j) + e]`: a contiguous slice, multiplied element-wise by the
/// per-element weights `w3[j]`. That is the same shape as the height pass and
/// vectorises the same way.
fn horizontal_rows_runs<const R: usize>(
    isa: Isa,
    rows: [&[u8]; R],
    w: &AxisWeights,
    mut outs: [&mut [u8]; R],
) {
    if simd::horizontal_rows_runs(isa, rows, w, &mut outs) {
        return;
    }
    let p = w.precision;
    let bias = rounding_bias(p);
    let row_out = w.n_out * 3;
    for run in &w.runs {
        let (e0, e1) = (3 * run.x0, 3 * run.x1);
        let n = e1 - e0;
        let srcs = rows.map(|row| &row[3 * run.s0..]);
        let w3 = |j: usize| &w.w3[j * row_out + e0..j * row_out + e1];
        if n < LANES {
            for (row, out) in rows.iter().zip(outs.iter_mut()) {
                horizontal_run_scalar(row, w, run, out);
            }
            continue;
        }
        // Full chunks, then one last chunk overlapping the previous one.
        let mut c0 = 0;
        while c0 < n {
            let c = c0.min(n - LANES);
            let mut acc = [[bias; LANES]; R];
            for j in 0..w.k {
                let wj = lanes_at(w3(j), c);
                for (acc, src) in acc.iter_mut().zip(&srcs) {
                    mac(acc, lanes_at(src, 3 * j + c), wj);
                }
            }
            for (acc, out) in acc.iter().zip(outs.iter_mut()) {
                store(&mut out[e0 + c..e0 + c + LANES], acc, p);
            }
            c0 = c + LANES;
        }
    }
}

/// Width pass over one run of one row, element by element.
pub(crate) fn horizontal_run_scalar(row: &[u8], w: &AxisWeights, run: &Run, out: &mut [u8]) {
    let (p, bias) = (w.precision, rounding_bias(w.precision));
    let row_out = w.n_out * 3;
    let (e0, e1) = (3 * run.x0, 3 * run.x1);
    let src = &row[3 * run.s0..];
    for (e, o) in (e0..).zip(&mut out[e0..e1]) {
        let acc = (0..w.k).fold(bias, |acc, j| {
            acc + i32::from(src[3 * j + e - e0]) * i32::from(w.w3[j * row_out + e])
        });
        *o = finish(acc, p);
    }
}

/// Width pass over one row, one output pixel at a time (any tap count).
fn horizontal_row_pixels(row: &[u8], w: &AxisWeights, out: &mut [u8]) {
    let p = w.precision;
    let bias = rounding_bias(p);
    let k = w.k;
    for ((px_out, &s), wk) in out
        .as_chunks_mut::<3>()
        .0
        .iter_mut()
        .zip(&w.start)
        .zip(w.w16.chunks_exact(k))
    {
        let mut acc = [bias; 3];
        for (px, &wj) in row[s * 3..(s + k) * 3].as_chunks::<3>().0.iter().zip(wk) {
            let wj = i32::from(wj);
            for (a, &v) in acc.iter_mut().zip(px) {
                *a += i32::from(v) * wj;
            }
        }
        *px_out = acc.map(|a| finish(a, p));
    }
}

/// Height pass for output rows `first_row..first_row + dst.len() / row_len`:
/// `src` holds input rows `src_first_row..` (`row_len` bytes each), at least
/// [`AxisWeights::input_rows`] of those output rows. Every output row is a weighted sum of
/// `k` contiguous input rows, computed element-wise in chunks of `LANES` (the
/// weights pre-splatted per lane).
pub(crate) fn vertical_pass(
    isa: Isa,
    src: &[u8],
    src_first_row: usize,
    row_len: usize,
    w: &AxisWeights,
    first_row: usize,
    dst: &mut [u8],
) {
    debug_assert!(dst.len().is_multiple_of(row_len) && first_row + dst.len() / row_len <= w.n_out);
    if simd::vertical_pass(isa, src, src_first_row, row_len, w, first_row, dst) {
        return;
    }
    let p = w.precision;
    let bias = rounding_bias(p);
    let k = w.k;
    for (i, out) in (first_row..).zip(dst.chunks_exact_mut(row_len)) {
        let s = w.start[i] - src_first_row;
        let rows = &src[s * row_len..(s + k) * row_len];
        if row_len < LANES {
            let wk = &w.w16[i * k..(i + 1) * k];
            for (e, o) in out.iter_mut().enumerate() {
                let acc = wk.iter().enumerate().fold(bias, |acc, (j, &wj)| {
                    acc + i32::from(rows[j * row_len + e]) * i32::from(wj)
                });
                *o = finish(acc, p);
            }
            continue;
        }
        let lanes = &w.lanes[i * k..(i + 1) * k];
        let mut c0 = 0;
        while c0 < row_len {
            let c = c0.min(row_len - LANES);
            let mut acc = [bias; LANES];
            for (j, wl) in lanes.iter().enumerate() {
                mac(&mut acc, lanes_at(rows, j * row_len + c), wl);
            }
            store(&mut out[c..c + LANES], &acc, p);
            c0 = c + LANES;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_720_to_728_row5() {
        // QWEN2VL.md §2: 720→728, output row 5: lo = 3, w16 = [−28, 609, 16240, −437], p = 14.
        let w = AxisWeights::new(720, 728);
        assert_eq!(w.precision(), 14);
        let (lo, taps) = w.taps(5);
        assert_eq!(lo, 3);
        assert_eq!(taps, &[-28, 609, 16240, -437]);
        assert_eq!(taps.iter().map(|&v| i32::from(v)).sum::<i32>(), 16384);
    }

    #[test]
    fn quoted_precisions() {
        // Upscaled axes of the eval frames: 14.
        for (n_in, n_out) in [(720, 728), (1280, 1288), (360, 364), (640, 644)] {
            assert_eq!(
                AxisWeights::new(n_in, n_out).precision(),
                14,
                "{n_in}->{n_out}"
            );
        }
        // 257→252 height: 15.
        assert_eq!(AxisWeights::new(257, 252).precision(), 15);
        // 333→336 width (upscale): 14.
        assert_eq!(AxisWeights::new(333, 336).precision(), 14);
        // Strong downscales: 16 or 17.
        for (n_in, n_out) in [(4000, 1232), (3000, 924), (1000, 140), (5000, 700)] {
            let p = AxisWeights::new(n_in, n_out).precision();
            assert!((16..=17).contains(&p), "{n_in}->{n_out}: p = {p}");
        }
    }

    #[test]
    fn weights_sum_close_to_one() {
        for (n_in, n_out) in [
            (720, 728),
            (257, 252),
            (4000, 1232),
            (1, 56),
            (100, 560),
            (7, 3),
        ] {
            let w = AxisWeights::new(n_in, n_out);
            let one = 1i32 << w.precision();
            for i in 0..n_out {
                let (lo, taps) = w.taps(i);
                assert!(lo + taps.len() <= n_in);
                let sum: i32 = taps.iter().map(|&v| i32::from(v)).sum();
                assert!(
                    (sum - one).abs() <= taps.len() as i32,
                    "{n_in}->{n_out} [{i}]"
                );
            }
        }
    }

    #[test]
    fn padded_layout_never_reads_past_input() {
        for (n_in, n_out) in [(720, 728), (3, 56), (1, 28), (4000, 1232), (10, 9)] {
            let w = AxisWeights::new(n_in, n_out);
            for &s in &w.start {
                assert!(s + w.k <= n_in);
            }
        }
    }

    /// Straightforward reference: ATen's loops with unpadded taps.
    fn reference(src: &RgbImage, w_out: usize, h_out: usize) -> RgbImage {
        let (w_in, h_in) = (src.width as usize, src.height as usize);
        let pass = |data: &[u8], n_in: usize, n_out: usize, other: usize, horiz: bool| {
            let wt = AxisWeights::new(n_in, n_out);
            let p = wt.precision();
            let mut out = vec![0u8; n_out * other * 3];
            for o in 0..other {
                for i in 0..n_out {
                    let (lo, taps) = wt.taps(i);
                    for c in 0..3 {
                        let mut acc = 1i32 << (p - 1);
                        for (j, &t) in taps.iter().enumerate() {
                            let idx = if horiz {
                                (o * n_in + lo + j) * 3 + c
                            } else {
                                ((lo + j) * other + o) * 3 + c
                            };
                            acc += i32::from(data[idx]) * i32::from(t);
                        }
                        let idx = if horiz {
                            (o * n_out + i) * 3 + c
                        } else {
                            (i * other + o) * 3 + c
                        };
                        out[idx] = (acc >> p).clamp(0, 255) as u8;
                    }
                }
            }
            out
        };
        let mut data = src.data.clone();
        if w_in != w_out {
            data = pass(&data, w_in, w_out, h_in, true);
        }
        if h_in != h_out {
            data = pass(&data, h_in, h_out, w_out, false);
        }
        RgbImage::new(w_out as u32, h_out as u32, data).unwrap()
    }

    fn noise(width: u32, height: u32, seed: u64) -> RgbImage {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let data = (0..rgb_len(width, height))
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        RgbImage::new(width, height, data).unwrap()
    }

    #[test]
    fn fast_passes_match_reference() {
        let cases = [
            (1280, 720, 1288, 728),
            (333, 257, 336, 252),
            (173, 119, 168, 112),
            (97, 61, 20, 13),  // strong downscale, dynamic tap paths
            (1, 1, 56, 56),    // single pixel upscale
            (100, 1, 560, 28), // one-row input
            (64, 48, 64, 100), // height only
            (64, 48, 200, 48), // width only
            (64, 48, 37, 48),  // width-only downscale
            (7, 300, 7, 50),   // height-only strong downscale
            (5, 5, 3, 3),      // tiny downscale
        ];
        for (i, &(wi, hi, wo, ho)) in cases.iter().enumerate() {
            let src = noise(wi, hi, i as u64 + 1);
            let got = resize_bicubic_u8(src.as_ref_image(), wo, ho);
            let want = reference(&src, wo as usize, ho as usize);
            assert_eq!(got, want, "{wi}x{hi} -> {wo}x{ho}");
        }
    }

    proptest::proptest! {
        /// The vectorised passes equal the straightforward ATen loops on any sizes.
        #[test]
        fn fast_passes_match_reference_prop(
            wi in 1u32..80, hi in 1u32..60, wo in 1u32..90, ho in 1u32..70, seed in 0u64..1000
        ) {
            let src = noise(wi, hi, seed);
            let got = resize_bicubic_u8(src.as_ref_image(), wo, ho);
            proptest::prop_assert_eq!(got, reference(&src, wo as usize, ho as usize));
        }
    }

    #[test]
    fn identity_is_copy() {
        let src = noise(31, 17, 9);
        assert_eq!(resize_bicubic_u8(src.as_ref_image(), 31, 17), src);
    }

    #[test]
    fn constant_image_stays_constant() {
        // Weights sum to ~2^p, so a flat image must stay flat (within rounding).
        let src = RgbImage::new(50, 40, vec![200; 50 * 40 * 3]).unwrap();
        for (w, h) in [(56, 56), (28, 28), (112, 84)] {
            let out = resize_bicubic_u8(src.as_ref_image(), w, h);
            assert!(out.data.iter().all(|&v| v.abs_diff(200) <= 1));
        }
    }

    #[test]
    fn resizer_reuses_weights() {
        let mut r = Resizer::new();
        let a = r.weights(720, 728);
        let b = r.weights(720, 728);
        assert!(Arc::ptr_eq(&a, &b));
        for n in 0..20 {
            r.weights(10 + n, 20);
        }
        assert!(r.cache.len() <= CACHE_CAPACITY);
    }

    #[test]
    fn resize_into_errors() {
        let mut r = Resizer::new();
        let mut dst = RgbImage::default();
        let bad = RgbImageRef {
            width: 2,
            height: 2,
            data: &[0; 11],
        };
        assert!(matches!(
            r.resize_into(bad, 4, 4, &mut dst),
            Err(PreprocessError::BufferSize { .. })
        ));
        let ok = RgbImageRef {
            width: 2,
            height: 2,
            data: &[0; 12],
        };
        assert!(matches!(
            r.resize_into(ok, 0, 4, &mut dst),
            Err(PreprocessError::ZeroSize { .. })
        ));
    }
}
