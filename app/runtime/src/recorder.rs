//! The recorder thread: encodes frames and appends steps off the real-time
//! path.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::events::{EventKind, EventSender};
use crate::policy::SharedFrame;
use crate::trajectory::{StepRecord, TrajectoryError, TrajectoryWriter};

/// Steps the recorder may lag behind before the agent thread waits for it
/// (JPEG encoding takes a few ms a frame; this is seconds of slack).
const RECORDER_CAPACITY: usize = 64;

enum RecorderMsg {
    Step(Box<StepRecord>, Option<SharedFrame>),
}

/// A running recorder.
pub(crate) struct Recorder {
    tx: Sender<RecorderMsg>,
    join: JoinHandle<Result<u64, TrajectoryError>>,
    start: std::time::Instant,
}

impl Recorder {
    /// Starts the `lumine-recorder` thread writing into `writer`.
    pub(crate) fn spawn(
        writer: TrajectoryWriter,
        start: std::time::Instant,
        events: EventSender,
    ) -> std::io::Result<Recorder> {
        let (tx, rx) = crossbeam_channel::bounded(RECORDER_CAPACITY);
        let join = std::thread::Builder::new()
            .name("lumine-recorder".to_owned())
            .spawn(move || record(writer, &rx, &events))?;
        Ok(Recorder { tx, join, start })
    }

    /// Milliseconds since the run started.
    pub(crate) fn ms(&self, at: std::time::Instant) -> f64 {
        at.saturating_duration_since(self.start).as_secs_f64() * 1e3
    }

    /// Queues a step (waits only if the recorder is far behind).
    pub(crate) fn write(&self, record: StepRecord, frame: Option<SharedFrame>) {
        // A failed recorder has reported why; the run goes on without it.
        let _ = self.tx.send(RecorderMsg::Step(Box::new(record), frame));
    }

    /// Writes what is queued, syncs and returns the number of steps written.
    pub(crate) fn finish(self) -> Result<u64, TrajectoryError> {
        drop(self.tx);
        self.join.join().unwrap_or_else(|_| {
            Err(TrajectoryError::Format {
                path: std::path::PathBuf::new(),
                message: "the recorder thread panicked".to_owned(),
            })
        })
    }
}

fn record(
    mut writer: TrajectoryWriter,
    rx: &Receiver<RecorderMsg>,
    events: &EventSender,
) -> Result<u64, TrajectoryError> {
    while let Ok(RecorderMsg::Step(mut record, frame)) = rx.recv() {
        if let Err(err) = writer.write_step(&mut record, frame.as_deref()) {
            events.send(EventKind::Notice(format!("recording stopped: {err}")));
            return Err(err);
        }
    }
    writer.finish()
}
