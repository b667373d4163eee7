//! Reading frames from image files.

use std::path::Path;

use lumine_vision::RgbImage;

use crate::error::EngineError;

/// Loads a PNG or JPEG file as packed RGB8. Transparent pixels are composited onto
/// white, as the reference processor does for images with alpha.
pub fn load_rgb(path: &Path) -> Result<RgbImage, EngineError> {
    let file_error = |message: String| EngineError::File {
        path: path.to_owned(),
        message,
    };
    let decoded = image::ImageReader::open(path)
        .map_err(|e| file_error(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| file_error(e.to_string()))?
        .decode()
        .map_err(|e| file_error(format!("cannot decode image: {e}")))?;
    let (width, height) = (decoded.width(), decoded.height());
    let data = if decoded.color().has_alpha() {
        decoded
            .to_rgba8()
            .pixels()
            .flat_map(|p| {
                let [r, g, b, a] = p.0;
                let over_white = |c: u8| {
                    let (c, a) = (u32::from(c), u32::from(a));
                    ((c * a + 255 * (255 - a) + 127) / 255) as u8
                };
                [over_white(r), over_white(g), over_white(b)]
            })
            .collect()
    } else {
        decoded.to_rgb8().into_raw()
    };
    RgbImage::new(width, height, data).map_err(|e| file_error(e.to_string()))
}
