//! Explicit x86-64 AVX2 + FMA kernels for the three hot loops (width pass,
//! height pass, normalise + patchify), chosen at run time.
//!
//! The default build targets baseline x86-64 (SSE2), where LLVM can only
//! auto-vectorise the portable loops 16 bytes at a time. Here the CPU is
//! asked once (`is_x86_feature_detected!`) and, where AVX2 and FMA are
//! present, these kernels run instead; everywhere else (older x86-64,
//! aarch64, …) the portable code in `resize.rs` / `preprocess.rs` runs. The
//! outputs are bit-identical (tests compare both paths):
//!
//! - the resize passes are exact integer arithmetic (u8 × i16 pairs summed
//!   into i32 with `vpmaddwd`, then `>> p` and a saturating pack, which is
//!   the clamp to 0..=255), so the summation order is free;
//! - normalisation computes `(f32(u) − m) / s` with a correctly rounded
//!   `vdivps`, or — when [`Normalize::fma_exact`] has checked all 3 × 256
//!   inputs at construction — as `q = x·r; q += (x − q·s)·r` with FMA
//!   (Markstein's correction), which then equals the division bit for bit.
//!
//! Every kernel slices its inputs first (bounds-checked) and only then loads
//! from or stores to those slices.

// `unsafe` is needed for std::arch: unaligned SIMD loads/stores go through
// raw pointers (each derived from a bounds-checked slice of exactly the
// loaded/stored length) and `#[target_feature]` functions may only be called
// after the runtime check that the CPU has those features (the `Avx2` token).
#![allow(unsafe_code)]
// Elsewhere only `Isa::Portable` exists and the kernels' inputs go unused.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_variables))]

use crate::resize::AxisWeights;

/// The per-channel normalisation `(f32(u) − m'_c) / s'_c` (QWEN2VL.md §2.3)
/// as a table and as the constants the SIMD kernels compute it from.
#[derive(Debug, Clone)]
pub(crate) struct Normalize {
    /// `lut[c][u]`, computed with a true division.
    pub(crate) lut: [[f32; 256]; 3],
    /// `m'_c = f32(mean_c · 255)`.
    pub(crate) mean: [f32; 3],
    /// `s'_c = f32(std_c · 255)`.
    pub(crate) std: [f32; 3],
    /// `f32(1 / s'_c)`.
    pub(crate) recip: [f32; 3],
    /// The FMA form equals `lut` for every `u` and channel.
    pub(crate) fma_exact: bool,
}

impl Normalize {
    /// Builds the table and checks the FMA form against it exhaustively.
    pub(crate) fn new(config: &crate::PreprocessConfig) -> Self {
        let lut = crate::normalize_lut(config);
        // The same f32 products as `normalize_lut`.
        let mean = config.image_mean.map(|m| m * 255.0);
        let std = config.image_std.map(|s| s * 255.0);
        let recip = std.map(|s| 1.0 / s);
        let fma_exact = (0..3).all(|c| {
            (0..=255u8).all(|u| {
                let x = f32::from(u) - mean[c];
                fma_div(x, std[c], recip[c]).to_bits() == lut[c][usize::from(u)].to_bits()
            })
        });
        Self {
            lut,
            mean,
            std,
            recip,
            fma_exact,
        }
    }
}

/// `x / s` as `q0 = x·r`, `q0 + fma(−q0, s, x)·r` (both FMAs fused, as the
/// AVX2 kernel computes it); equal to the division for the inputs
/// [`Normalize::new`] verified.
fn fma_div(x: f32, s: f32, r: f32) -> f32 {
    let q0 = x * r;
    let e = (-q0).mul_add(s, x);
    e.mul_add(r, q0)
}

/// Which kernels run: chosen once by [`Isa::detect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// The portable loops (auto-vectorised for the build's target).
    Portable,
    /// The AVX2 + FMA kernels of this module.
    #[cfg(target_arch = "x86_64")]
    Avx2(x86::Avx2),
}

impl Isa {
    /// The best kernels this CPU runs.
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(token) = x86::Avx2::detect() {
            return Self::Avx2(token);
        }
        Self::Portable
    }

    /// Whether explicit SIMD kernels are in use.
    pub(crate) fn is_simd(self) -> bool {
        self != Self::Portable
    }
}

/// Width pass over `R` rows with the run layout (see
/// `resize::horizontal_rows_runs`). Returns `false` (having done nothing)
/// when `isa` has no kernel for it.
pub(crate) fn horizontal_rows_runs<const R: usize>(
    isa: Isa,
    rows: [&[u8]; R],
    w: &AxisWeights,
    outs: &mut [&mut [u8]; R],
) -> bool {
    match isa {
        Isa::Portable => false,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(token) => {
            token.horizontal_rows_runs(rows, w, outs);
            true
        }
    }
}

/// Height pass (see `resize::vertical_pass`). Returns `false` (having done
/// nothing) when `isa` has no kernel for it.
pub(crate) fn vertical_pass(
    isa: Isa,
    src: &[u8],
    src_first_row: usize,
    row_len: usize,
    w: &AxisWeights,
    first_row: usize,
    dst: &mut [u8],
) -> bool {
    match isa {
        Isa::Portable => false,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(token) => token.vertical_pass(src, src_first_row, row_len, w, first_row, dst),
    }
}

/// Normalise + patchify of one band (see `preprocess::patchify_band`).
/// Returns `false` (having done nothing) when `isa` has no kernel for it.
#[allow(clippy::too_many_arguments)] // the band geometry, as the portable version
pub(crate) fn patchify_band(
    isa: Isa,
    band: &[u8],
    row_bytes: usize,
    p: usize,
    m: usize,
    t: usize,
    norm: &Normalize,
    out: &mut [f32],
) -> bool {
    match isa {
        Isa::Portable => false,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(token) => token.patchify_band(band, row_bytes, p, m, t, norm, out),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Normalize;
    use crate::resize::{AxisWeights, rounding_bias};

    /// Proof that the CPU has AVX2 and FMA: only [`Avx2::detect`] makes one.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct Avx2(());

    impl Avx2 {
        /// `Some` when the CPU runs AVX2 and FMA.
        pub(crate) fn detect() -> Option<Self> {
            (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
                .then_some(Self(()))
        }

        pub(crate) fn horizontal_rows_runs<const R: usize>(
            self,
            rows: [&[u8]; R],
            w: &AxisWeights,
            outs: &mut [&mut [u8]; R],
        ) {
            // SAFETY: `self` exists only if the CPU has AVX2 and FMA.
            unsafe { horizontal_rows_runs(rows, w, outs) }
        }

        pub(crate) fn vertical_pass(
            self,
            src: &[u8],
            src_first_row: usize,
            row_len: usize,
            w: &AxisWeights,
            first_row: usize,
            dst: &mut [u8],
        ) -> bool {
            if row_len < 32 || w.max_taps().div_ceil(2) > MAX_PAIRS {
                return false;
            }
            // SAFETY: `self` exists only if the CPU has AVX2 and FMA.
            unsafe { vertical_pass(src, src_first_row, row_len, w, first_row, dst) };
            true
        }

        #[allow(clippy::too_many_arguments)]
        pub(crate) fn patchify_band(
            self,
            band: &[u8],
            row_bytes: usize,
            p: usize,
            m: usize,
            t: usize,
            norm: &Normalize,
            out: &mut [f32],
        ) -> bool {
            if p != 14 || m * m * 3 * t * 14 * 14 > MAX_COLS {
                return false;
            }
            // SAFETY: `self` exists only if the CPU has AVX2 and FMA.
            unsafe {
                if norm.fma_exact {
                    patchify_band_14::<true>(band, row_bytes, m, t, norm, out);
                } else {
                    patchify_band_14::<false>(band, row_bytes, m, t, norm, out);
                }
            }
            true
        }
    }

    /// Height-pass rows with more tap pairs than this take the portable path
    /// (strong downscales; the product frame has 2).
    const MAX_PAIRS: usize = 8;

    /// Most `pixel_values` the patchify kernel stages: one merge window's
    /// rows (`m · m` of them), up to 4 rows of `t = 2` (18.8 KB, in L1).
    const MAX_COLS: usize = 4 * 2 * 3 * 14 * 14;

    /// 16 bytes of `s` from `off`.
    #[inline(always)]
    fn load128(s: &[u8], off: usize) -> __m128i {
        let chunk: &[u8; 16] = s[off..].first_chunk().expect("16 bytes in bounds");
        // SAFETY: `chunk` is 16 readable bytes; `loadu` has no alignment needs.
        unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) }
    }

    /// Stores 16 bytes at `s[off..off + 16]`.
    #[inline(always)]
    fn store128(s: &mut [u8], off: usize, v: __m128i) {
        let chunk: &mut [u8; 16] = s[off..].first_chunk_mut().expect("16 bytes in bounds");
        // SAFETY: `chunk` is 16 writable bytes; `storeu` has no alignment needs.
        unsafe { _mm_storeu_si128(chunk.as_mut_ptr().cast(), v) }
    }

    /// Stores 32 bytes at `s[off..off + 32]`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn store256(s: &mut [u8], off: usize, v: __m256i) {
        let chunk: &mut [u8; 32] = s[off..].first_chunk_mut().expect("32 bytes in bounds");
        // SAFETY: `chunk` is 32 writable bytes; `storeu` has no alignment needs.
        unsafe { _mm256_storeu_si256(chunk.as_mut_ptr().cast(), v) }
    }

    /// Stores 8 f32 at `s[off..off + 8]`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn store_ps(s: &mut [f32], off: usize, v: __m256) {
        let chunk: &mut [f32; 8] = s[off..].first_chunk_mut().expect("8 f32 in bounds");
        // SAFETY: `chunk` is 8 writable f32; `storeu` has no alignment needs.
        unsafe { _mm256_storeu_ps(chunk.as_mut_ptr(), v) }
    }

    /// Two i16 weights as the i32 lane `vpmaddwd` pairs them from.
    #[inline(always)]
    fn pair(lo: i16, hi: i16) -> i32 {
        i32::from(lo as u16) | (i32::from(hi) << 16)
    }

    /// `clamp(acc >> p, 0, 255)` of 16 i32 (elements 0–7 in `a`, 8–15 in
    /// `b`) as 16 bytes in order: the signed then unsigned saturating packs
    /// are the clamp.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn finish16(a: __m256i, b: __m256i, shift: __m128i) -> __m128i {
        let a = _mm256_sra_epi32(a, shift);
        let b = _mm256_sra_epi32(b, shift);
        // [a0-3 b0-3 | a4-7 b4-7] -> [a0-7 | b0-7]
        let ab = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(a, b));
        _mm_packus_epi16(
            _mm256_castsi256_si128(ab),
            _mm256_extracti128_si256::<1>(ab),
        )
    }

    /// Width pass over `R` rows, run by run: inside a run, tap `j` of element
    /// `e` reads `src[3j + e]`; taps are taken in pairs `(2q, 2q + 1)`, the
    /// two source bytes interleaved and widened to i16 and `vpmaddwd`-ed with
    /// the pre-interleaved weights (`AxisWeights::pairs`), 16 elements at a
    /// time (the last chunk of a run overlapping the previous one). `KP` is
    /// the number of tap pairs (0: read it from `w`), so the common cases
    /// are unrolled.
    #[target_feature(enable = "avx2,fma")]
    fn horizontal_rows_runs_kp<const R: usize, const KP: usize>(
        rows: [&[u8]; R],
        w: &AxisWeights,
        outs: &mut [&mut [u8]; R],
    ) {
        let p = w.precision();
        let bias = _mm256_set1_epi32(rounding_bias(p));
        let shift = _mm_cvtsi32_si128(p as i32);
        let k = w.max_taps();
        let kp = if KP > 0 { KP } else { k.div_ceil(2) };
        debug_assert_eq!(kp, k.div_ceil(2));
        let row_out = w.n_out() * 3;
        let pairs = w.pairs();
        assert_eq!(pairs.len(), kp * row_out, "pair table");
        let pairs32 = w.pairs32();
        let per_pair32 = pairs32.len() / kp;
        let zero = _mm256_setzero_si256();
        for (run, &off) in w.runs().iter().zip(w.block_off()) {
            let (e0, e1) = (3 * run.x0, 3 * run.x1);
            let n = e1 - e0;
            if n < 16 {
                for (row, out) in rows.iter().zip(outs.iter_mut()) {
                    crate::resize::horizontal_run_scalar(row, w, run, out);
                }
                continue;
            }
            if n >= 32 {
                // Checked once per run, as below; the weights of block `b`
                // are `pairs32[q·per_pair32 + off + 32b ..][..32]`.
                let srcs = rows.map(|row| &row[3 * run.s0..3 * run.s0 + n + 3 * (k - 1)]);
                let blocks = n.div_ceil(32);
                assert!((kp - 1) * per_pair32 + off + 32 * blocks <= pairs32.len());
                for b in 0..blocks {
                    let c = (32 * b).min(n - 32);
                    let mut acc = [[bias; 4]; R];
                    for q in 0..kp {
                        // SAFETY: in bounds by the assertion above.
                        let wv: [__m256i; 4] = unsafe {
                            let wp = pairs32.as_ptr().add(q * per_pair32 + off + 32 * b);
                            std::array::from_fn(|g| _mm256_loadu_si256(wp.add(8 * g).cast()))
                        };
                        let ja = 6 * q + c;
                        let jb = if 2 * q + 1 < k { ja + 3 } else { ja };
                        for (acc, src) in acc.iter_mut().zip(&srcs) {
                            // SAFETY: `ja, jb <= c + 3(k − 1)` and `c + 32 <= n`:
                            // both 32-byte loads lie inside `src`.
                            let (a, bb) = unsafe {
                                (
                                    _mm256_loadu_si256(src.as_ptr().add(ja).cast()),
                                    _mm256_loadu_si256(src.as_ptr().add(jb).cast()),
                                )
                            };
                            let lo = _mm256_unpacklo_epi8(a, bb);
                            let hi = _mm256_unpackhi_epi8(a, bb);
                            let terms = [
                                _mm256_unpacklo_epi8(lo, zero),
                                _mm256_unpackhi_epi8(lo, zero),
                                _mm256_unpacklo_epi8(hi, zero),
                                _mm256_unpackhi_epi8(hi, zero),
                            ];
                            for ((a, x), wg) in acc.iter_mut().zip(terms).zip(wv) {
                                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(x, wg));
                            }
                        }
                    }
                    for (acc, out) in acc.iter().zip(outs.iter_mut()) {
                        let g = acc.map(|g| _mm256_sra_epi32(g, shift));
                        let p01 = _mm256_packs_epi32(g[0], g[1]);
                        let p23 = _mm256_packs_epi32(g[2], g[3]);
                        store256(out, e0 + c, _mm256_packus_epi16(p01, p23));
                    }
                }
                continue;
            }
            // Checked once per run: chunk `c <= n − 16` reads source bytes
            // `c + 3j .. c + 3j + 16` for taps `j < k` (an odd last tap pairs
            // with itself), i.e. below `n + 3(k − 1)`, and weights
            // `q·row_out + e0 + c .. + 16`, below `kp·row_out`.
            let srcs = rows.map(|row| &row[3 * run.s0..3 * run.s0 + n + 3 * (k - 1)]);
            let mut c0 = 0;
            while c0 < n {
                let c = c0.min(n - 16);
                let mut acc = [[bias; 2]; R];
                for q in 0..kp {
                    let wo = q * row_out + e0 + c;
                    // SAFETY: `wo + 16 <= (kp − 1)·row_out + e1 <= pairs.len()`.
                    let (w0, w1) = unsafe {
                        let wp = pairs.as_ptr().add(wo);
                        (
                            _mm256_loadu_si256(wp.cast()),
                            _mm256_loadu_si256(wp.add(8).cast()),
                        )
                    };
                    let ja = 6 * q + c;
                    // An odd last tap pairs with itself at weight 0 (in bounds).
                    let jb = if 2 * q + 1 < k { ja + 3 } else { ja };
                    for (acc, src) in acc.iter_mut().zip(&srcs) {
                        // SAFETY: `ja, jb <= c + 3(k − 1)` and `c + 16 <= n`, so
                        // both 16-byte loads lie inside `src` (see above).
                        let (a, b) = unsafe {
                            (
                                _mm_loadu_si128(src.as_ptr().add(ja).cast()),
                                _mm_loadu_si128(src.as_ptr().add(jb).cast()),
                            )
                        };
                        let x0 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b));
                        let x1 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(a, b));
                        acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(x0, w0));
                        acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(x1, w1));
                    }
                }
                for (acc, out) in acc.iter().zip(outs.iter_mut()) {
                    store128(out, e0 + c, finish16(acc[0], acc[1], shift));
                }
                c0 = c + 16;
            }
        }
    }

    /// [`horizontal_rows_runs_kp`] with the tap-pair count as a constant
    /// where it is small.
    #[target_feature(enable = "avx2,fma")]
    fn horizontal_rows_runs<const R: usize>(
        rows: [&[u8]; R],
        w: &AxisWeights,
        outs: &mut [&mut [u8]; R],
    ) {
        match w.max_taps().div_ceil(2) {
            1 => horizontal_rows_runs_kp::<R, 1>(rows, w, outs),
            2 => horizontal_rows_runs_kp::<R, 2>(rows, w, outs),
            3 => horizontal_rows_runs_kp::<R, 3>(rows, w, outs),
            4 => horizontal_rows_runs_kp::<R, 4>(rows, w, outs),
            _ => horizontal_rows_runs_kp::<R, 0>(rows, w, outs),
        }
    }

    /// Height pass: every output row is a weighted sum of `k` contiguous
    /// input rows; taps are paired, the two rows' bytes interleaved and
    /// widened (in-lane unpacks, undone by the final in-lane packs), and
    /// `vpmaddwd`-ed with the broadcast weight pair, 32 bytes at a time.
    /// Needs `row_len >= 32` and at most `MAX_PAIRS` tap pairs; `KP` as in
    /// [`horizontal_rows_runs_kp`].
    #[target_feature(enable = "avx2,fma")]
    fn vertical_pass_kp<const KP: usize>(
        src: &[u8],
        src_first_row: usize,
        row_len: usize,
        w: &AxisWeights,
        first_row: usize,
        dst: &mut [u8],
    ) {
        let p = w.precision();
        let bias = _mm256_set1_epi32(rounding_bias(p));
        let shift = _mm_cvtsi32_si128(p as i32);
        let zero = _mm256_setzero_si256();
        let k = w.max_taps();
        let kp = if KP > 0 { KP } else { k.div_ceil(2) };
        assert!(row_len >= 32 && kp <= MAX_PAIRS && kp == k.div_ceil(2));
        for (i, out) in (first_row..).zip(dst.chunks_exact_mut(row_len)) {
            let s = w.row_start(i) - src_first_row;
            let rows = &src[s * row_len..(s + k) * row_len];
            let wk = w.row_weights(i);
            let mut wv = [zero; MAX_PAIRS];
            for (q, v) in wv[..kp].iter_mut().enumerate() {
                let hi = wk.get(2 * q + 1).copied().unwrap_or(0);
                *v = _mm256_set1_epi32(pair(wk[2 * q], hi));
            }
            let mut c0 = 0;
            while c0 < row_len {
                let c = c0.min(row_len - 32);
                let mut g = [bias; 4];
                for (q, &wq) in wv[..kp].iter().enumerate() {
                    // SAFETY: `rows` holds `k` rows of `row_len >= c + 32` bytes
                    // and rows `2q`, `2q + 1` (when `< k`) are among them.
                    let (a, b) = unsafe {
                        let ra = rows.as_ptr().add(2 * q * row_len + c);
                        let a = _mm256_loadu_si256(ra.cast());
                        let b = if 2 * q + 1 < k {
                            _mm256_loadu_si256(ra.add(row_len).cast())
                        } else {
                            zero
                        };
                        (a, b)
                    };
                    // In-lane: lo = a0 b0 .. a7 b7 | a16 b16 .., hi = a8 b8 .. | a24 ..
                    let lo = _mm256_unpacklo_epi8(a, b);
                    let hi = _mm256_unpackhi_epi8(a, b);
                    let terms = [
                        _mm256_unpacklo_epi8(lo, zero), // elements 0-3 | 16-19
                        _mm256_unpackhi_epi8(lo, zero), // 4-7 | 20-23
                        _mm256_unpacklo_epi8(hi, zero), // 8-11 | 24-27
                        _mm256_unpackhi_epi8(hi, zero), // 12-15 | 28-31
                    ];
                    for (g, x) in g.iter_mut().zip(terms) {
                        *g = _mm256_add_epi32(*g, _mm256_madd_epi16(x, wq));
                    }
                }
                let g = g.map(|g| _mm256_sra_epi32(g, shift));
                // [0-7 | 16-23] and [8-15 | 24-31], then bytes 0-15 | 16-31.
                let p01 = _mm256_packs_epi32(g[0], g[1]);
                let p23 = _mm256_packs_epi32(g[2], g[3]);
                store256(out, c, _mm256_packus_epi16(p01, p23));
                c0 = c + 32;
            }
        }
    }

    /// [`vertical_pass_kp`] with the tap-pair count as a constant where it is small.
    #[target_feature(enable = "avx2,fma")]
    fn vertical_pass(
        src: &[u8],
        src_first_row: usize,
        row_len: usize,
        w: &AxisWeights,
        first_row: usize,
        dst: &mut [u8],
    ) {
        match w.max_taps().div_ceil(2) {
            1 => vertical_pass_kp::<1>(src, src_first_row, row_len, w, first_row, dst),
            2 => vertical_pass_kp::<2>(src, src_first_row, row_len, w, first_row, dst),
            3 => vertical_pass_kp::<3>(src, src_first_row, row_len, w, first_row, dst),
            _ => vertical_pass_kp::<0>(src, src_first_row, row_len, w, first_row, dst),
        }
    }

    /// `pshufb` controls that widen 4 pixels' channel `c` bytes (at byte
    /// `off + 3i + c`, i = 0..4) of each 128-bit lane into 4 i32.
    fn widen_control(c: usize, off_lo: usize, off_hi: usize) -> [i8; 32] {
        let mut ctl = [-1i8; 32];
        for i in 0..4 {
            ctl[4 * i] = (off_lo + 3 * i + c) as i8;
            ctl[16 + 4 * i] = (off_hi + 3 * i + c) as i8;
        }
        ctl
    }

    /// `dst.copy_from_slice(src)`, the bulk with 32-byte-aligned streaming
    /// (non-temporal) stores: the 22.5 MB of `pixel_values` go to memory
    /// without first reading every line into the cache. Weakly ordered: the
    /// caller ends with `_mm_sfence`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn copy_row(dst: &mut [f32], src: &[f32]) {
        assert_eq!(dst.len(), src.len());
        let n = dst.len();
        let head = (dst.as_ptr() as usize).wrapping_neg() % 32 / 4;
        let head = head.min(n);
        dst[..head].copy_from_slice(&src[..head]);
        let mut i = head;
        while i + 8 <= n {
            // SAFETY: `i + 8 <= n` for both slices, and `dst + i` is 32-byte
            // aligned (`head` floats reach the first aligned address).
            unsafe {
                let v = _mm256_loadu_ps(src.as_ptr().add(i));
                _mm256_stream_ps(dst.as_mut_ptr().add(i), v);
            }
            i += 8;
        }
        dst[i..].copy_from_slice(&src[i..]);
    }

    /// `ctl` as a vector.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn control(ctl: &[i8; 32]) -> __m256i {
        // SAFETY: `ctl` is 32 readable bytes; `loadu` has no alignment needs.
        unsafe { _mm256_loadu_si256(ctl.as_ptr().cast()) }
    }

    /// Normalise + patchify one band for `P = 14` (the layout of
    /// `preprocess::patchify_band`). Each 14-pixel line of a patch is two
    /// 8-pixel vectors (pixels 0–7 and 6–13, overlapping), built from four
    /// 16-byte loads of the packed RGB line (bytes 0–41 exactly) with one
    /// `pshufb` per channel, converted to f32, normalised, and stored to
    /// every temporal copy.
    #[target_feature(enable = "avx2,fma")]
    fn patchify_band_14<const FMA: bool>(
        band: &[u8],
        row_bytes: usize,
        m: usize,
        t: usize,
        norm: &Normalize,
        out: &mut [f32],
    ) {
        const P: usize = 14;
        const PLANE: usize = P * P;
        let cols = 3 * t * PLANE;
        let gw = row_bytes / 3 / P;
        // Pixels 0-3 at byte 0, 4-7 at byte 12; 6-9 at byte 18, 10-13 at byte 26 (offset 4).
        let ctl_a: [__m256i; 3] = std::array::from_fn(|c| control(&widen_control(c, 0, 0)));
        let ctl_b: [__m256i; 3] = std::array::from_fn(|c| control(&widen_control(c, 0, 4)));
        let mean = norm.mean.map(|v| _mm256_set1_ps(v));
        let std = norm.std.map(|v| _mm256_set1_ps(v));
        let recip = norm.recip.map(|v| _mm256_set1_ps(v));
        let normalise = |u: __m256i, c: usize| {
            let x = _mm256_sub_ps(_mm256_cvtepi32_ps(u), mean[c]);
            if FMA {
                let q0 = _mm256_mul_ps(x, recip[c]);
                let e = _mm256_fnmadd_ps(q0, std[c], x);
                _mm256_fmadd_ps(e, recip[c], q0)
            } else {
                _mm256_div_ps(x, std[c])
            }
        };
        // One merge window's rows (contiguous in `out`) are assembled in L1,
        // then copied out with aligned streaming stores (see `copy_row`):
        // 18.8 KB bursts ran ~25% faster than one 4.7 KB row at a time.
        let mut stage = [0f32; MAX_COLS];
        let stage = &mut stage[..m * m * cols];
        let mut dst_windows = out.chunks_exact_mut(m * m * cols);
        for bw in 0..gw / m {
            let Some(dst) = dst_windows.next() else {
                break;
            };
            for mh in 0..m {
                for mw in 0..m {
                    let stage = &mut stage[(mh * m + mw) * cols..][..cols];
                    let (y0, x0) = (mh * P, (bw * m + mw) * P);
                    for y in 0..P {
                        let line = &band[(y0 + y) * row_bytes + x0 * 3..][..3 * P];
                        let va = _mm256_set_m128i(load128(line, 12), load128(line, 0));
                        let vb = _mm256_set_m128i(load128(line, 26), load128(line, 18));
                        for c in 0..3 {
                            let fa = normalise(_mm256_shuffle_epi8(va, ctl_a[c]), c);
                            let fb = normalise(_mm256_shuffle_epi8(vb, ctl_b[c]), c);
                            for ti in 0..t {
                                let at = (c * t + ti) * PLANE + y * P;
                                store_ps(stage, at, fa);
                                store_ps(stage, at + 6, fb);
                            }
                        }
                    }
                }
            }
            copy_row(dst, stage);
        }
        _mm_sfence();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PreprocessConfig;
    use crate::resize::{horizontal_pass, vertical_pass as portable_vertical};

    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect()
    }

    /// The kernels under test, or `None` (with a note) on a CPU without them.
    fn simd() -> Option<Isa> {
        let isa = Isa::detect();
        if !isa.is_simd() {
            eprintln!("no AVX2 + FMA on this CPU: only the portable path is tested");
        }
        isa.is_simd().then_some(isa)
    }

    #[test]
    fn fma_normalisation_is_exact_for_the_clip_constants() {
        // QWEN2VL.md §2.3's constants: the FMA form equals the division for
        // all 768 inputs, so the kernels take the FMA path.
        let norm = Normalize::new(&PreprocessConfig::default());
        assert!(norm.fma_exact);
        for c in 0..3 {
            for u in 0..=255u8 {
                let x = f32::from(u) - norm.mean[c];
                assert_eq!(
                    fma_div(x, norm.std[c], norm.recip[c]).to_bits(),
                    norm.lut[c][usize::from(u)].to_bits()
                );
            }
        }
    }

    #[test]
    fn fma_check_is_per_input() {
        // A tiny std makes the residual step lose bits somewhere in 0..=255
        // or not; either way the flag must agree with an independent check.
        for std in [1e-3f32, 0.1, 0.3, 0.7, 1.0, 3.3] {
            let cfg = PreprocessConfig {
                image_std: [std, std * 1.37, std * 0.71],
                ..PreprocessConfig::default()
            };
            let norm = Normalize::new(&cfg);
            let all = (0..3).all(|c| {
                (0..=255u8).all(|u| {
                    let x = f32::from(u) - norm.mean[c];
                    let q = fma_div(x, norm.std[c], norm.recip[c]);
                    q.to_bits() == (x / norm.std[c]).to_bits()
                })
            });
            assert_eq!(norm.fma_exact, all, "std {std}");
        }
    }

    #[test]
    fn patchify_kernel_matches_portable() {
        let Some(isa) = simd() else { return };
        for (gw, t, seed) in [
            (2usize, 2usize, 1u64),
            (8, 2, 2),
            (92, 2, 3),
            (6, 1, 4),
            (4, 3, 5),
        ] {
            // More than 4 rows of t = 2 per merge window: the portable code runs.
            let kernel = t <= 2;
            let row_bytes = gw * 14 * 3;
            let band = noise(28 * row_bytes, seed);
            let cols = 3 * t * 196;
            let rows = gw * 2;
            let mut norm = Normalize::new(&PreprocessConfig::default());
            let mut want = vec![0.0f32; rows * cols];
            crate::preprocess::patchify_band(&band, row_bytes, 14, 2, t, &norm.lut, &mut want);
            for fma in [true, false] {
                norm.fma_exact = fma;
                let mut got = vec![f32::NAN; rows * cols];
                let ran = patchify_band(isa, &band, row_bytes, 14, 2, t, &norm, &mut got);
                assert_eq!(ran, kernel, "t {t}");
                if !ran {
                    continue;
                }
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "gw {gw}, t {t}, fma {fma}");
            }
        }
    }

    proptest::proptest! {
        /// The AVX2 width pass equals the portable one on any sizes.
        #[test]
        fn horizontal_kernel_matches_portable(
            w_in in 1usize..400, w_out in 1usize..400, rows in 1usize..5, seed in 0u64..1000
        ) {
            if let Some(isa) = simd() {
                let w = AxisWeights::new(w_in, w_out);
                let src = noise(rows * w_in * 3, seed);
                let mut want = vec![0u8; rows * w_out * 3];
                let mut got = vec![0u8; rows * w_out * 3];
                horizontal_pass(Isa::Portable, &src, w_in, rows, &w, &mut want);
                horizontal_pass(isa, &src, w_in, rows, &w, &mut got);
                proptest::prop_assert_eq!(got, want);
            }
        }

        /// The AVX2 height pass equals the portable one on any sizes.
        #[test]
        fn vertical_kernel_matches_portable(
            h_in in 1usize..200, h_out in 1usize..200, row_len in 1usize..200, seed in 0u64..1000
        ) {
            if let Some(isa) = simd() {
                let w = AxisWeights::new(h_in, h_out);
                let src = noise(h_in * row_len, seed);
                let mut want = vec![0u8; h_out * row_len];
                let mut got = vec![0u8; h_out * row_len];
                portable_vertical(Isa::Portable, &src, 0, row_len, &w, 0, &mut want);
                portable_vertical(isa, &src, 0, row_len, &w, 0, &mut got);
                proptest::prop_assert_eq!(got, want);
            }
        }
    }
}
