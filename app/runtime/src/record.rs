//! Human demonstrations: the operator plays, we record the window and their
//! input as a trajectory in the model's own action language (the format of
//! agent runs, every step by [`Actor::Operator`]).
//!
//! Every 200 ms a frame is captured; the operator's input during the 200 ms
//! that follow is quantised ([`Quantizer`]) into that step's action, a
//! little after the step ends so late-delivered events still count.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lumine_action::{CHUNKS_PER_ACTION, Key, KeyVocabulary};
use lumine_platform::{InputMonitor, OperatorEvent};

use crate::clock::{STEP, STEP_NS};
use crate::events::{Actor, StageLatency};
use crate::frames::{FrameInput, scale_frame};
use crate::policy::SharedFrame;
use crate::quantize::Quantizer;
use crate::trajectory::{StepRecord, TrajectoryError, TrajectoryWriter};

/// How long after a step's end its events are quantised.
const MARGIN: Duration = Duration::from_millis(40);

/// How often the input monitor is polled.
const POLL: Duration = Duration::from_millis(4);

/// Settings of a demonstration recording.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// The model's key names.
    pub vocab: KeyVocabulary,
    /// Pixels per action unit (the model's mouse scale).
    pub mouse_scale: (f32, f32),
    /// Frames are scaled to this size; `None` keeps them.
    pub frame_size: Option<(u32, u32)>,
    /// Stop after this long (else at the stop flag or the emergency key).
    pub duration: Option<Duration>,
    /// The instruction the operator follows, recorded with each step.
    pub instruction: Option<String>,
}

/// What a recording did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoSummary {
    /// Steps written.
    pub steps: u64,
    /// Steps written without a frame (the capture failed).
    pub missing_frames: u64,
    /// Keys pressed that the action language cannot write (no name in the
    /// vocabulary, or a fifth key in a chunk).
    pub dropped_keys: Vec<Key>,
}

/// Records until `stop` is set, the emergency key is pressed, or the
/// duration ends; calls `on_step` after each step is written.
///
/// # Errors
/// Writing the trajectory failed (what was written stays readable).
pub fn record_demonstration(
    frames: &mut FrameInput,
    monitor: &mut dyn InputMonitor,
    mut writer: TrajectoryWriter,
    config: &DemoConfig,
    stop: &Arc<AtomicBool>,
    on_step: &mut dyn FnMut(&StepRecord),
) -> Result<DemoSummary, TrajectoryError> {
    let start = Instant::now();
    let mut quantizer = Quantizer::new(start, &config.vocab, config.mouse_scale);
    let mut summary = DemoSummary::default();
    // Frames waiting for their step's input: (step, captured at, frame).
    let mut waiting: VecDeque<(u64, Instant, Option<SharedFrame>)> = VecDeque::new();
    let mut next_capture = start;
    let mut step = 0u64;
    let end = config.duration.map(|d| start + d);
    let mut stopping = false;
    loop {
        for (at, event) in monitor.poll() {
            if event == OperatorEvent::EmergencyStop {
                stopping = true;
            } else {
                quantizer.push(at, event);
            }
        }
        if stop.load(Ordering::SeqCst) {
            stopping = true;
        }
        let now = Instant::now();
        let past_end = end.is_some_and(|e| next_capture >= e);
        if !stopping && !past_end && now >= next_capture {
            let frame = match frames.next_frame() {
                Ok(image) => Some(Arc::new(scale_frame(image, config.frame_size))),
                Err(_) => None,
            };
            waiting.push_back((step, next_capture, frame));
            step += 1;
            next_capture += STEP;
        }
        if now >= quantizer.step_end() + MARGIN || (stopping && !waiting.is_empty()) {
            let quantized = quantizer.finish_step();
            for key in quantized.dropped {
                if !summary.dropped_keys.contains(&key) {
                    summary.dropped_keys.push(key);
                }
            }
            if let Some((index, captured_at, frame)) = waiting.pop_front() {
                let ms = |t: Instant| t.saturating_duration_since(start).as_secs_f64() * 1e3;
                let chunk_ns = STEP_NS / CHUNKS_PER_ACTION as u64;
                let mut record = StepRecord {
                    step: index,
                    frame: None,
                    captured_ms: ms(captured_at),
                    actor: Actor::Operator,
                    instruction: config.instruction.clone(),
                    thought: None,
                    action: quantized.action.format(&config.vocab),
                    // Where each chunk of the operator's input began.
                    chunks_ms: (0..CHUNKS_PER_ACTION as u64)
                        .map(|k| Some(ms(quantized.start + Duration::from_nanos(k * chunk_ns))))
                        .collect(),
                    deadline_misses: 0,
                    latency_ms: StageLatency::default(),
                };
                if frame.is_none() {
                    summary.missing_frames += 1;
                }
                writer.write_step(&mut record, frame.as_deref())?;
                summary.steps += 1;
                on_step(&record);
            }
        }
        if (stopping || end.is_some_and(|e| now >= e + MARGIN)) && waiting.is_empty() {
            break;
        }
        std::thread::sleep(POLL);
    }
    writer.finish()?;
    Ok(summary)
}
