//! Qwen2-VL image preprocessing, bit-exact with transformers 5.23's
//! `Qwen2VLImageProcessor` (the default torchvision backend) on CPU.
//!
//! The pipeline (see `shared/QWEN2VL.md` §1–3):
//!
//! 1. [`smart_resize`] picks the target size: both sides multiples of
//!    `patch_size · merge_size` (28), the pixel count within
//!    `[min_pixels, max_pixels]`.
//! 2. [`resize_bicubic_u8`] resizes the packed RGB8 frame with ATen's uint8
//!    antialiased bicubic kernel (int16 fixed-point weights, width pass first).
//! 3. Rescale + normalise in f32 (`(u8 − mean·255) / (std·255)`), fused with
//! 4. patchify into `pixel_values [Σ patches, 3·2·14·14]`, rows ordered by 2×2
//!    merge window, the still frame copied twice along the temporal axis.
//!
//! [`preprocess`] runs all of it; [`Preprocessor`] / [`preprocess_into`] reuse
//! the output buffer, the intermediate images and the per-axis weight tables
//! between frames (the agent preprocesses a 1280×720 frame 5 times a second).
//! Internally the steps run fused, band by band (28 output rows at a time), so
//! the intermediates stay in cache; [`Preprocessor::with_threads`] optionally
//! spreads the bands over more threads. The output is identical either way.
//!
//! Images are [`RgbImageRef`] / [`RgbImage`], this crate's own minimal packed
//! RGB8 types: callers convert from whatever they capture with, and the runtime
//! dependency list stays at `serde` + `thiserror`.

mod config;
mod error;
mod image;
mod parallel;
mod preprocess;
mod resize;
mod simd;

pub use config::{PreprocessConfig, smart_resize};
pub use error::PreprocessError;
pub use image::{RgbImage, RgbImageRef};
pub use preprocess::{
    PixelValues, Preprocessor, normalize_lut, preprocess, preprocess_into, vision_rotary_positions,
    vision_rotary_positions_with_merge,
};
pub use resize::{AxisWeights, Resizer, resize_bicubic_u8};
