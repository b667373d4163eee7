//! The operating system side of the agent: which windows exist, what a window
//! shows, and how input reaches it.
//!
//! The runtime talks only to the traits here ([`WindowSystem`], [`FrameSource`],
//! [`InputSink`], [`InputMonitor`]); each OS backend implements them behind `cfg`
//! (X11 on Linux, Win32 on Windows), and [`fake`] implements them in memory for
//! unit tests of the runtime's logic. End-to-end tests use the real X11 backend
//! under Xvfb.

use std::time::Instant;

use lumine_action::Key;

pub mod fake;
pub mod motion;
pub mod scale;
#[cfg(windows)]
pub mod windows;
#[cfg(target_os = "linux")]
pub mod x11;

/// A native window identifier (an X11 window id, a Win32 `HWND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowId(pub u64);

/// A top-level window the agent could play.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowInfo {
    /// Native id.
    pub id: WindowId,
    /// Title as the window manager shows it.
    pub title: String,
    /// Position of the client area on the screen, physical pixels.
    pub x: i32,
    /// Position of the client area on the screen, physical pixels.
    pub y: i32,
    /// Client-area width, physical pixels.
    pub width: u32,
    /// Client-area height, physical pixels.
    pub height: u32,
    /// Physical pixels per logical pixel (1.0 without DPI scaling).
    pub dpi_scale: f32,
    /// Whether the window is minimised or unmapped (nothing to capture).
    pub minimized: bool,
}

/// A captured frame: packed RGB8, row-major, with the window geometry at capture.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub rgb: Vec<u8>,
    /// When the pixels were read (monotonic).
    pub captured_at: Instant,
    /// The window as it was when captured.
    pub window: WindowInfo,
}

impl Frame {
    /// The frame scaled to `width` x `height` (e.g. the model's 1280x720) with
    /// [`scale::resize_rgb`]; the window geometry is kept as captured.
    #[must_use]
    pub fn resized(&self, width: u32, height: u32) -> Frame {
        Frame {
            width,
            height,
            rgb: scale::resize_rgb(&self.rgb, self.width, self.height, width, height),
            captured_at: self.captured_at,
            window: self.window.clone(),
        }
    }
}

/// Errors from the OS side. Each says what the operator can do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlatformError {
    /// No display or desktop session to talk to.
    #[error("no display: {0}")]
    NoDisplay(String),
    /// The target window does not exist (any more).
    #[error("window {0:?} not found (closed?)")]
    WindowGone(WindowId),
    /// No window matches the requested title.
    #[error("no window title contains {0:?}")]
    NoSuchWindow(String),
    /// The window is minimised or unmapped: nothing to capture, nothing to play.
    #[error("window {0:?} is minimised")]
    Minimized(WindowId),
    /// The OS refused or failed an operation.
    #[error("{0}")]
    Os(String),
    /// The backend cannot do this on this platform or build.
    #[error("not supported here: {0}")]
    Unsupported(String),
}

/// Enumerating and focusing windows.
pub trait WindowSystem: Send {
    /// Top-level windows that could be played, in stacking or creation order.
    fn windows(&mut self) -> Result<Vec<WindowInfo>, PlatformError>;
    /// The current geometry and state of one window.
    fn window(&mut self, id: WindowId) -> Result<WindowInfo, PlatformError>;
    /// The window that has keyboard focus now, if any.
    fn focused(&mut self) -> Result<Option<WindowId>, PlatformError>;
    /// The first window whose title contains `needle`.
    fn find(&mut self, needle: &str) -> Result<WindowInfo, PlatformError> {
        self.windows()?
            .into_iter()
            .find(|w| w.title.contains(needle))
            .ok_or_else(|| PlatformError::NoSuchWindow(needle.to_owned()))
    }
}

/// Reads frames of one window.
pub trait FrameSource: Send {
    /// Captures the current contents of the target.
    fn capture(&mut self) -> Result<Frame, PlatformError>;
}

/// A low-level input operation, as injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputOp {
    /// Press a key or mouse button.
    Press(Key),
    /// Release a key or mouse button.
    Release(Key),
    /// Relative mouse motion in pixels (never an absolute warp: games ignore those).
    MoveRelative {
        /// Pixels right.
        dx: i32,
        /// Pixels down.
        dy: i32,
    },
    /// Wheel steps, positive up.
    Scroll(i32),
}

/// Plays input into the target window.
///
/// Implementations inject only while their target has focus and report
/// [`InjectOutcome::Refused`] otherwise; they never hold keys across a
/// [`InputSink::release_all`].
pub trait InputSink: Send {
    /// Injects `ops` in order as one batch (one flush / one `SendInput` call).
    fn inject(&mut self, ops: &[InputOp]) -> Result<InjectOutcome, PlatformError>;
    /// Releases every key and button this sink has pressed and not released.
    /// Must work even after errors; called on every stop path.
    fn release_all(&mut self) -> Result<(), PlatformError>;
    /// Keys and buttons this sink believes are down.
    fn held(&self) -> Vec<Key>;
}

/// What happened to a batch of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectOutcome {
    /// Delivered.
    Injected,
    /// Not delivered: the target window does not have focus.
    Refused,
}

/// An input event that did not come from our own injection: the operator's hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorEvent {
    /// A key or button went down.
    Press(Key),
    /// A key or button went up.
    Release(Key),
    /// The pointer moved, pixels.
    Move {
        /// Pixels right.
        dx: i32,
        /// Pixels down.
        dy: i32,
    },
    /// Wheel steps, positive up.
    Scroll(i32),
    /// The emergency-stop hotkey.
    EmergencyStop,
}

/// Global input monitoring (takeover detection, human demonstrations, the hotkey).
pub trait InputMonitor: Send {
    /// Events since the last call, oldest first, each with its monotonic time.
    fn poll(&mut self) -> Vec<(Instant, OperatorEvent)>;
}
