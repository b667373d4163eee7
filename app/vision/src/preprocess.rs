//! Fused rescale + normalise + patchify (QWEN2VL.md §2.3 and §3), the full
//! pipeline, and the vision tower's 2-D rotary positions (§6.2).

use std::cell::RefCell;

use crate::simd::{self, Isa, Normalize};
use crate::{PreprocessConfig, PreprocessError, Resizer, RgbImageRef, smart_resize};

/// `pixel_values` and `image_grid_thw` for one image, as
/// `Qwen2VLImageProcessor` returns them.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelValues {
    /// Row-major `[rows, cols]` f32.
    pub data: Vec<f32>,
    /// Number of patches `t · h · w` (a row per patch).
    pub rows: usize,
    /// `3 · temporal_patch_size · patch_size²` (1176), ordered (c, t, y, x).
    pub cols: usize,
    /// `[t, h, w]` in patches (`t` = 1 for a still image).
    pub grid_thw: [i64; 3],
    /// The spatial merge size the rows are grouped by (2).
    pub merge_size: u32,
}

impl Default for PixelValues {
    /// An empty buffer, ready for [`preprocess_into`].
    fn default() -> Self {
        Self {
            data: Vec::new(),
            rows: 0,
            cols: 0,
            grid_thw: [0; 3],
            merge_size: 2,
        }
    }
}

impl PixelValues {
    /// Number of `<|image_pad|>` tokens (and merger output rows) for this
    /// image: `rows / merge_size²` (`rows / 4`; 1196 for a 1280×720 frame).
    pub fn num_image_tokens(&self) -> usize {
        self.rows / (self.merge_size as usize).pow(2).max(1)
    }

    /// Row `r` (one patch).
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }
}

/// The normalised value of every u8 per channel: `(f32(u) − m'_c) / s'_c` with
/// `m' = f32(mean · 255)`, `s' = f32(std · 255)` computed in f32 and a true
/// IEEE division, which is what torchvision's fused rescale+normalise does
/// (QWEN2VL.md §2.3). A table lookup is bit-identical to computing it per pixel.
pub fn normalize_lut(config: &PreprocessConfig) -> [[f32; 256]; 3] {
    std::array::from_fn(|c| {
        // transformers: `tensor(mean) * (1 / rescale_factor)`, an f32 tensor
        // times 255.0 (1/(1/255) is exactly 255 in Python).
        let m = config.image_mean[c] * 255.0;
        let s = config.image_std[c] * 255.0;
        std::array::from_fn(|u| (f32::from(u as u8) - m) / s)
    })
}

/// Runs the pipeline, reusing its buffers and weight tables across frames.
///
/// ```
/// # use lumine_vision::{PixelValues, PreprocessConfig, Preprocessor, RgbImageRef};
/// let frame = vec![127u8; 1280 * 720 * 3];
/// let mut pre = Preprocessor::new(PreprocessConfig::default()).unwrap();
/// let mut out = PixelValues::default();
/// pre.preprocess_into(&mut out, RgbImageRef::new(1280, 720, &frame).unwrap()).unwrap();
/// assert_eq!((out.rows, out.cols, out.grid_thw), (4784, 1176, [1, 52, 92]));
/// assert_eq!(out.num_image_tokens(), 1196);
/// ```
#[derive(Debug)]
pub struct Preprocessor {
    config: PreprocessConfig,
    norm: Normalize,
    isa: Isa,
    threads: usize,
    scratch: Scratch,
}

/// The reusable buffers of a pipeline run.
#[derive(Debug, Default)]
struct Scratch {
    /// The per-axis weight cache.
    resizer: Resizer,
    /// Per thread: its buffers.
    jobs: Vec<JobScratch>,
}

/// Jobs per thread when a frame is spread over several.
const JOBS_PER_THREAD: usize = 4;

/// One thread's buffers.
#[derive(Debug, Default)]
struct JobScratch {
    /// Width-pass output for the input rows the current band reads.
    mid: Vec<u8>,
    /// One band of `patch_size · merge_size` fully resized rows.
    band: Vec<u8>,
}

impl Preprocessor {
    /// A preprocessor for `config`.
    ///
    /// # Errors
    /// [`PreprocessError::InvalidConfig`] if the config is unusable.
    pub fn new(config: PreprocessConfig) -> Result<Self, PreprocessError> {
        config.validate()?;
        Ok(Self {
            norm: Normalize::new(&config),
            isa: Isa::detect(),
            config,
            threads: 1,
            scratch: Scratch::default(),
        })
    }

    /// Spreads each frame over `threads` threads (the caller's plus
    /// `threads − 1` named scoped helpers, created per frame); 0 and 1 mean
    /// single-threaded, the default. Worth it only when cores are idle: on
    /// the product's 2-core budget the model's thread pool usually is not.
    /// The output is identical for every thread count.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Whether to use the explicit SIMD kernels (AVX2 + FMA on x86-64) when
    /// the CPU has them: `true` by default. `false` forces the portable code
    /// (for comparison; the output is identical either way).
    pub fn with_simd(mut self, enabled: bool) -> Self {
        self.isa = if enabled {
            Isa::detect()
        } else {
            Isa::Portable
        };
        self
    }

    /// Whether explicit SIMD kernels run (see [`with_simd`](Self::with_simd)).
    pub fn uses_simd(&self) -> bool {
        self.isa.is_simd()
    }

    /// The thread count set by [`with_threads`](Self::with_threads).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The configuration.
    pub fn config(&self) -> &PreprocessConfig {
        &self.config
    }

    /// Preprocesses `image` into `out`, reusing `out.data`'s allocation (it
    /// only grows when a frame needs more patches than any before).
    ///
    /// # Errors
    /// See [`smart_resize`]; also [`PreprocessError::BufferSize`] for a
    /// malformed image. `out` is unspecified after an error.
    pub fn preprocess_into(
        &mut self,
        out: &mut PixelValues,
        image: RgbImageRef<'_>,
    ) -> Result<(), PreprocessError> {
        run(
            &self.config,
            &self.norm,
            self.isa,
            self.threads,
            &mut self.scratch,
            image,
            out,
        )
    }

    /// Preprocesses `image` into a new [`PixelValues`].
    ///
    /// # Errors
    /// As [`preprocess_into`](Self::preprocess_into).
    pub fn preprocess(&mut self, image: RgbImageRef<'_>) -> Result<PixelValues, PreprocessError> {
        let mut out = PixelValues::default();
        self.preprocess_into(&mut out, image)?;
        Ok(out)
    }
}

thread_local! {
    /// Buffers and weight tables for the free functions, per thread.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Preprocesses one RGB image exactly as transformers 5.23's
/// `Qwen2VLImageProcessor` (torchvision backend, CPU) with this config:
/// [`smart_resize`] → uint8 antialiased bicubic resize (skipped when the size
/// does not change) → fused rescale+normalise → patchify.
///
/// # Errors
/// See [`smart_resize`]; also [`PreprocessError::BufferSize`].
pub fn preprocess(
    image: RgbImageRef<'_>,
    config: &PreprocessConfig,
) -> Result<PixelValues, PreprocessError> {
    let mut out = PixelValues::default();
    preprocess_into(&mut out, image, config)?;
    Ok(out)
}

/// [`preprocess`] into a reusable `out` (no allocation once `out.data` and this
/// thread's scratch buffers have reached the frame size). A [`Preprocessor`]
/// additionally keeps the normalisation table between calls.
///
/// # Errors
/// As [`preprocess`]. `out` is unspecified after an error.
pub fn preprocess_into(
    out: &mut PixelValues,
    image: RgbImageRef<'_>,
    config: &PreprocessConfig,
) -> Result<(), PreprocessError> {
    config.validate()?;
    let norm = Normalize::new(config);
    SCRATCH.with(|s| {
        run(
            config,
            &norm,
            Isa::detect(),
            1,
            &mut s.borrow_mut(),
            image,
            out,
        )
    })
}

fn run(
    config: &PreprocessConfig,
    norm: &Normalize,
    isa: Isa,
    threads: usize,
    scratch: &mut Scratch,
    image: RgbImageRef<'_>,
    out: &mut PixelValues,
) -> Result<(), PreprocessError> {
    image.validate()?;
    let (h, w) = smart_resize(image.height, image.width, config)?;
    let (h, w) = (h as usize, w as usize);
    let (p, m, t) = (
        config.patch_size as usize,
        config.merge_size as usize,
        config.temporal_patch_size as usize,
    );
    let (gh, gw) = (h / p, w / p);
    let plane = p * p;
    let cols = 3 * t * plane;
    out.rows = gh * gw;
    out.cols = cols;
    out.grid_thw = [1, gh as i64, gw as i64];
    out.merge_size = config.merge_size;
    // No-op when the size is unchanged; every element is overwritten below.
    out.data.resize(out.rows * cols, 0.0);

    // Resize (QWEN2VL.md §2: width pass, then height pass; an unchanged axis
    // is skipped, so an unchanged size uses the input as is) fused with
    // normalise + patchify, one band of `p · m` output rows (one row of merge
    // windows) at a time, so that every intermediate stays in cache: the
    // width pass computes just the input rows the band's height pass reads
    // (keeping the rows it shares with the previous band), the height pass
    // fills the band, and the band is patchified. Bands are independent, so
    // with several threads each takes a contiguous block of them.
    let Scratch { resizer, jobs } = scratch;
    let (w_in, h_in) = (image.width as usize, image.height as usize);
    let wx = (w != w_in).then(|| resizer.weights(w_in, w));
    let wy = (h != h_in).then(|| resizer.weights(h_in, h));
    let (row_in, row_bytes) = (w_in * 3, w * 3);
    let band_rows = p * m;
    let out_band = (gw / m) * m * m * cols;
    let n_bands = gh / m;
    let threads = threads.clamp(1, n_bands.max(1));
    // With helpers, a few jobs per thread, so that one started late (the
    // other core busy) leaves its share to the rest; each job recomputes the
    // width pass of the few input rows it shares with the previous band.
    let per_job = if threads == 1 {
        n_bands.max(1)
    } else {
        n_bands.div_ceil(threads * JOBS_PER_THREAD)
    };
    jobs.resize_with(threads, JobScratch::default);

    let work = |job: &mut JobScratch, (first_band, dst): (usize, &mut [f32])| {
        let JobScratch { mid, band } = job;
        // Input rows held in `mid` (after the width pass).
        let mut held = 0..0;
        for (bh, dst) in (first_band..).zip(dst.chunks_exact_mut(out_band)) {
            let out_rows = bh * band_rows..(bh + 1) * band_rows;
            let need = match &wy {
                Some(wy) => wy.input_rows(out_rows.clone()),
                None => out_rows.clone(),
            };
            let src = match &wx {
                Some(wx) => {
                    // Keep the rows shared with the previous band, add the rest.
                    let from = if held.end > need.start && held.start <= need.start {
                        mid.copy_within(
                            (need.start - held.start) * row_bytes..held.len() * row_bytes,
                            0,
                        );
                        held.end
                    } else {
                        need.start
                    };
                    mid.resize(need.len() * row_bytes, 0);
                    crate::resize::horizontal_pass(
                        isa,
                        &image.data[from * row_in..need.end * row_in],
                        w_in,
                        need.end - from,
                        wx,
                        &mut mid[(from - need.start) * row_bytes..],
                    );
                    held = need.clone();
                    &mid[..]
                }
                None => &image.data[need.start * row_bytes..need.end * row_bytes],
            };
            let pixels = match &wy {
                Some(wy) => {
                    band.resize(band_rows * row_bytes, 0);
                    crate::resize::vertical_pass(
                        isa,
                        src,
                        need.start,
                        row_bytes,
                        wy,
                        out_rows.start,
                        band,
                    );
                    &band[..]
                }
                None => src,
            };
            if !simd::patchify_band(isa, pixels, row_bytes, p, m, t, norm, dst) {
                patchify_band(pixels, row_bytes, p, m, t, &norm.lut, dst);
            }
        }
    };
    if threads == 1 {
        work(&mut jobs[0], (0, &mut out.data));
    } else {
        let blocks: Vec<_> = out
            .data
            .chunks_mut(per_job * out_band)
            .enumerate()
            .map(|(i, dst)| (i * per_job, dst))
            .collect();
        crate::parallel::run_jobs(&mut jobs[..threads], blocks, work);
    }
    Ok(())
}

/// Normalises and patchifies one band of `p · m` image rows (merge-window
/// row `bh`) into its `pixel_values` rows, writing each value straight to its
/// slot (QWEN2VL.md §3): `row r = ((bh·(gw/m) + bw)·m + mh)·m + mw`,
/// `col k = ((c·T + t)·P + y)·P + x`, value `norm_c(img[P·(m·bh+mh) + y][P·(m·bw+mw) + x][c])`,
/// the same for every `t`.
pub(crate) fn patchify_band(
    band: &[u8],
    row_bytes: usize,
    p: usize,
    m: usize,
    t: usize,
    lut: &[[f32; 256]; 3],
    out: &mut [f32],
) {
    let plane = p * p;
    let cols = 3 * t * plane;
    let gw = row_bytes / 3 / p;
    let mut dst_rows = out.chunks_exact_mut(cols);
    for bw in 0..gw / m {
        for mh in 0..m {
            for mw in 0..m {
                let Some(dst) = dst_rows.next() else {
                    return;
                };
                let (y0, x0) = (mh * p, (bw * m + mw) * p);
                // Columns (c, t, y, x): fill channel c's t = 0 plane, then
                // copy it to t = 1.. Writing the row strictly in order
                // matters: interleaving the three channel planes' stores ran
                // ~2.5× slower (the row goes to memory, not cache).
                for ((c, group), lut) in dst.chunks_exact_mut(t * plane).enumerate().zip(lut) {
                    let (first, copies) = group.split_at_mut(plane);
                    let src = &band[y0 * row_bytes + x0 * 3 + c..];
                    if p == 14 {
                        // Qwen2-VL's patch size, unrolled.
                        fill_plane::<14>(first, src, row_bytes, lut);
                    } else {
                        for (y, line) in first.chunks_exact_mut(p).enumerate() {
                            let src = &src[y * row_bytes..][..p * 3 - 2];
                            for (i, o) in line.iter_mut().enumerate() {
                                *o = lut[usize::from(src[3 * i])];
                            }
                        }
                    }
                    // The still frame is repeated along T (identical columns).
                    for copy in copies.chunks_exact_mut(plane) {
                        copy.copy_from_slice(first);
                    }
                }
            }
        }
    }
}

/// One channel's `P × P` plane of a patch: `plane[y·P + x] = lut[src[y·row_bytes + 3x]]`.
#[inline(always)]
fn fill_plane<const P: usize>(plane: &mut [f32], src: &[u8], row_bytes: usize, lut: &[f32; 256]) {
    for (y, line) in plane.as_chunks_mut::<P>().0.iter_mut().enumerate() {
        let src = &src[y * row_bytes..][..3 * P - 2];
        for (i, o) in line.iter_mut().enumerate() {
            *o = lut[usize::from(src[3 * i])];
        }
    }
}

/// The vision tower's 2-D rotary position `(h, w)` (in patches) of every
/// `pixel_values` row, in row order, for `spatial_merge_size` 2 (QWEN2VL.md
/// §6.2): row `((bh·(w/2) + bw)·2 + mh)·2 + mw` gets `(2·bh + mh, 2·bw + mw)`,
/// repeated for each of the `t` frames.
///
/// # Panics
/// As [`vision_rotary_positions_with_merge`].
pub fn vision_rotary_positions(grid_thw: [i64; 3]) -> Vec<[i64; 2]> {
    vision_rotary_positions_with_merge(grid_thw, 2)
}

/// [`vision_rotary_positions`] for any spatial merge size `m`.
///
/// # Panics
/// If `m < 1`, a grid entry is negative, or `h` or `w` is not a multiple of `m`.
pub fn vision_rotary_positions_with_merge(grid_thw: [i64; 3], m: i64) -> Vec<[i64; 2]> {
    let [t, h, w] = grid_thw;
    assert!(
        m >= 1 && t >= 0 && h >= 0 && w >= 0 && h % m == 0 && w % m == 0,
        "invalid grid_thw {grid_thw:?} for merge size {m}"
    );
    let mut pos = Vec::with_capacity((t * h * w) as usize);
    for _ in 0..t {
        for bh in 0..h / m {
            for bw in 0..w / m {
                for mh in 0..m {
                    for mw in 0..m {
                        pos.push([bh * m + mh, bw * m + mw]);
                    }
                }
            }
        }
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RgbImage;

    #[test]
    fn normalisation_checkpoints() {
        // QWEN2VL.md §2.3: u8 0 and 255.
        let lut = normalize_lut(&PreprocessConfig::default());
        let zero = [-1.792_262_6_f32, -1.752_097, -1.480_219_8];
        let full = [1.930_336_2_f32, 2.074_883_5, 2.145_897_2];
        for c in 0..3 {
            assert!((lut[c][0] - zero[c]).abs() <= 2e-7, "c{c}: {}", lut[c][0]);
            assert!(
                (lut[c][255] - full[c]).abs() <= 2e-7,
                "c{c}: {}",
                lut[c][255]
            );
        }
    }

    #[test]
    fn scaled_mean_std_are_f32_products() {
        // QWEN2VL.md §2.3 quotes m' and s' exactly.
        let cfg = PreprocessConfig::default();
        let m: Vec<f64> = cfg
            .image_mean
            .iter()
            .map(|&v| f64::from(v * 255.0))
            .collect();
        let s: Vec<f64> = cfg
            .image_std
            .iter()
            .map(|&v| f64::from(v * 255.0))
            .collect();
        assert_eq!(
            m,
            [
                122.770_942_687_988_28,
                116.746_017_456_054_69,
                104.093_734_741_210_94
            ]
        );
        assert_eq!(
            s,
            [
                68.500_534_057_617_19,
                66.632_164_001_464_84,
                70.323_158_264_160_16
            ]
        );
    }

    /// A 56×56 image whose pixel (x, y) has R = x, G = y, B = (x + y) % 256.
    fn coord_image(w: u32, h: u32) -> RgbImage {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend([x as u8, y as u8, ((x + y) % 256) as u8]);
            }
        }
        RgbImage::new(w, h, data).unwrap()
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // the closed-form indices are the point
    fn patchify_layout_closed_form() {
        // 56×84 is already a multiple of 28 and within bounds: no resize.
        let cfg = PreprocessConfig::default();
        let img = coord_image(84, 56);
        let lut = normalize_lut(&cfg);
        let pv = preprocess(img.as_ref_image(), &cfg).unwrap();
        let (gh, gw) = (4usize, 6usize);
        assert_eq!(pv.grid_thw, [1, 4, 6]);
        assert_eq!((pv.rows, pv.cols), (24, 1176));
        assert_eq!(pv.num_image_tokens(), 6);
        for bh in 0..gh / 2 {
            for bw in 0..gw / 2 {
                for mh in 0..2 {
                    for mw in 0..2 {
                        let r = ((bh * (gw / 2) + bw) * 2 + mh) * 2 + mw;
                        for c in 0..3 {
                            for t in 0..2 {
                                for y in 0..14 {
                                    for x in 0..14 {
                                        let k = ((c * 2 + t) * 14 + y) * 14 + x;
                                        let py = 14 * (2 * bh + mh) + y;
                                        let px = 14 * (2 * bw + mw) + x;
                                        let u = img.pixel(px as u32, py as u32)[c];
                                        assert_eq!(pv.data[r * 1176 + k], lut[c][usize::from(u)]);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn temporal_copies_identical() {
        let cfg = PreprocessConfig::default();
        let pv = preprocess(coord_image(100, 70).as_ref_image(), &cfg).unwrap();
        for r in 0..pv.rows {
            let row = pv.row(r);
            for c in 0..3 {
                let base = c * 392;
                assert_eq!(row[base..base + 196], row[base + 196..base + 392]);
            }
        }
    }

    #[test]
    fn one_copy_is_the_first_temporal_slice() {
        // What a graph with a folded temporal kernel takes: every channel's
        // t = 0 plane of the processor's layout, for the SIMD and portable
        // paths, one and several threads, resized or not.
        let full = PreprocessConfig::default();
        let folded = PreprocessConfig {
            temporal_patch_size: 1,
            ..PreprocessConfig::default()
        };
        for (w, h) in [(100, 70), (280, 168)] {
            let img = coord_image(w, h);
            let want = preprocess(img.as_ref_image(), &full).unwrap();
            for simd in [true, false] {
                for threads in [1, 2] {
                    let mut pre = Preprocessor::new(folded.clone())
                        .unwrap()
                        .with_simd(simd)
                        .with_threads(threads);
                    let got = pre.preprocess(img.as_ref_image()).unwrap();
                    assert_eq!(
                        (got.rows, got.cols, got.grid_thw),
                        (want.rows, 588, want.grid_thw)
                    );
                    for r in 0..got.rows {
                        for c in 0..3 {
                            assert_eq!(
                                got.row(r)[c * 196..(c + 1) * 196],
                                want.row(r)[c * 392..c * 392 + 196]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn preprocess_1280x720_shape() {
        let frame = vec![0u8; 1280 * 720 * 3];
        let pv = preprocess(
            RgbImageRef::new(1280, 720, &frame).unwrap(),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(pv.grid_thw, [1, 52, 92]);
        assert_eq!((pv.rows, pv.cols), (4784, 1176));
        assert_eq!(pv.num_image_tokens(), 1196);
        assert_eq!(pv.data.len(), 4784 * 1176);
    }

    #[test]
    fn preprocess_into_reuses_allocation() {
        let cfg = PreprocessConfig::default();
        let mut pre = Preprocessor::new(cfg.clone()).unwrap();
        let a = coord_image(333, 257);
        let mut out = PixelValues::default();
        pre.preprocess_into(&mut out, a.as_ref_image()).unwrap();
        let ptr = out.data.as_ptr();
        let first = out.clone();
        pre.preprocess_into(&mut out, a.as_ref_image()).unwrap();
        assert_eq!(out.data.as_ptr(), ptr);
        assert_eq!(out, first);
        // The free function gives the same result.
        assert_eq!(preprocess(a.as_ref_image(), &cfg).unwrap(), first);
        // A smaller frame afterwards still gives a correct, smaller result.
        let small = coord_image(56, 56);
        pre.preprocess_into(&mut out, small.as_ref_image()).unwrap();
        assert_eq!(out, preprocess(small.as_ref_image(), &cfg).unwrap());
    }

    #[test]
    fn threads_do_not_change_the_output() {
        let cfg = PreprocessConfig::default();
        for (w, h) in [(333, 257), (100, 70), (56, 56), (84, 56), (10, 300)] {
            let img = coord_image(w, h);
            let want = preprocess(img.as_ref_image(), &cfg).unwrap();
            for threads in [0, 2, 3, 8] {
                let mut pre = Preprocessor::new(cfg.clone())
                    .unwrap()
                    .with_threads(threads);
                assert_eq!(pre.threads(), threads.max(1));
                let got = pre.preprocess(img.as_ref_image()).unwrap();
                assert_eq!(got, want, "{w}x{h}, {threads} threads");
            }
        }
    }

    #[test]
    fn simd_and_portable_paths_agree() {
        // Upscales, downscales (mild and strong), one-axis resizes, no resize.
        let cfg = PreprocessConfig::default();
        let small = PreprocessConfig {
            max_pixels: 200_704,
            ..PreprocessConfig::default()
        };
        for (w, h, cfg) in [
            (1280, 720, &cfg),
            (333, 257, &cfg),
            (173, 119, &cfg),
            (84, 56, &cfg),
            (336, 300, &cfg),
            (300, 336, &cfg),
            (1000, 750, &small),
            (1920, 1080, &small),
            (10, 300, &cfg),
        ] {
            let img = coord_image(w, h);
            let portable = Preprocessor::new(cfg.clone())
                .unwrap()
                .with_simd(false)
                .preprocess(img.as_ref_image())
                .unwrap();
            for threads in [1, 2] {
                let mut pre = Preprocessor::new(cfg.clone())
                    .unwrap()
                    .with_threads(threads);
                let got = pre.preprocess(img.as_ref_image()).unwrap();
                let same = got.data.len() == portable.data.len()
                    && got
                        .data
                        .iter()
                        .zip(&portable.data)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{w}x{h}, {threads} threads, simd {}", pre.uses_simd());
                assert_eq!(got.grid_thw, portable.grid_thw);
            }
        }
    }

    #[test]
    fn preprocess_errors() {
        let cfg = PreprocessConfig::default();
        let bad = RgbImageRef {
            width: 10,
            height: 10,
            data: &[0; 5],
        };
        assert!(matches!(
            preprocess(bad, &cfg),
            Err(PreprocessError::BufferSize { .. })
        ));
        let thin = vec![0u8; 2001 * 10 * 3];
        assert!(matches!(
            preprocess(RgbImageRef::new(2001, 10, &thin).unwrap(), &cfg),
            Err(PreprocessError::AspectRatio { .. })
        ));
        assert!(matches!(
            preprocess(RgbImageRef::new(0, 10, &[]).unwrap(), &cfg),
            Err(PreprocessError::ZeroSize { .. })
        ));
    }

    #[test]
    fn tiny_image_goes_through_min_pixels() {
        let pv = preprocess(
            RgbImageRef::new(1, 1, &[10, 20, 30]).unwrap(),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(pv.grid_thw, [1, 4, 4]);
        let lut = normalize_lut(&PreprocessConfig::default());
        // Upscaling a single pixel keeps its value everywhere.
        assert!(pv.data.chunks_exact(196).enumerate().all(|(i, blk)| {
            let c = (i % 6) / 2;
            blk.iter().all(|&v| v == lut[c][[10, 20, 30][c]])
        }));
    }

    #[test]
    fn rotary_positions() {
        let pos = vision_rotary_positions([1, 4, 6]);
        assert_eq!(pos.len(), 24);
        assert_eq!(
            &pos[..8],
            &[
                [0, 0],
                [0, 1],
                [1, 0],
                [1, 1],
                [0, 2],
                [0, 3],
                [1, 2],
                [1, 3]
            ]
        );
        assert_eq!(pos[12], [2, 0]);
        assert_eq!(pos[23], [3, 5]);
        // Frames repeat.
        let two = vision_rotary_positions([2, 4, 6]);
        assert_eq!(&two[..24], &two[24..]);
        // 1280×720: 4784 rows, last is (51, 91).
        let big = vision_rotary_positions([1, 52, 92]);
        assert_eq!(big.len(), 4784);
        assert_eq!(big[4783], [51, 91]);
    }

    #[test]
    fn rotary_positions_match_patchify_rows() {
        // Each pixel_values row's patch is the one at its rotary (h, w).
        let img = coord_image(84, 56);
        let pv = preprocess(img.as_ref_image(), &Default::default()).unwrap();
        let lut = normalize_lut(&PreprocessConfig::default());
        for (r, [h, w]) in vision_rotary_positions(pv.grid_thw).into_iter().enumerate() {
            let u = img.pixel(w as u32 * 14, h as u32 * 14);
            assert_eq!(pv.row(r)[0], lut[0][usize::from(u[0])]);
            assert_eq!(pv.row(r)[392], lut[1][usize::from(u[1])]);
        }
    }
}
