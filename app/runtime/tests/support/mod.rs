//! Fakes for the runtime's behaviour tests: frames, focus, operator input and
//! policies that misbehave on purpose.

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lumine_action::{Key, KeyVocabulary, StreamEvent, Turn};
use lumine_platform::fake::FakeSink;
use lumine_platform::{
    Frame, FrameSource, InputMonitor, InputOp, OperatorEvent, PlatformError, WindowId, WindowInfo,
    WindowSystem,
};
use lumine_runtime::policy::{Observation, Policy, PolicyError, ScriptPolicy, TextTurn};
use lumine_runtime::{
    Event, EventKind, FrameInput, RunSummary, Runtime, RuntimeConfig, RuntimeParts,
};

pub fn info(id: u64) -> WindowInfo {
    WindowInfo {
        id: WindowId(id),
        title: "game".to_owned(),
        x: 0,
        y: 0,
        width: 32,
        height: 18,
        dpi_scale: 1.0,
        minimized: false,
    }
}

/// A still 32x18 frame; `gone` makes captures fail like a closed window.
#[derive(Clone, Default)]
pub struct StillFrames {
    pub gone: Arc<AtomicBool>,
}

impl FrameSource for StillFrames {
    fn capture(&mut self) -> Result<Frame, PlatformError> {
        if self.gone.load(Ordering::SeqCst) {
            return Err(PlatformError::WindowGone(WindowId(1)));
        }
        Ok(Frame {
            width: 32,
            height: 18,
            rgb: vec![90; 32 * 18 * 3],
            captured_at: Instant::now(),
            window: info(1),
        })
    }
}

/// Focus is on window 1 (the target) unless `elsewhere` is set.
#[derive(Clone, Default)]
pub struct FakeWindows {
    pub elsewhere: Arc<AtomicBool>,
}

impl WindowSystem for FakeWindows {
    fn windows(&mut self) -> Result<Vec<WindowInfo>, PlatformError> {
        Ok(vec![info(1), info(2)])
    }
    fn window(&mut self, id: WindowId) -> Result<WindowInfo, PlatformError> {
        Ok(info(id.0))
    }
    fn focused(&mut self) -> Result<Option<WindowId>, PlatformError> {
        Ok(Some(WindowId(if self.elsewhere.load(Ordering::SeqCst) {
            2
        } else {
            1
        })))
    }
}

/// Operator input the test pushes.
#[derive(Clone, Default)]
pub struct FakeMonitor {
    pub queue: Arc<Mutex<VecDeque<(Instant, OperatorEvent)>>>,
}

impl FakeMonitor {
    pub fn send(&self, event: OperatorEvent) {
        self.queue
            .lock()
            .unwrap()
            .push_back((Instant::now(), event));
    }
}

impl InputMonitor for FakeMonitor {
    fn poll(&mut self) -> Vec<(Instant, OperatorEvent)> {
        self.queue.lock().unwrap().drain(..).collect()
    }
}

/// Wraps a policy; panics, stalls or breaks at chosen steps.
pub struct Faulty {
    pub inner: Box<dyn Policy>,
    pub calls: u64,
    pub panic_at: Option<u64>,
    pub sleep_at: Option<(u64, Duration)>,
    /// Streams this text (through the real parser) at this call.
    pub text_at: Option<(u64, String)>,
}

impl Faulty {
    pub fn new(inner: Box<dyn Policy>) -> Self {
        Self {
            inner,
            calls: 0,
            panic_at: None,
            sleep_at: None,
            text_at: None,
        }
    }
}

impl Policy for Faulty {
    fn describe(&self) -> String {
        "faulty".to_owned()
    }

    fn next_turn(
        &mut self,
        observation: &Observation<'_>,
        out: &mut dyn FnMut(StreamEvent),
    ) -> Result<Turn, PolicyError> {
        let call = self.calls;
        self.calls += 1;
        if self.panic_at == Some(call) {
            panic!("policy bug at call {call}");
        }
        if let Some((at, pause)) = self.sleep_at
            && at == call
        {
            std::thread::sleep(pause);
        }
        if let Some((at, text)) = &self.text_at
            && *at == call
        {
            let mut turn = TextTurn::new(&KeyVocabulary::default());
            for piece in text.split_inclusive(' ') {
                turn.push(piece, out)?;
            }
            return turn.finish(out);
        }
        self.inner.next_turn(observation, out)
    }
}

pub fn script(text: &str) -> Box<dyn Policy> {
    Box::new(ScriptPolicy::parse("test", text, &KeyVocabulary::default()).unwrap())
}

pub fn config() -> RuntimeConfig {
    let mut config = RuntimeConfig::new(KeyVocabulary::default());
    config.first_step_lead = Duration::from_millis(60);
    config.history_frames = 4;
    config
}

pub struct Harness {
    pub sink: FakeSink,
    pub windows: FakeWindows,
    pub monitor: FakeMonitor,
    pub frames: StillFrames,
}

impl Harness {
    pub fn new() -> Self {
        Self {
            sink: FakeSink::default(),
            windows: FakeWindows::default(),
            monitor: FakeMonitor::default(),
            frames: StillFrames::default(),
        }
    }

    pub fn start(&self, policy: Box<dyn Policy>, config: RuntimeConfig) -> Runtime {
        Runtime::start(
            RuntimeParts {
                frames: FrameInput::Live(Box::new(self.frames.clone())),
                sink: Box::new(self.sink.clone()),
                focus: Some(lumine_runtime::FocusTarget {
                    windows: Box::new(self.windows.clone()),
                    target: WindowId(1),
                }),
                monitor: Some(Box::new(self.monitor.clone())),
                policy,
                record: None,
            },
            config,
        )
        .unwrap()
    }

    /// The key ops injected so far (motion and scroll left out).
    pub fn key_ops(&self) -> Vec<InputOp> {
        self.sink
            .log
            .lock()
            .unwrap()
            .ops
            .iter()
            .map(|(_, op)| *op)
            .filter(|op| matches!(op, InputOp::Press(_) | InputOp::Release(_)))
            .collect()
    }

    pub fn held(&self) -> Vec<Key> {
        self.sink.log.lock().unwrap().down.iter().copied().collect()
    }

    pub fn set_unfocused(&self, unfocused: bool) {
        self.sink.log.lock().unwrap().unfocused = unfocused;
        self.windows.elsewhere.store(unfocused, Ordering::SeqCst);
    }
}

/// Runs to the end, collecting every event.
pub fn run_to_end(runtime: Runtime) -> (RunSummary, Vec<Event>) {
    let events = runtime.events().clone();
    let collector = std::thread::Builder::new()
        .name("test-events".to_owned())
        .spawn(move || events.iter().collect::<Vec<Event>>())
        .unwrap();
    let summary = runtime.wait();
    (summary, collector.join().unwrap())
}

/// Events until `pred` holds (or the timeout), collected.
pub fn events_until(
    runtime: &Runtime,
    timeout: Duration,
    mut pred: impl FnMut(&Event) -> bool,
) -> Vec<Event> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while let Ok(event) = runtime.events().recv_deadline(deadline) {
        let done = pred(&event);
        seen.push(event);
        if done {
            return seen;
        }
    }
    panic!("timed out; saw {seen:#?}");
}

pub fn is_state(event: &Event, f: impl Fn(&lumine_runtime::RunState) -> bool) -> bool {
    matches!(&event.kind, EventKind::State(s) if f(s))
}
