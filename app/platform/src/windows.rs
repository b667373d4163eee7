//! The Win32 backend: window list and focus (`EnumWindows`,
//! `GetForegroundWindow`), capture (Windows.Graphics.Capture through
//! `windows-capture`, frames into a latest-wins slot), input (`SendInput`:
//! scan-code keys, relative mouse motion) and an input monitor (low-level
//! keyboard and mouse hooks).
//!
//! Compiled and clippy-checked for `x86_64-pc-windows-gnu`; it has not been run
//! (the project's machines have no Windows). See the crate README.
//!
//! Every Win32 call is `unsafe` in the `windows` crate, hence the module-wide
//! allowance; each call passes plain values or pointers to locals that outlive it.
#![allow(unsafe_code)] // Win32 FFI: EnumWindows, SendInput, hooks, DWM queries

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lumine_action::Key;
use windows::Win32::Foundation::{HWND, LPARAM, LRESULT, POINT, RECT, WPARAM};
use windows::Win32::Graphics::Dwm::{
    DWMWA_CLOAKED, DWMWA_EXTENDED_FRAME_BOUNDS, DwmGetWindowAttribute,
};
use windows::Win32::Graphics::Gdi::ClientToScreen;
use windows::Win32::System::Threading::GetCurrentThreadId;
use windows::Win32::UI::HiDpi::{
    DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2, GetDpiForWindow, SetProcessDpiAwarenessContext,
};
use windows::Win32::UI::Input::KeyboardAndMouse::{
    INPUT, INPUT_0, INPUT_KEYBOARD, INPUT_MOUSE, KEYBD_EVENT_FLAGS, KEYBDINPUT,
    KEYEVENTF_EXTENDEDKEY, KEYEVENTF_KEYUP, KEYEVENTF_SCANCODE, MOUSE_EVENT_FLAGS,
    MOUSEEVENTF_LEFTDOWN, MOUSEEVENTF_LEFTUP, MOUSEEVENTF_MIDDLEDOWN, MOUSEEVENTF_MIDDLEUP,
    MOUSEEVENTF_MOVE, MOUSEEVENTF_RIGHTDOWN, MOUSEEVENTF_RIGHTUP, MOUSEEVENTF_WHEEL,
    MOUSEEVENTF_XDOWN, MOUSEEVENTF_XUP, MOUSEINPUT, SendInput, VIRTUAL_KEY, VK_PAUSE, VK_SNAPSHOT,
};
use windows::Win32::UI::WindowsAndMessaging::{
    BringWindowToTop, CallNextHookEx, DispatchMessageW, EnumWindows, GA_ROOT, GW_OWNER,
    GWL_EXSTYLE, GetAncestor, GetClientRect, GetForegroundWindow, GetMessageW, GetWindow,
    GetWindowLongW, GetWindowTextLengthW, GetWindowTextW, IsIconic, IsWindow, IsWindowVisible,
    KBDLLHOOKSTRUCT, LLKHF_EXTENDED, MSG, MSLLHOOKSTRUCT, PostThreadMessageW, SW_RESTORE,
    SetForegroundWindow, SetWindowsHookExW, ShowWindow, TranslateMessage, UnhookWindowsHookEx,
    WH_KEYBOARD_LL, WH_MOUSE_LL, WM_KEYDOWN, WM_KEYUP, WM_LBUTTONDOWN, WM_LBUTTONUP,
    WM_MBUTTONDOWN, WM_MBUTTONUP, WM_MOUSEMOVE, WM_MOUSEWHEEL, WM_QUIT, WM_RBUTTONDOWN,
    WM_RBUTTONUP, WM_SYSKEYDOWN, WM_SYSKEYUP, WM_XBUTTONDOWN, WM_XBUTTONUP, WS_EX_TOOLWINDOW,
};
use windows_capture::capture::{CaptureControl, Context, GraphicsCaptureApiHandler};
use windows_capture::frame::Frame as WgcFrame;
use windows_capture::graphics_capture_api::InternalCaptureControl;
use windows_capture::settings::{
    ColorFormat, CursorCaptureSettings, DirtyRegionSettings, DrawBorderSettings,
    MinimumUpdateIntervalSettings, SecondaryWindowSettings, Settings,
};
use windows_capture::window::Window as WgcWindow;

use crate::motion::{MAX_MOTION_STEP_PX, motion_steps};
use crate::{
    Frame, FrameSource, InjectOutcome, InputMonitor, InputOp, InputSink, OperatorEvent,
    PlatformError, WindowId, WindowInfo, WindowSystem,
};

/// `dwExtraInfo` on every event our sink sends, so the monitor can tell our
/// injections from other injected input (remote desktop, macro tools) and from
/// hardware. ("LUMI" in ASCII.)
const INJECTION_TAG: usize = 0x4c55_4d49;

fn hwnd(id: WindowId) -> HWND {
    HWND(id.0 as usize as *mut c_void)
}

fn id_of(h: HWND) -> WindowId {
    WindowId(h.0 as usize as u64)
}

fn os_err(e: impl std::fmt::Display) -> PlatformError {
    PlatformError::Os(format!("Win32: {e}"))
}

/// Makes this process per-monitor DPI aware (v2), so window geometry and
/// captured frames are in physical pixels. Call once at startup, before any
/// window exists; an application manifest can do the same.
pub fn set_dpi_aware() -> Result<(), PlatformError> {
    unsafe { SetProcessDpiAwarenessContext(DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2) }
        .map_err(os_err)
}

fn window_title(h: HWND) -> String {
    let len = unsafe { GetWindowTextLengthW(h) };
    let mut buf = vec![0u16; usize::try_from(len).unwrap_or(0) + 1];
    let n = unsafe { GetWindowTextW(h, &mut buf) };
    String::from_utf16_lossy(&buf[..usize::try_from(n).unwrap_or(0)])
}

/// The client area's screen position and size.
fn client_rect(h: HWND) -> Result<(i32, i32, u32, u32), PlatformError> {
    let mut r = RECT::default();
    unsafe { GetClientRect(h, &mut r) }.map_err(os_err)?;
    let mut origin = POINT { x: 0, y: 0 };
    if !unsafe { ClientToScreen(h, &mut origin) }.as_bool() {
        return Err(os_err("ClientToScreen failed"));
    }
    let w = u32::try_from(r.right - r.left).unwrap_or(0);
    let h = u32::try_from(r.bottom - r.top).unwrap_or(0);
    Ok((origin.x, origin.y, w, h))
}

fn info(h: HWND) -> Result<WindowInfo, PlatformError> {
    if !unsafe { IsWindow(Some(h)) }.as_bool() {
        return Err(PlatformError::WindowGone(id_of(h)));
    }
    let (x, y, width, height) = client_rect(h)?;
    let dpi = unsafe { GetDpiForWindow(h) };
    Ok(WindowInfo {
        id: id_of(h),
        title: window_title(h),
        x,
        y,
        width,
        height,
        dpi_scale: if dpi == 0 { 1.0 } else { dpi as f32 / 96.0 },
        minimized: unsafe { IsIconic(h) }.as_bool() || !unsafe { IsWindowVisible(h) }.as_bool(),
    })
}

/// Whether an Alt-Tab-able application window: visible, titled, unowned, not a
/// tool window, not cloaked (hidden UWP frames and windows on other desktops).
fn is_candidate(h: HWND) -> bool {
    if !unsafe { IsWindowVisible(h) }.as_bool() || window_title(h).is_empty() {
        return false;
    }
    if unsafe { GetWindow(h, GW_OWNER) }.is_ok_and(|o| !o.is_invalid()) {
        return false;
    }
    let ex = unsafe { GetWindowLongW(h, GWL_EXSTYLE) } as u32;
    if ex & WS_EX_TOOLWINDOW.0 != 0 {
        return false;
    }
    let mut cloaked = 0u32;
    let got = unsafe {
        DwmGetWindowAttribute(
            h,
            DWMWA_CLOAKED,
            (&raw mut cloaked).cast(),
            size_of::<u32>() as u32,
        )
    };
    got.is_err() || cloaked == 0
}

unsafe extern "system" fn collect_window(h: HWND, out: LPARAM) -> windows::core::BOOL {
    // SAFETY: `out` is the &mut Vec passed to EnumWindows below, alive for the call.
    let list = unsafe { &mut *(out.0 as *mut Vec<usize>) };
    list.push(h.0 as usize);
    true.into()
}

/// Top-level windows and the foreground window.
#[derive(Debug, Default)]
pub struct Win32Windows;

impl Win32Windows {
    /// The window system of this desktop session.
    #[must_use]
    pub fn new() -> Self {
        Self
    }
}

impl WindowSystem for Win32Windows {
    fn windows(&mut self) -> Result<Vec<WindowInfo>, PlatformError> {
        let mut raw: Vec<usize> = Vec::new();
        unsafe { EnumWindows(Some(collect_window), LPARAM((&raw mut raw) as isize)) }
            .map_err(os_err)?;
        Ok(raw
            .into_iter()
            .map(|h| HWND(h as *mut c_void))
            .filter(|&h| is_candidate(h))
            .filter_map(|h| info(h).ok())
            .collect())
    }

    fn window(&mut self, id: WindowId) -> Result<WindowInfo, PlatformError> {
        info(hwnd(id))
    }

    fn focused(&mut self) -> Result<Option<WindowId>, PlatformError> {
        let fg = unsafe { GetForegroundWindow() };
        if fg.is_invalid() {
            return Ok(None);
        }
        Ok(Some(id_of(unsafe { GetAncestor(fg, GA_ROOT) })))
    }
}

/// Brings `id` to the foreground (restoring it if minimised) and checks that
/// Windows agreed: its focus-stealing rules may refuse a process that is not in
/// the foreground itself, and then the operator has to click the game once.
pub fn focus_window(id: WindowId) -> Result<(), PlatformError> {
    let h = hwnd(id);
    if !unsafe { IsWindow(Some(h)) }.as_bool() {
        return Err(PlatformError::WindowGone(id));
    }
    unsafe {
        if IsIconic(h).as_bool() {
            let _ = ShowWindow(h, SW_RESTORE);
        }
        let _ = SetForegroundWindow(h);
        let _ = BringWindowToTop(h);
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if target_is_foreground(h) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(PlatformError::Os(format!(
        "Windows did not bring window {id:?} to the foreground (click it once)"
    )))
}

fn target_is_foreground(target: HWND) -> bool {
    let fg = unsafe { GetForegroundWindow() };
    !fg.is_invalid() && unsafe { GetAncestor(fg, GA_ROOT) == GetAncestor(target, GA_ROOT) }
}

// ---------------------------------------------------------------- capture

/// The newest frame the capture thread delivered.
struct RawFrame {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    at: Instant,
}

/// Latest-wins slot between the capture thread and [`WgcCapture::capture`].
#[derive(Default)]
struct Slot {
    latest: Mutex<Option<Arc<RawFrame>>>,
    arrived: Condvar,
    closed: AtomicBool,
}

/// The frame handler `windows-capture` runs on its own thread.
struct Handler {
    slot: Arc<Slot>,
    hwnd: usize,
}

type HandlerError = Box<dyn std::error::Error + Send + Sync>;

impl GraphicsCaptureApiHandler for Handler {
    type Flags = (Arc<Slot>, usize);
    type Error = HandlerError;

    fn new(ctx: Context<Self::Flags>) -> Result<Self, Self::Error> {
        Ok(Self {
            slot: ctx.flags.0,
            hwnd: ctx.flags.1,
        })
    }

    fn on_frame_arrived(
        &mut self,
        frame: &mut WgcFrame<'_>,
        _control: InternalCaptureControl,
    ) -> Result<(), Self::Error> {
        let at = Instant::now();
        let h = HWND(self.hwnd as *mut c_void);
        // The frame is the whole window (frame bounds); keep the client area.
        let (fw, fh) = (frame.width(), frame.height());
        let crop = client_crop(h, fw, fh);
        let buffer = match crop {
            Some((x0, y0, x1, y1)) => frame.buffer_crop(x0, y0, x1, y1)?,
            None => frame.buffer()?,
        };
        let (w, hgt) = (buffer.width(), buffer.height());
        let mut scratch = Vec::new();
        let rgba = buffer.as_nopadding_buffer(&mut scratch);
        let mut rgb = vec![0u8; (w * hgt * 3) as usize];
        for (s, d) in rgba.chunks_exact(4).zip(rgb.chunks_exact_mut(3)) {
            d.copy_from_slice(&s[..3]);
        }
        *self
            .slot
            .latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(RawFrame {
            width: w,
            height: hgt,
            rgb,
            at,
        }));
        self.slot.arrived.notify_all();
        Ok(())
    }

    fn on_closed(&mut self) -> Result<(), Self::Error> {
        self.slot.closed.store(true, Ordering::SeqCst);
        self.slot.arrived.notify_all();
        Ok(())
    }
}

/// The client area inside a captured `fw` x `fh` window frame, as a crop box.
fn client_crop(h: HWND, fw: u32, fh: u32) -> Option<(u32, u32, u32, u32)> {
    let mut bounds = RECT::default();
    unsafe {
        DwmGetWindowAttribute(
            h,
            DWMWA_EXTENDED_FRAME_BOUNDS,
            (&raw mut bounds).cast(),
            size_of::<RECT>() as u32,
        )
    }
    .ok()?;
    let (cx, cy, cw, ch) = client_rect(h).ok()?;
    let x0 = u32::try_from(cx - bounds.left).ok()?.min(fw);
    let y0 = u32::try_from(cy - bounds.top).ok()?.min(fh);
    let (x1, y1) = ((x0 + cw).min(fw), (y0 + ch).min(fh));
    (x1 > x0 && y1 > y0).then_some((x0, y0, x1, y1))
}

/// Frames of one window through Windows.Graphics.Capture.
pub struct WgcCapture {
    control: Option<CaptureControl<Handler, HandlerError>>,
    slot: Arc<Slot>,
    id: WindowId,
}

impl WgcCapture {
    /// Starts capturing `id` (the capture runs on its own thread and keeps only
    /// the newest frame).
    pub fn new(id: WindowId) -> Result<Self, PlatformError> {
        let h = hwnd(id);
        if !unsafe { IsWindow(Some(h)) }.as_bool() {
            return Err(PlatformError::WindowGone(id));
        }
        let slot = Arc::new(Slot::default());
        let settings = Settings::new(
            WgcWindow::from_raw_hwnd(h.0),
            CursorCaptureSettings::WithoutCursor,
            DrawBorderSettings::WithoutBorder,
            SecondaryWindowSettings::Default,
            MinimumUpdateIntervalSettings::Default,
            DirtyRegionSettings::Default,
            ColorFormat::Rgba8,
            (Arc::clone(&slot), h.0 as usize),
        );
        let control = Handler::start_free_threaded(settings).map_err(os_err)?;
        Ok(Self {
            control: Some(control),
            slot,
            id,
        })
    }

    /// Captures and scales to `width` x `height` (see [`Frame::resized`]).
    pub fn capture_scaled(&mut self, width: u32, height: u32) -> Result<Frame, PlatformError> {
        Ok(self.capture()?.resized(width, height))
    }
}

impl FrameSource for WgcCapture {
    fn capture(&mut self) -> Result<Frame, PlatformError> {
        let h = hwnd(self.id);
        if self.slot.closed.load(Ordering::SeqCst) || !unsafe { IsWindow(Some(h)) }.as_bool() {
            return Err(PlatformError::WindowGone(self.id));
        }
        let window = info(h)?;
        if window.minimized {
            return Err(PlatformError::Minimized(self.id));
        }
        // Windows sends frames only when the window changes: the newest one is
        // current. Wait only for the very first.
        let guard = self
            .slot
            .latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .slot
            .arrived
            .wait_timeout_while(guard, Duration::from_secs(1), |f| {
                f.is_none() && !self.slot.closed.load(Ordering::SeqCst)
            })
            .unwrap_or_else(PoisonError::into_inner);
        let raw = guard
            .clone()
            .ok_or_else(|| os_err("no frame from Windows.Graphics.Capture within 1 s"))?;
        drop(guard);
        Ok(Frame {
            width: raw.width,
            height: raw.height,
            rgb: raw.rgb.clone(),
            captured_at: raw.at,
            window,
        })
    }
}

impl Drop for WgcCapture {
    fn drop(&mut self) {
        if let Some(c) = self.control.take() {
            let _ = c.stop();
        }
    }
}

// ---------------------------------------------------------------- input

/// How a key is sent: a set-1 scan code (physical key, layout independent),
/// with the E0 prefix flag for extended keys, or a virtual key for the two keys
/// whose scan sequences SendInput cannot express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyCode {
    Scan(u16, bool),
    Virtual(VIRTUAL_KEY),
}

fn key_code(key: Key) -> Option<KeyCode> {
    use Key::*;
    let scan = |c: u16| Some(KeyCode::Scan(c, false));
    let ext = |c: u16| Some(KeyCode::Scan(c, true));
    match key {
        Escape => scan(0x01),
        Digit1 | Digit2 | Digit3 | Digit4 | Digit5 | Digit6 | Digit7 | Digit8 | Digit9 => {
            scan(0x02 + (key.index() - Digit1.index()) as u16)
        }
        Digit0 => scan(0x0B),
        Minus => scan(0x0C),
        Equal => scan(0x0D),
        Backspace => scan(0x0E),
        Tab => scan(0x0F),
        Q => scan(0x10),
        W => scan(0x11),
        E => scan(0x12),
        R => scan(0x13),
        T => scan(0x14),
        Y => scan(0x15),
        U => scan(0x16),
        I => scan(0x17),
        O => scan(0x18),
        P => scan(0x19),
        BracketLeft => scan(0x1A),
        BracketRight => scan(0x1B),
        Enter => scan(0x1C),
        Ctrl => scan(0x1D),
        A => scan(0x1E),
        S => scan(0x1F),
        D => scan(0x20),
        F => scan(0x21),
        G => scan(0x22),
        H => scan(0x23),
        J => scan(0x24),
        K => scan(0x25),
        L => scan(0x26),
        Semicolon => scan(0x27),
        Quote => scan(0x28),
        Backquote => scan(0x29),
        Shift => scan(0x2A),
        Backslash => scan(0x2B),
        Z => scan(0x2C),
        X => scan(0x2D),
        C => scan(0x2E),
        V => scan(0x2F),
        B => scan(0x30),
        N => scan(0x31),
        M => scan(0x32),
        Comma => scan(0x33),
        Period => scan(0x34),
        Slash => scan(0x35),
        Alt => scan(0x38),
        Space => scan(0x39),
        CapsLock => scan(0x3A),
        F1 | F2 | F3 | F4 | F5 | F6 | F7 | F8 | F9 | F10 => {
            scan(0x3B + (key.index() - F1.index()) as u16)
        }
        F11 => scan(0x57),
        F12 => scan(0x58),
        Home => ext(0x47),
        Up => ext(0x48),
        PageUp => ext(0x49),
        Left => ext(0x4B),
        Right => ext(0x4D),
        End => ext(0x4F),
        Down => ext(0x50),
        PageDown => ext(0x51),
        Insert => ext(0x52),
        Delete => ext(0x53),
        Super => ext(0x5B),
        Pause => Some(KeyCode::Virtual(VK_PAUSE)),
        PrintScreen => Some(KeyCode::Virtual(VK_SNAPSHOT)),
        MouseLeft | MouseRight | MouseMiddle | MouseX1 | MouseX2 => None,
    }
}

fn keyboard(code: KeyCode, up: bool) -> INPUT {
    let up_flag = if up {
        KEYEVENTF_KEYUP
    } else {
        KEYBD_EVENT_FLAGS(0)
    };
    let ki = match code {
        KeyCode::Scan(scan, extended) => KEYBDINPUT {
            wVk: VIRTUAL_KEY(0),
            wScan: scan,
            dwFlags: KEYEVENTF_SCANCODE
                | up_flag
                | if extended {
                    KEYEVENTF_EXTENDEDKEY
                } else {
                    KEYBD_EVENT_FLAGS(0)
                },
            time: 0,
            dwExtraInfo: INJECTION_TAG,
        },
        KeyCode::Virtual(vk) => KEYBDINPUT {
            wVk: vk,
            wScan: 0,
            dwFlags: up_flag,
            time: 0,
            dwExtraInfo: INJECTION_TAG,
        },
    };
    INPUT {
        r#type: INPUT_KEYBOARD,
        Anonymous: INPUT_0 { ki },
    }
}

fn mouse(flags: MOUSE_EVENT_FLAGS, dx: i32, dy: i32, data: u32) -> INPUT {
    INPUT {
        r#type: INPUT_MOUSE,
        Anonymous: INPUT_0 {
            mi: MOUSEINPUT {
                dx,
                dy,
                mouseData: data,
                dwFlags: flags,
                time: 0,
                dwExtraInfo: INJECTION_TAG,
            },
        },
    }
}

/// The SendInput event for pressing or releasing a mouse-button key.
fn button_input(key: Key, up: bool) -> Option<INPUT> {
    let (down_flag, up_flag, data) = match key {
        Key::MouseLeft => (MOUSEEVENTF_LEFTDOWN, MOUSEEVENTF_LEFTUP, 0),
        Key::MouseRight => (MOUSEEVENTF_RIGHTDOWN, MOUSEEVENTF_RIGHTUP, 0),
        Key::MouseMiddle => (MOUSEEVENTF_MIDDLEDOWN, MOUSEEVENTF_MIDDLEUP, 0),
        Key::MouseX1 => (MOUSEEVENTF_XDOWN, MOUSEEVENTF_XUP, 1),
        Key::MouseX2 => (MOUSEEVENTF_XDOWN, MOUSEEVENTF_XUP, 2),
        _ => return None,
    };
    Some(mouse(if up { up_flag } else { down_flag }, 0, 0, data))
}

fn input_for(key: Key, up: bool) -> Result<INPUT, PlatformError> {
    if let Some(i) = button_input(key, up) {
        return Ok(i);
    }
    key_code(key)
        .map(|c| keyboard(c, up))
        .ok_or_else(|| PlatformError::Unsupported(format!("no scan code for {key}")))
}

/// Plays input into one window with `SendInput`, one call per batch, only
/// while that window is in the foreground.
pub struct SendInputSink {
    target: usize,
    held: std::collections::BTreeSet<Key>,
}

impl SendInputSink {
    /// A sink for window `id`.
    pub fn new(id: WindowId) -> Result<Self, PlatformError> {
        if !unsafe { IsWindow(Some(hwnd(id))) }.as_bool() {
            return Err(PlatformError::WindowGone(id));
        }
        Ok(Self {
            target: id.0 as usize,
            held: std::collections::BTreeSet::new(),
        })
    }

    fn send(inputs: &[INPUT]) -> Result<(), PlatformError> {
        if inputs.is_empty() {
            return Ok(());
        }
        let sent = unsafe { SendInput(inputs, size_of::<INPUT>() as i32) };
        if sent as usize == inputs.len() {
            Ok(())
        } else {
            Err(PlatformError::Os(format!(
                "SendInput inserted {sent} of {} events (UIPI blocks input to a game running as administrator)",
                inputs.len()
            )))
        }
    }
}

impl InputSink for SendInputSink {
    fn inject(&mut self, ops: &[InputOp]) -> Result<InjectOutcome, PlatformError> {
        if !target_is_foreground(HWND(self.target as *mut c_void)) {
            return Ok(InjectOutcome::Refused);
        }
        let mut inputs = Vec::with_capacity(ops.len() * 2);
        let mut held = self.held.clone();
        for &op in ops {
            match op {
                InputOp::Press(k) => {
                    if held.insert(k) {
                        inputs.push(input_for(k, false)?);
                    }
                }
                InputOp::Release(k) => {
                    if held.remove(&k) {
                        inputs.push(input_for(k, true)?);
                    }
                }
                InputOp::MoveRelative { dx, dy } => {
                    // No MOUSEEVENTF_ABSOLUTE: relative motion, which raw input
                    // (what games read) reports as it is.
                    for (sx, sy) in motion_steps(dx, dy, MAX_MOTION_STEP_PX) {
                        inputs.push(mouse(MOUSEEVENTF_MOVE, sx.into(), sy.into(), 0));
                    }
                }
                InputOp::Scroll(steps) => {
                    // WHEEL_DELTA (120) per step, positive away from the user (up).
                    for _ in 0..steps.unsigned_abs() {
                        let delta: i32 = if steps > 0 { 120 } else { -120 };
                        inputs.push(mouse(MOUSEEVENTF_WHEEL, 0, 0, delta as u32));
                    }
                }
            }
        }
        match Self::send(&inputs) {
            Ok(()) => {
                self.held = held;
                Ok(InjectOutcome::Injected)
            }
            Err(e) => {
                // Part of the batch may have gone through: release all it could hold.
                self.held = held.union(&self.held).copied().collect();
                let _ = self.release_all();
                Err(e)
            }
        }
    }

    fn release_all(&mut self) -> Result<(), PlatformError> {
        let inputs = self
            .held
            .iter()
            .map(|&k| input_for(k, true))
            .collect::<Result<Vec<_>, _>>()?;
        Self::send(&inputs)?;
        self.held.clear();
        Ok(())
    }

    fn held(&self) -> Vec<Key> {
        self.held.iter().copied().collect()
    }
}

impl Drop for SendInputSink {
    fn drop(&mut self) {
        let _ = self.release_all();
    }
}

// ---------------------------------------------------------------- monitor

/// The hook thread's state; hook procedures have no user pointer, and run on
/// the thread that installed them, so it lives in a thread-local.
struct HookState {
    shared: Arc<MonitorShared>,
    emergency_key: Key,
    capacity: usize,
    last_pt: Option<POINT>,
    down: HashSet<Key>,
}

thread_local! {
    static HOOK: RefCell<Option<HookState>> = const { RefCell::new(None) };
}

#[derive(Default)]
struct MonitorShared {
    queue: Mutex<VecDeque<(Instant, OperatorEvent)>>,
}

impl HookState {
    fn push(&self, event: OperatorEvent) {
        let mut q = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if q.len() >= self.capacity.max(1) {
            q.pop_front();
        }
        q.push_back((Instant::now(), event));
    }

    fn key(&mut self, key: Key, press: bool) {
        let fresh = if press {
            self.down.insert(key)
        } else {
            self.down.remove(&key)
        };
        if key == self.emergency_key {
            if press && fresh {
                self.push(OperatorEvent::EmergencyStop);
            }
        } else if press && fresh {
            self.push(OperatorEvent::Press(key));
        } else if !press {
            self.push(OperatorEvent::Release(key));
        }
    }
}

/// The key a low-level keyboard event stands for.
fn key_from_hook(info: &KBDLLHOOKSTRUCT) -> Option<Key> {
    let vk = VIRTUAL_KEY(info.vkCode as u16);
    if vk == VK_PAUSE {
        return Some(Key::Pause);
    }
    if vk == VK_SNAPSHOT {
        return Some(Key::PrintScreen);
    }
    let extended = info.flags.contains(LLKHF_EXTENDED);
    let scan = info.scanCode as u16;
    Key::ALL.iter().copied().find(|&k| match key_code(k) {
        // Right-hand Ctrl/Alt are the extended forms of the left ones.
        Some(KeyCode::Scan(s, e)) => {
            s == scan && (e == extended || matches!(k, Key::Ctrl | Key::Alt))
        }
        _ => false,
    })
}

unsafe extern "system" fn keyboard_hook(code: i32, wparam: WPARAM, lparam: LPARAM) -> LRESULT {
    if code >= 0 {
        // SAFETY: for WH_KEYBOARD_LL, lparam points to a KBDLLHOOKSTRUCT for this call.
        let info = unsafe { &*(lparam.0 as *const KBDLLHOOKSTRUCT) };
        if info.dwExtraInfo != INJECTION_TAG {
            let msg = wparam.0 as u32;
            let press = msg == WM_KEYDOWN || msg == WM_SYSKEYDOWN;
            let release = msg == WM_KEYUP || msg == WM_SYSKEYUP;
            if let (Some(key), true) = (key_from_hook(info), press || release) {
                HOOK.with_borrow_mut(|s| {
                    if let Some(s) = s.as_mut() {
                        s.key(key, press);
                    }
                });
            }
        }
    }
    unsafe { CallNextHookEx(None, code, wparam, lparam) }
}

unsafe extern "system" fn mouse_hook(code: i32, wparam: WPARAM, lparam: LPARAM) -> LRESULT {
    if code >= 0 {
        // SAFETY: for WH_MOUSE_LL, lparam points to a MSLLHOOKSTRUCT for this call.
        let info = unsafe { &*(lparam.0 as *const MSLLHOOKSTRUCT) };
        let ours = info.dwExtraInfo == INJECTION_TAG;
        let msg = wparam.0 as u32;
        HOOK.with_borrow_mut(|s| {
            let Some(s) = s.as_mut() else { return };
            if msg == WM_MOUSEMOVE {
                // Our own moves still update the position the next delta starts from.
                let prev = s.last_pt.replace(info.pt);
                if let (Some(p), false) = (prev, ours) {
                    let (dx, dy) = (info.pt.x - p.x, info.pt.y - p.y);
                    if (dx, dy) != (0, 0) {
                        s.push(OperatorEvent::Move { dx, dy });
                    }
                }
                return;
            }
            if ours {
                return;
            }
            let xbutton = if (info.mouseData >> 16) == 1 {
                Key::MouseX1
            } else {
                Key::MouseX2
            };
            match msg {
                WM_LBUTTONDOWN => s.key(Key::MouseLeft, true),
                WM_LBUTTONUP => s.key(Key::MouseLeft, false),
                WM_RBUTTONDOWN => s.key(Key::MouseRight, true),
                WM_RBUTTONUP => s.key(Key::MouseRight, false),
                WM_MBUTTONDOWN => s.key(Key::MouseMiddle, true),
                WM_MBUTTONUP => s.key(Key::MouseMiddle, false),
                WM_XBUTTONDOWN => s.key(xbutton, true),
                WM_XBUTTONUP => s.key(xbutton, false),
                WM_MOUSEWHEEL => {
                    let delta = i32::from((info.mouseData >> 16) as u16 as i16);
                    if delta != 0 {
                        s.push(OperatorEvent::Scroll(delta / 120));
                    }
                }
                _ => {}
            }
        });
    }
    unsafe { CallNextHookEx(None, code, wparam, lparam) }
}

/// Global input monitoring with low-level keyboard and mouse hooks on a named
/// thread. Our own [`SendInputSink`] events carry a tag and are not reported;
/// everything else (hardware, other injecting tools) is the operator.
pub struct Win32Monitor {
    shared: Arc<MonitorShared>,
    thread_id: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
}

impl Win32Monitor {
    /// Starts the hooks; `emergency_key` is reported as [`OperatorEvent::EmergencyStop`].
    pub fn start(emergency_key: Key) -> Result<Self, PlatformError> {
        let shared = Arc::new(MonitorShared::default());
        let thread_id = Arc::new(AtomicU32::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), String>>(1);
        let state = HookState {
            shared: Arc::clone(&shared),
            emergency_key,
            capacity: 4096,
            last_pt: None,
            down: HashSet::new(),
        };
        let tid = Arc::clone(&thread_id);
        let thread = std::thread::Builder::new()
            .name("lumine-win32-monitor".into())
            .spawn(move || {
                tid.store(unsafe { GetCurrentThreadId() }, Ordering::SeqCst);
                HOOK.with_borrow_mut(|s| *s = Some(state));
                let hooks = unsafe {
                    (
                        SetWindowsHookExW(WH_KEYBOARD_LL, Some(keyboard_hook), None, 0),
                        SetWindowsHookExW(WH_MOUSE_LL, Some(mouse_hook), None, 0),
                    )
                };
                let (kb, ms) = match hooks {
                    (Ok(kb), Ok(ms)) => (kb, ms),
                    (kb, ms) => {
                        let _ = ready_tx.send(Err(format!("SetWindowsHookExW: {kb:?} {ms:?}")));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                // Hooks are called from this thread's message loop.
                let mut msg = MSG::default();
                while unsafe { GetMessageW(&mut msg, None, 0, 0) }.as_bool() {
                    unsafe {
                        let _ = TranslateMessage(&msg);
                        DispatchMessageW(&msg);
                    }
                }
                unsafe {
                    let _ = UnhookWindowsHookEx(kb);
                    let _ = UnhookWindowsHookEx(ms);
                }
            })
            .map_err(os_err)?;
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(Self {
                shared,
                thread_id,
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(os_err(e)),
            Err(_) => Err(os_err("the hook thread did not start")),
        }
    }
}

impl InputMonitor for Win32Monitor {
    fn poll(&mut self) -> Vec<(Instant, OperatorEvent)> {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect()
    }
}

impl Drop for Win32Monitor {
    fn drop(&mut self) {
        let tid = self.thread_id.load(Ordering::SeqCst);
        let _ = unsafe { PostThreadMessageW(tid, WM_QUIT, WPARAM(0), LPARAM(0)) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
