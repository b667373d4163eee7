//! Where frames come from: a live window (app/platform) or a folder of
//! recorded frames; and scaling them to the model's frame size.

use std::path::{Path, PathBuf};

use lumine_platform::{Frame, FrameSource, PlatformError};
use lumine_vision::RgbImage;

use crate::trajectory::{META_FILE, Trajectory};

/// The runtime's frame input.
pub enum FrameInput {
    /// A live capture of the target window.
    Live(Box<dyn FrameSource>),
    /// Recorded frames, for offline runs; the run finishes when they end.
    Directory(DirFrames),
}

impl std::fmt::Debug for FrameInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameInput::Live(_) => f.write_str("FrameInput::Live"),
            FrameInput::Directory(d) => write!(f, "FrameInput::Directory({} frames)", d.len()),
        }
    }
}

/// Why the next frame is not available.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    /// The window cannot be captured now (gone, minimised): pause and retry.
    #[error("{0}")]
    Unavailable(String),
    /// A recorded frame is unreadable.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No more recorded frames.
    #[error("no more frames")]
    End,
}

impl FrameInput {
    /// The next frame as packed RGB.
    ///
    /// # Errors
    /// See [`FrameError`].
    pub fn next_frame(&mut self) -> Result<RgbImage, FrameError> {
        match self {
            FrameInput::Live(source) => source
                .capture()
                .map_err(|e| FrameError::Unavailable(e.to_string()))
                .and_then(frame_to_image),
            FrameInput::Directory(dir) => dir.next_frame(),
        }
    }
}

/// A platform frame as an image.
fn frame_to_image(frame: Frame) -> Result<RgbImage, FrameError> {
    RgbImage::new(frame.width, frame.height, frame.rgb)
        .map_err(|e| FrameError::Unavailable(format!("captured frame is malformed: {e}")))
}

/// The frames of a folder, in order: a trajectory's frames (in step order)
/// or every `.png`/`.jpg`/`.jpeg` file sorted by name.
#[derive(Debug, Clone)]
pub struct DirFrames {
    files: Vec<PathBuf>,
    next: usize,
}

impl DirFrames {
    /// Lists the frames of `dir`.
    ///
    /// # Errors
    /// The folder is unreadable, is a damaged trajectory, or has no frames.
    pub fn open(dir: &Path) -> Result<DirFrames, FrameError> {
        let file_err = |message: String| FrameError::File {
            path: dir.to_owned(),
            message,
        };
        let files: Vec<PathBuf> = if dir.join(META_FILE).is_file() {
            let t = Trajectory::open(dir).map_err(|e| file_err(e.to_string()))?;
            t.steps.iter().filter_map(|s| t.frame_path(s)).collect()
        } else {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| file_err(e.to_string()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg")
                    })
                })
                .collect();
            files.sort();
            files
        };
        if files.is_empty() {
            return Err(file_err("no frames (.png, .jpg) found".to_owned()));
        }
        Ok(DirFrames { files, next: 0 })
    }

    /// Number of frames.
    #[must_use]
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when there are no frames.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Loads the next frame.
    ///
    /// # Errors
    /// [`FrameError::End`] after the last one, or an unreadable file.
    pub fn next_frame(&mut self) -> Result<RgbImage, FrameError> {
        let path = self.files.get(self.next).ok_or(FrameError::End)?.clone();
        self.next += 1;
        load_rgb(&path)
    }
}

impl FrameSource for DirFrames {
    fn capture(&mut self) -> Result<Frame, PlatformError> {
        let image = self
            .next_frame()
            .map_err(|e| PlatformError::Os(e.to_string()))?;
        Ok(Frame {
            width: image.width,
            height: image.height,
            rgb: image.data,
            captured_at: std::time::Instant::now(),
            window: lumine_platform::WindowInfo {
                id: lumine_platform::WindowId(0),
                title: "recorded frames".to_owned(),
                x: 0,
                y: 0,
                width: image.width,
                height: image.height,
                dpi_scale: 1.0,
                minimized: false,
            },
        })
    }
}

/// Loads an image file as packed RGB8.
///
/// # Errors
/// The file is unreadable or not an image.
pub fn load_rgb(path: &Path) -> Result<RgbImage, FrameError> {
    let err = |message: String| FrameError::File {
        path: path.to_owned(),
        message,
    };
    let decoded = image::ImageReader::open(path)
        .map_err(|e| err(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| err(e.to_string()))?
        .decode()
        .map_err(|e| err(format!("cannot decode: {e}")))?
        .to_rgb8();
    let (width, height) = decoded.dimensions();
    RgbImage::new(width, height, decoded.into_raw()).map_err(|e| err(e.to_string()))
}

/// Scales `image` to `size` (the model's frame size) with the same
/// antialiased bicubic filter the model's preprocessing uses; `None` or the
/// same size returns it unchanged.
#[must_use]
pub fn scale_frame(image: RgbImage, size: Option<(u32, u32)>) -> RgbImage {
    match size {
        Some((w, h)) if (w, h) != (image.width, image.height) && w > 0 && h > 0 => {
            lumine_vision::resize_bicubic_u8(image.as_ref_image(), w, h)
        }
        _ => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_of_frames_in_name_order_then_end() {
        let dir = tempfile::tempdir().unwrap();
        for (name, w) in [("b.png", 3u32), ("a.png", 2), ("notes.txt", 0)] {
            let path = dir.path().join(name);
            if w == 0 {
                std::fs::write(path, "x").unwrap();
            } else {
                image::RgbImage::new(w, 2).save(path).unwrap();
            }
        }
        let mut frames = DirFrames::open(dir.path()).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames.next_frame().unwrap().width, 2);
        assert_eq!(frames.next_frame().unwrap().width, 3);
        assert_eq!(frames.next_frame(), Err(FrameError::End));
        let empty = tempfile::tempdir().unwrap();
        assert!(DirFrames::open(empty.path()).is_err());
    }

    #[test]
    fn scaling_to_the_model_size() {
        let image = RgbImage::zeroed(64, 36);
        assert_eq!(scale_frame(image.clone(), None), image);
        let scaled = scale_frame(image, Some((32, 18)));
        assert_eq!((scaled.width, scaled.height), (32, 18));
    }
}
