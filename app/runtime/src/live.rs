//! Opening a live window on this machine's desktop: the X11 backend of
//! app/platform wired the way the runtime needs it (capture, an XTest sink
//! and an input monitor sharing one injection log, so our own injections
//! are never taken for the operator's hands).

use lumine_action::Key;
use lumine_platform::{PlatformError, WindowId, WindowInfo, WindowSystem};

use crate::frames::FrameInput;
use crate::runtime::FocusTarget;

/// Which window: a title substring, or a native id (`0x1a00007`, `27262983`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowSpec {
    /// The first window whose title contains this.
    Title(String),
    /// A native window id.
    Id(WindowId),
}

impl WindowSpec {
    /// Reads `0x…` or a decimal number as an id, anything else as a title.
    #[must_use]
    pub fn parse(text: &str) -> WindowSpec {
        let id = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .map_or_else(
                || text.parse::<u64>().ok(),
                |hex| u64::from_str_radix(hex, 16).ok(),
            );
        match id {
            Some(id) => WindowSpec::Id(WindowId(id)),
            None => WindowSpec::Title(text.to_owned()),
        }
    }

    /// Finds the window.
    ///
    /// # Errors
    /// No such window, or the window system failed.
    pub fn resolve(&self, windows: &mut dyn WindowSystem) -> Result<WindowInfo, PlatformError> {
        match self {
            WindowSpec::Title(title) => windows.find(title),
            WindowSpec::Id(id) => windows.window(*id),
        }
    }
}

/// The live parts of a run.
pub struct LiveWindow {
    /// The window as found.
    pub info: WindowInfo,
    /// Its frames.
    pub frames: FrameInput,
    /// Input into it.
    pub sink: Box<dyn lumine_platform::InputSink>,
    /// Its focus.
    pub focus: FocusTarget,
    /// Operator input (takeover, emergency stop), if monitoring is on.
    pub monitor: Option<Box<dyn lumine_platform::InputMonitor>>,
}

impl std::fmt::Debug for LiveWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveWindow")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The window system of `display` (`None`: `$DISPLAY`).
///
/// # Errors
/// No display, or not supported on this platform.
pub fn window_system(display: Option<&str>) -> Result<Box<dyn WindowSystem>, PlatformError> {
    #[cfg(target_os = "linux")]
    {
        Ok(Box::new(lumine_platform::x11::X11Windows::connect(
            display,
        )?))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = display;
        Err(PlatformError::Unsupported(
            "live windows need the X11 backend (Linux) in this build".to_owned(),
        ))
    }
}

/// Opens `spec` for an agent run: capture, sink, focus and (if
/// `emergency_key` is given) an input monitor whose hotkey is that key.
///
/// # Errors
/// The window is not there, or the display lacks an extension we need.
pub fn open(
    display: Option<&str>,
    spec: &WindowSpec,
    emergency_key: Option<Key>,
) -> Result<LiveWindow, PlatformError> {
    #[cfg(target_os = "linux")]
    {
        use lumine_platform::x11::{
            InjectionLog, MonitorConfig, X11Capture, X11Monitor, XTestSink,
        };
        let mut windows = window_system(display)?;
        let info = spec.resolve(windows.as_mut())?;
        let capture = X11Capture::new(display, info.id)?;
        let log = InjectionLog::new();
        let sink = XTestSink::connect(display, info.id)?.with_injection_log(log.clone());
        let monitor = match emergency_key {
            Some(key) => Some(Box::new(X11Monitor::start(
                display,
                MonitorConfig {
                    emergency_key: key,
                    injections: Some(log),
                    ..MonitorConfig::default()
                },
            )?) as Box<dyn lumine_platform::InputMonitor>),
            None => None,
        };
        Ok(LiveWindow {
            frames: FrameInput::Live(Box::new(capture)),
            sink: Box::new(sink),
            focus: FocusTarget {
                windows,
                target: info.id,
            },
            monitor,
            info,
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (display, spec, emergency_key);
        Err(PlatformError::Unsupported(
            "live windows need the X11 backend (Linux) in this build".to_owned(),
        ))
    }
}

/// Opens `spec` for a demonstration: capture and a monitor of all input
/// (nothing is injected).
///
/// # Errors
/// The window is not there, or the display lacks an extension we need.
pub fn open_for_recording(
    display: Option<&str>,
    spec: &WindowSpec,
    emergency_key: Key,
) -> Result<
    (
        WindowInfo,
        FrameInput,
        Box<dyn lumine_platform::InputMonitor>,
    ),
    PlatformError,
> {
    #[cfg(target_os = "linux")]
    {
        use lumine_platform::x11::{MonitorConfig, X11Capture, X11Monitor};
        let mut windows = window_system(display)?;
        let info = spec.resolve(windows.as_mut())?;
        let capture = X11Capture::new(display, info.id)?;
        let monitor = X11Monitor::start(
            display,
            MonitorConfig {
                emergency_key,
                injections: None,
                ..MonitorConfig::default()
            },
        )?;
        Ok((info, FrameInput::Live(Box::new(capture)), Box::new(monitor)))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (display, spec, emergency_key);
        Err(PlatformError::Unsupported(
            "live windows need the X11 backend (Linux) in this build".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_titles() {
        assert_eq!(
            WindowSpec::parse("0x1a00007"),
            WindowSpec::Id(WindowId(0x1a0_0007))
        );
        assert_eq!(WindowSpec::parse("42"), WindowSpec::Id(WindowId(42)));
        assert_eq!(
            WindowSpec::parse("Genshin"),
            WindowSpec::Title("Genshin".to_owned())
        );
    }
}
