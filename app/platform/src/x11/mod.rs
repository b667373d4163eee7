//! The X11 backend (Linux): window list and focus, capture (MIT-SHM + Composite,
//! GetImage fallback), XTest injection, and an XInput2 input monitor.
//!
//! Every object owns one persistent x11rb connection: opening a connection costs
//! milliseconds, far too much for 30 injections a second. `display` arguments take
//! an X display name (`":91"`); `None` means `$DISPLAY`.

use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::cookie::Cookie;
use x11rb::errors::ReplyError;
use x11rb::protocol::ErrorKind;
use x11rb::protocol::xproto::{
    AtomEnum, ClientMessageEvent, ConfigureWindowAux, ConnectionExt as _, EventMask,
    GetGeometryReply, GetPropertyReply, GetWindowAttributesReply, InputFocus, MapState, StackMode,
    TranslateCoordinatesReply, Window,
};
use x11rb::rust_connection::RustConnection;

use crate::{PlatformError, WindowId, WindowInfo};

mod capture;
pub mod keys;
mod monitor;
mod shm;
mod sink;
mod window_list;
pub mod xvfb;

pub use capture::{CaptureMethod, X11Capture};
pub use monitor::{InjectionLog, MonitorConfig, X11Monitor};
pub use sink::XTestSink;
pub use window_list::X11Windows;

x11rb::atom_manager! {
    /// Atoms every X11 object needs, interned once per connection.
    pub(crate) Atoms: AtomsCookie {
        _NET_CLIENT_LIST,
        _NET_WM_NAME,
        _NET_WM_STATE,
        _NET_WM_STATE_HIDDEN,
        _NET_ACTIVE_WINDOW,
        _NET_SUPPORTING_WM_CHECK,
        WM_STATE,
        UTF8_STRING,
    }
}

/// An open connection with what every backend object needs from it.
pub(crate) struct Conn {
    pub conn: RustConnection,
    pub root: Window,
    pub atoms: Atoms,
    pub dpi_scale: f32,
}

impl Conn {
    /// Connects to `display` (`None`: `$DISPLAY`).
    pub fn open(display: Option<&str>) -> Result<Self, PlatformError> {
        let (conn, screen) = x11rb::connect(display).map_err(|e| {
            PlatformError::NoDisplay(format!(
                "cannot connect to X display {}: {e}",
                display.map_or_else(
                    || std::env::var("DISPLAY").unwrap_or_else(|_| "$DISPLAY (unset)".into()),
                    str::to_owned
                )
            ))
        })?;
        let root = conn.setup().roots[screen].root;
        let atoms = Atoms::new(&conn).map_err(os_err)?.reply().map_err(os_err)?;
        let dpi_scale = read_dpi_scale(&conn, root);
        Ok(Self {
            conn,
            root,
            atoms,
            dpi_scale,
        })
    }

    /// Sends the requests for one window's info without waiting (callers pipeline
    /// many windows into one round trip).
    pub fn request_info(&self, win: Window) -> Result<InfoCookies<'_>, PlatformError> {
        let c = &self.conn;
        let a = &self.atoms;
        Ok(InfoCookies {
            win,
            geometry: c.get_geometry(win).map_err(os_err)?,
            origin: c
                .translate_coordinates(win, self.root, 0, 0)
                .map_err(os_err)?,
            attrs: c.get_window_attributes(win).map_err(os_err)?,
            net_name: c
                .get_property(false, win, a._NET_WM_NAME, a.UTF8_STRING, 0, 1024)
                .map_err(os_err)?,
            wm_name: c
                .get_property(false, win, AtomEnum::WM_NAME, AtomEnum::ANY, 0, 1024)
                .map_err(os_err)?,
            state: c
                .get_property(false, win, a._NET_WM_STATE, AtomEnum::ATOM, 0, 64)
                .map_err(os_err)?,
        })
    }

    /// One window's info (one round trip).
    pub fn info(&self, win: Window) -> Result<WindowInfo, PlatformError> {
        self.request_info(win)?.finish(self)
    }

    /// Whether an EWMH window manager is running (it sets `_NET_SUPPORTING_WM_CHECK`).
    pub fn has_ewmh_wm(&self) -> bool {
        self.conn
            .get_property(
                false,
                self.root,
                self.atoms._NET_SUPPORTING_WM_CHECK,
                AtomEnum::WINDOW,
                0,
                1,
            )
            .ok()
            .and_then(|c| c.reply().ok())
            .and_then(|r| r.value32().and_then(|mut v| v.next()))
            .is_some_and(|w| w != 0)
    }

    /// The parent of `win`, or `None` for the root (or a window that is gone).
    pub fn parent(&self, win: Window) -> Option<Window> {
        let tree = self.conn.query_tree(win).ok()?.reply().ok()?;
        (tree.parent != x11rb::NONE && win != self.root).then_some(tree.parent)
    }

    /// Whether `win` is `ancestor` or lies inside it.
    pub fn is_within(&self, mut win: Window, ancestor: Window) -> bool {
        // Window trees are shallow; the bound only guards against a racing reparent.
        for _ in 0..64 {
            if win == ancestor {
                return true;
            }
            match self.parent(win) {
                Some(p) => win = p,
                None => return false,
            }
        }
        false
    }

    /// The window with keyboard focus, or `None` for none / pointer-root focus.
    pub fn focus_window(&self) -> Result<Option<Window>, PlatformError> {
        let focus = self
            .conn
            .get_input_focus()
            .map_err(os_err)?
            .reply()
            .map_err(os_err)?
            .focus;
        // 0 is None, 1 is PointerRoot: no particular window has the keyboard.
        Ok((focus > 1 && focus != self.root).then_some(focus))
    }
}

/// Replies pending for one window (see [`Conn::request_info`]).
pub(crate) struct InfoCookies<'c> {
    win: Window,
    geometry: Cookie<'c, RustConnection, GetGeometryReply>,
    origin: Cookie<'c, RustConnection, TranslateCoordinatesReply>,
    attrs: Cookie<'c, RustConnection, GetWindowAttributesReply>,
    net_name: Cookie<'c, RustConnection, GetPropertyReply>,
    wm_name: Cookie<'c, RustConnection, GetPropertyReply>,
    state: Cookie<'c, RustConnection, GetPropertyReply>,
}

impl InfoCookies<'_> {
    /// Waits for the replies and assembles the info; a vanished window is
    /// [`PlatformError::WindowGone`].
    pub fn finish(self, conn: &Conn) -> Result<WindowInfo, PlatformError> {
        self.finish_with_border(conn).map(|(info, _)| info)
    }

    /// [`Self::finish`] plus the window's border width (capture skips it).
    pub fn finish_with_border(self, conn: &Conn) -> Result<(WindowInfo, u16), PlatformError> {
        let id = WindowId(u64::from(self.win));
        let gone = |e: ReplyError| reply_err(id, e);
        let geometry = self.geometry.reply().map_err(gone)?;
        let origin = self.origin.reply().map_err(gone)?;
        let attrs = self.attrs.reply().map_err(gone)?;
        let net_name = self.net_name.reply().map_err(gone)?;
        let wm_name = self.wm_name.reply().map_err(gone)?;
        let state = self.state.reply().map_err(gone)?;
        let title = if net_name.value_len > 0 {
            String::from_utf8_lossy(&net_name.value).into_owned()
        } else if wm_name.type_ == u32::from(AtomEnum::STRING) {
            // STRING is Latin-1.
            wm_name.value.iter().map(|&b| char::from(b)).collect()
        } else {
            String::from_utf8_lossy(&wm_name.value).into_owned()
        };
        let hidden = state
            .value32()
            .is_some_and(|mut v| v.any(|a| a == conn.atoms._NET_WM_STATE_HIDDEN));
        let info = WindowInfo {
            id,
            title: title.trim_end_matches('\0').to_owned(),
            x: i32::from(origin.dst_x),
            y: i32::from(origin.dst_y),
            width: u32::from(geometry.width),
            height: u32::from(geometry.height),
            dpi_scale: conn.dpi_scale,
            minimized: attrs.map_state != MapState::VIEWABLE || hidden,
        };
        Ok((info, geometry.border_width))
    }
}

/// Physical pixels per logical pixel from the `Xft.dpi` resource (96 dpi = 1.0).
fn read_dpi_scale(conn: &RustConnection, root: Window) -> f32 {
    let db = conn
        .get_property(
            false,
            root,
            AtomEnum::RESOURCE_MANAGER,
            AtomEnum::STRING,
            0,
            1 << 16,
        )
        .ok()
        .and_then(|c| c.reply().ok());
    db.and_then(|r| parse_xft_dpi(&String::from_utf8_lossy(&r.value)))
        .map_or(1.0, |dpi| dpi / 96.0)
}

/// The `Xft.dpi` value in an X resource database string.
fn parse_xft_dpi(db: &str) -> Option<f32> {
    db.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (name.trim() == "Xft.dpi")
            .then(|| value.trim().parse::<f32>().ok())
            .flatten()
            .filter(|dpi| *dpi > 0.0)
    })
}

/// Gives `id` the keyboard focus and raises it, then waits (up to 2 s) until the
/// server reports the focus inside it.
///
/// Works without a window manager (`SetInputFocus`); with an EWMH window manager
/// it also sends `_NET_ACTIVE_WINDOW` so the manager agrees and does not take the
/// focus back.
pub fn focus_window(display: Option<&str>, id: WindowId) -> Result<(), PlatformError> {
    let conn = Conn::open(display)?;
    focus_on(&conn, id)
}

pub(crate) fn focus_on(c: &Conn, id: WindowId) -> Result<(), PlatformError> {
    let win = window_of(id)?;
    let info = c.info(win)?;
    if info.minimized {
        return Err(PlatformError::Minimized(id));
    }
    if c.has_ewmh_wm() {
        // Source indication 2: a pager / tool acting for the user, which managers honour.
        let event = ClientMessageEvent::new(
            32,
            win,
            c.atoms._NET_ACTIVE_WINDOW,
            [2, x11rb::CURRENT_TIME, 0, 0, 0],
        );
        c.conn
            .send_event(
                false,
                c.root,
                EventMask::SUBSTRUCTURE_REDIRECT | EventMask::SUBSTRUCTURE_NOTIFY,
                event,
            )
            .map_err(os_err)?;
    }
    // Raise the top-level ancestor (the manager's frame, if any), not just the client.
    let mut top = win;
    while let Some(p) = c.parent(top) {
        if p == c.root {
            break;
        }
        top = p;
    }
    c.conn
        .configure_window(top, &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE))
        .map_err(os_err)?;
    c.conn
        .set_input_focus(InputFocus::PARENT, win, x11rb::CURRENT_TIME)
        .map_err(os_err)?
        .check()
        .map_err(|e| reply_err(id, e))?;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if c.focus_window()?.is_some_and(|f| c.is_within(f, win)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(PlatformError::Os(format!(
                "focus did not move to window {id:?} (the window manager refused?)"
            )));
        }
        // A manager that processed our request late may have moved focus elsewhere.
        c.conn
            .set_input_focus(InputFocus::PARENT, win, x11rb::CURRENT_TIME)
            .map_err(os_err)?;
        c.conn.flush().map_err(os_err)?;
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The X11 window id inside a [`WindowId`].
pub(crate) fn window_of(id: WindowId) -> Result<Window, PlatformError> {
    Window::try_from(id.0).map_err(|_| PlatformError::WindowGone(id))
}

/// Any displayable error as [`PlatformError::Os`].
pub(crate) fn os_err(e: impl std::fmt::Display) -> PlatformError {
    PlatformError::Os(format!("X11: {e}"))
}

/// A reply error about `id`: BadWindow / BadDrawable mean the window is gone.
pub(crate) fn reply_err(id: WindowId, e: ReplyError) -> PlatformError {
    match &e {
        ReplyError::X11Error(x)
            if matches!(x.error_kind, ErrorKind::Window | ErrorKind::Drawable) =>
        {
            PlatformError::WindowGone(id)
        }
        ReplyError::X11Error(x) if x.error_kind == ErrorKind::Match => {
            // BadMatch on a window that exists: it is not viewable (unmapped).
            PlatformError::Minimized(id)
        }
        _ => os_err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_xft_dpi;

    #[test]
    fn xft_dpi_is_read_from_the_resource_database() {
        assert_eq!(
            parse_xft_dpi("Xft.antialias:\t1\nXft.dpi:\t144\n"),
            Some(144.0)
        );
        assert_eq!(parse_xft_dpi("Xcursor.size: 24\n"), None);
        assert_eq!(parse_xft_dpi("Xft.dpi: nonsense\n"), None);
    }
}
