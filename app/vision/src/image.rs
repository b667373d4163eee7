//! Minimal packed RGB8 image types.
//!
//! Why not `image::RgbImage`: the `image` crate would be this crate's largest
//! runtime dependency for what is a width, a height and a byte buffer. Callers
//! that hold an `image::RgbImage` borrow it as
//! `RgbImageRef { width: img.width(), height: img.height(), data: img.as_raw() }`.

use crate::PreprocessError;

/// A borrowed packed RGB8 image: `data[(y · width + x) · 3 + c]`, row-major,
/// no padding between rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RgbImageRef<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width · height · 3` bytes.
    pub data: &'a [u8],
}

impl<'a> RgbImageRef<'a> {
    /// Borrows `data` as a `width × height` image, checking the buffer length.
    pub fn new(width: u32, height: u32, data: &'a [u8]) -> Result<Self, PreprocessError> {
        let image = Self {
            width,
            height,
            data,
        };
        image.validate()?;
        Ok(image)
    }

    /// Checks that `data.len() == width · height · 3`.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        let expected = rgb_len(self.width, self.height);
        if self.data.len() == expected {
            Ok(())
        } else {
            Err(PreprocessError::BufferSize {
                width: self.width,
                height: self.height,
                expected,
                actual: self.data.len(),
            })
        }
    }

    /// Copies the pixels into an owned image.
    pub fn to_owned_image(&self) -> RgbImage {
        RgbImage {
            width: self.width,
            height: self.height,
            data: self.data.to_vec(),
        }
    }
}

/// An owned packed RGB8 image, same layout as [`RgbImageRef`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width · height · 3` bytes.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// Takes ownership of `data` as a `width × height` image, checking the buffer length.
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<Self, PreprocessError> {
        RgbImageRef::new(width, height, &data)?;
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// A black `width × height` image.
    pub fn zeroed(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            data: vec![0; rgb_len(width, height)],
        }
    }

    /// Borrows the image.
    pub fn as_ref_image(&self) -> RgbImageRef<'_> {
        RgbImageRef {
            width: self.width,
            height: self.height,
            data: &self.data,
        }
    }

    /// The pixel at (`x`, `y`) as `[r, g, b]`.
    ///
    /// # Panics
    /// If the coordinates are out of bounds.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        assert!(
            x < self.width && y < self.height,
            "pixel ({x}, {y}) out of bounds"
        );
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}

impl<'a> From<&'a RgbImage> for RgbImageRef<'a> {
    fn from(image: &'a RgbImage) -> Self {
        image.as_ref_image()
    }
}

/// `width · height · 3` as `usize` (saturating: a buffer that large cannot exist).
pub(crate) fn rgb_len(width: u32, height: u32) -> usize {
    (width as usize)
        .saturating_mul(height as usize)
        .saturating_mul(3)
}
