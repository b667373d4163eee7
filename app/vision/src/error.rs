//! The crate's error type.

/// Why an image could not be preprocessed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PreprocessError {
    /// A side is zero (transformers raises `ZeroDivisionError` in `smart_resize`).
    #[error("image has a zero-sized side ({height}x{width})")]
    ZeroSize {
        /// Image height in pixels.
        height: u32,
        /// Image width in pixels.
        width: u32,
    },
    /// `max(h, w) / min(h, w) > 200` (transformers raises `ValueError`).
    #[error("absolute aspect ratio must be smaller than 200, got {height}x{width}")]
    AspectRatio {
        /// Image height in pixels.
        height: u32,
        /// Image width in pixels.
        width: u32,
    },
    /// The pixel buffer's length is not `width · height · 3`.
    #[error("RGB8 buffer for {width}x{height} must hold {expected} bytes, got {actual}")]
    BufferSize {
        /// Image width in pixels.
        width: u32,
        /// Image height in pixels.
        height: u32,
        /// `width · height · 3`.
        expected: usize,
        /// The buffer's actual length.
        actual: usize,
    },
    /// The resized size does not fit in `u32` (only possible with an absurd `min_pixels`).
    #[error("resized size does not fit in u32 (from {height}x{width})")]
    SizeOverflow {
        /// Image height in pixels.
        height: u32,
        /// Image width in pixels.
        width: u32,
    },
    /// The configuration cannot be used (a zero patch/merge/temporal size or `max_pixels`).
    #[error("invalid preprocessing config: {0}")]
    InvalidConfig(&'static str),
}
