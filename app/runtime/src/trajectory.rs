//! Trajectories on disk: what an agent run or a human demonstration did,
//! step by step. The format is documented in the crate README.
//!
//! ```text
//! DIR/meta.json          written once at the start (temp file + rename)
//! DIR/frames/000042.jpg  each step's frame, written first (temp file + rename)
//! DIR/steps.jsonl        then one JSON line per step, appended and flushed
//! ```
//!
//! Append-only and crash-safe: a `kill -9` loses at most the step being
//! written. [`Trajectory::open`] ignores a torn last line.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use lumine_vision::RgbImage;
use serde::{Deserialize, Serialize};

use crate::events::{Actor, StageLatency};

/// `format` field of every `meta.json`.
pub const TRAJECTORY_FORMAT: &str = "lumine-trajectory";
/// Version of the format this build writes and reads.
pub const TRAJECTORY_VERSION: u32 = 1;
/// The metadata file.
pub const META_FILE: &str = "meta.json";
/// The steps file.
pub const STEPS_FILE: &str = "steps.jsonl";
/// The frames folder.
pub const FRAMES_DIR: &str = "frames";
/// JPEG quality of the frames.
pub const JPEG_QUALITY: u8 = 90;

/// What made the trajectory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrajectorySource {
    /// `lumine run --record`: the agent (with operator takeovers marked).
    Agent,
    /// `lumine record`: a human demonstration.
    Demonstration,
}

/// `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryMeta {
    /// Always [`TRAJECTORY_FORMAT`].
    pub format: String,
    /// [`TRAJECTORY_VERSION`].
    pub version: u32,
    /// What made it.
    pub source: TrajectorySource,
    /// Wall-clock start, milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// The window played or watched (title), if any.
    pub window: Option<String>,
    /// The policy (`script:moves.txt`, `model:NAME`), for agent runs.
    pub policy: Option<String>,
    /// Frame size as stored.
    pub frame_width: u32,
    /// Frame size as stored.
    pub frame_height: u32,
    /// Pixels per unit of `DX`, `DY` (the model's mouse scale).
    pub mouse_scale: [f32; 2],
    /// Step length, milliseconds (200).
    pub step_ms: u32,
    /// Chunks per step (6).
    pub chunks_per_step: u32,
    /// The operator's instruction at the start, if any.
    pub instruction: Option<String>,
}

impl TrajectoryMeta {
    /// Metadata for a new trajectory started now.
    #[must_use]
    pub fn new(source: TrajectorySource, frame: (u32, u32), mouse_scale: [f32; 2]) -> Self {
        let created_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        TrajectoryMeta {
            format: TRAJECTORY_FORMAT.to_owned(),
            version: TRAJECTORY_VERSION,
            source,
            created_unix_ms,
            window: None,
            policy: None,
            frame_width: frame.0,
            frame_height: frame.1,
            mouse_scale,
            step_ms: lumine_action::STEP_MS,
            chunks_per_step: lumine_action::CHUNKS_PER_ACTION as u32,
            instruction: None,
        }
    }
}

/// One line of `steps.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step index (gaps are steps the runtime skipped).
    pub step: u64,
    /// The frame, relative to the trajectory folder, if stored.
    pub frame: Option<String>,
    /// When the frame was captured, ms since the run started.
    pub captured_ms: f64,
    /// Who produced the input.
    pub actor: Actor,
    /// The instruction in force.
    pub instruction: Option<String>,
    /// The thought, if the agent thought this step.
    pub thought: Option<String>,
    /// The action, canonical text in the model's key names.
    pub action: String,
    /// When each of the six chunks started, ms since the run started
    /// (`null`: not played: a deadline miss, a rejected turn, a pause).
    pub chunks_ms: Vec<Option<f64>>,
    /// Chunks of the step that missed their deadline.
    pub deadline_misses: u32,
    /// Per-stage latencies.
    pub latency_ms: StageLatency,
}

/// A problem reading or writing a trajectory.
#[derive(Debug, thiserror::Error)]
pub enum TrajectoryError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is not what the format says.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrajectoryError + '_ {
    move |source| TrajectoryError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TrajectoryError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Appends steps to a trajectory folder.
#[derive(Debug)]
pub struct TrajectoryWriter {
    dir: PathBuf,
    steps: File,
    start: Instant,
    written: u64,
}

impl TrajectoryWriter {
    /// Creates `dir` (which must not already hold a trajectory), writes
    /// `meta.json` and opens `steps.jsonl`. Times in records are measured
    /// from `start`.
    ///
    /// # Errors
    /// The folder holds a trajectory already, or cannot be written.
    pub fn create(
        dir: &Path,
        meta: &TrajectoryMeta,
        start: Instant,
    ) -> Result<TrajectoryWriter, TrajectoryError> {
        let frames = dir.join(FRAMES_DIR);
        std::fs::create_dir_all(&frames).map_err(io_err(&frames))?;
        let steps_path = dir.join(STEPS_FILE);
        if steps_path.exists() {
            return Err(TrajectoryError::Format {
                path: steps_path,
                message: "already holds a trajectory; choose a new folder".to_owned(),
            });
        }
        let meta_path = dir.join(META_FILE);
        let json = serde_json::to_vec_pretty(meta).map_err(|e| TrajectoryError::Format {
            path: meta_path.clone(),
            message: e.to_string(),
        })?;
        write_atomically(&meta_path, &json)?;
        let steps = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&steps_path)
            .map_err(io_err(&steps_path))?;
        Ok(TrajectoryWriter {
            dir: dir.to_owned(),
            steps,
            start,
            written: 0,
        })
    }

    /// The folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Milliseconds from the run's start to `at`.
    #[must_use]
    pub fn ms_since_start(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.start).as_secs_f64() * 1e3
    }

    /// Steps written.
    #[must_use]
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Writes the frame (if any, as JPEG, setting `record.frame`), then
    /// appends the record's line and flushes it.
    ///
    /// # Errors
    /// Encoding or writing failed; the trajectory stays readable.
    pub fn write_step(
        &mut self,
        record: &mut StepRecord,
        frame: Option<&RgbImage>,
    ) -> Result<(), TrajectoryError> {
        if let Some(frame) = frame {
            let name = format!("{FRAMES_DIR}/{:06}.jpg", record.step);
            let path = self.dir.join(&name);
            let jpeg = encode_jpeg(frame).map_err(|message| TrajectoryError::Format {
                path: path.clone(),
                message,
            })?;
            write_atomically(&path, &jpeg)?;
            record.frame = Some(name);
        }
        let steps_path = self.dir.join(STEPS_FILE);
        let mut line = serde_json::to_string(record).map_err(|e| TrajectoryError::Format {
            path: steps_path.clone(),
            message: e.to_string(),
        })?;
        line.push('\n');
        // One write per line: a crash can tear at most this line.
        self.steps
            .write_all(line.as_bytes())
            .and_then(|()| self.steps.flush())
            .map_err(io_err(&steps_path))?;
        self.written += 1;
        Ok(())
    }

    /// Flushes everything to the disk.
    ///
    /// # Errors
    /// The final sync failed.
    pub fn finish(self) -> Result<u64, TrajectoryError> {
        let path = self.dir.join(STEPS_FILE);
        self.steps.sync_all().map_err(io_err(&path))?;
        Ok(self.written)
    }
}

/// Encodes packed RGB8 as JPEG.
fn encode_jpeg(frame: &RgbImage) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(frame.data.len() / 8);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode(
            &frame.data,
            frame.width,
            frame.height,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| format!("cannot encode the frame as JPEG: {e}"))?;
    Ok(out)
}

/// A trajectory read back.
#[derive(Debug, Clone)]
pub struct Trajectory {
    /// The folder.
    pub dir: PathBuf,
    /// `meta.json`.
    pub meta: TrajectoryMeta,
    /// The complete steps, in file order.
    pub steps: Vec<StepRecord>,
    /// True when the last line was torn (a crash while writing it) and was
    /// ignored.
    pub torn_tail: bool,
}

impl Trajectory {
    /// Reads a trajectory folder, ignoring a torn last line.
    ///
    /// # Errors
    /// `meta.json` is missing or invalid, or a line before the last is not
    /// a step.
    pub fn open(dir: &Path) -> Result<Trajectory, TrajectoryError> {
        let meta_path = dir.join(META_FILE);
        let meta_text = std::fs::read(&meta_path).map_err(io_err(&meta_path))?;
        let meta: TrajectoryMeta =
            serde_json::from_slice(&meta_text).map_err(|e| TrajectoryError::Format {
                path: meta_path.clone(),
                message: e.to_string(),
            })?;
        if meta.format != TRAJECTORY_FORMAT || meta.version != TRAJECTORY_VERSION {
            return Err(TrajectoryError::Format {
                path: meta_path,
                message: format!(
                    "format {:?} version {} is not {TRAJECTORY_FORMAT:?} version {TRAJECTORY_VERSION}",
                    meta.format, meta.version
                ),
            });
        }
        let steps_path = dir.join(STEPS_FILE);
        let bytes = match std::fs::read(&steps_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&steps_path)(e)),
        };
        let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        let mut steps = Vec::with_capacity(lines.len());
        let mut torn_tail = false;
        for (i, line) in lines.iter().enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<StepRecord>(line) {
                Ok(step) => steps.push(step),
                // Only the last line can be torn; anything earlier is damage.
                Err(_) if i + 1 == lines.len() || lines[i + 1..].iter().all(|l| l.is_empty()) => {
                    torn_tail = true;
                }
                Err(e) => {
                    return Err(TrajectoryError::Format {
                        path: steps_path,
                        message: format!("line {}: {e}", i + 1),
                    });
                }
            }
        }
        Ok(Trajectory {
            dir: dir.to_owned(),
            meta,
            steps,
            torn_tail,
        })
    }

    /// Where a step's frame is, if it has one.
    #[must_use]
    pub fn frame_path(&self, step: &StepRecord) -> Option<PathBuf> {
        step.frame.as_ref().map(|f| self.dir.join(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: u64) -> StepRecord {
        StepRecord {
            step,
            frame: None,
            captured_ms: 1.5,
            actor: Actor::Agent,
            instruction: None,
            thought: None,
            action: "0 0 0 ; W ; ; ; ; ;".to_owned(),
            chunks_ms: vec![Some(200.0), None, None, None, None, None],
            deadline_misses: 0,
            latency_ms: StageLatency::default(),
        }
    }

    #[test]
    fn round_trips_and_tolerates_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let meta = TrajectoryMeta::new(TrajectorySource::Agent, (4, 2), [5.0, 4.0]);
        let mut writer = TrajectoryWriter::create(dir.path(), &meta, Instant::now()).unwrap();
        let frame = RgbImage::zeroed(4, 2);
        for step in 0..3 {
            writer.write_step(&mut record(step), Some(&frame)).unwrap();
        }
        writer.finish().unwrap();
        // A crash in the middle of the fourth line.
        let mut steps = OpenOptions::new()
            .append(true)
            .open(dir.path().join(STEPS_FILE))
            .unwrap();
        steps
            .write_all(br#"{"step":3,"frame":"frames/0000"#)
            .unwrap();
        let t = Trajectory::open(dir.path()).unwrap();
        assert_eq!(t.meta, meta);
        assert_eq!(t.steps.len(), 3);
        assert!(t.torn_tail);
        assert_eq!(t.steps[2].frame.as_deref(), Some("frames/000002.jpg"));
        assert!(t.frame_path(&t.steps[2]).unwrap().is_file());
        // A second writer may not clobber it.
        assert!(TrajectoryWriter::create(dir.path(), &meta, Instant::now()).is_err());
    }

    #[test]
    fn damage_before_the_last_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let meta = TrajectoryMeta::new(TrajectorySource::Demonstration, (4, 2), [1.0, 1.0]);
        TrajectoryWriter::create(dir.path(), &meta, Instant::now()).unwrap();
        let good = serde_json::to_string(&record(1)).unwrap();
        std::fs::write(dir.path().join(STEPS_FILE), format!("garbage\n{good}\n")).unwrap();
        let err = Trajectory::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
