//! [`X11Windows`]: the list of top-level client windows and the focus.

use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, MapState, Window};

use super::{Conn, focus_on, os_err, window_of};
use crate::{PlatformError, WindowId, WindowInfo, WindowSystem};

/// Window list, window state and focus on one X display.
pub struct X11Windows {
    c: Conn,
}

impl X11Windows {
    /// Connects to `display` (`None`: `$DISPLAY`).
    pub fn connect(display: Option<&str>) -> Result<Self, PlatformError> {
        Ok(Self {
            c: Conn::open(display)?,
        })
    }

    /// Gives `id` the keyboard focus and raises it (see [`super::focus_window`]).
    pub fn focus(&mut self, id: WindowId) -> Result<(), PlatformError> {
        focus_on(&self.c, id)
    }

    /// Whether an EWMH window manager is running on this display.
    pub fn has_window_manager(&mut self) -> bool {
        self.c.has_ewmh_wm()
    }

    /// Client windows: `_NET_CLIENT_LIST` when a manager keeps one, else the
    /// root's children (or, under a non-EWMH manager, their `WM_STATE` children).
    fn client_ids(&self) -> Result<Vec<Window>, PlatformError> {
        let c = &self.c;
        let list = c
            .conn
            .get_property(
                false,
                c.root,
                c.atoms._NET_CLIENT_LIST,
                AtomEnum::WINDOW,
                0,
                4096,
            )
            .map_err(os_err)?
            .reply()
            .map_err(os_err)?;
        if list.type_ == u32::from(AtomEnum::WINDOW)
            && let Some(ids) = list.value32()
        {
            return Ok(ids.collect());
        }
        let children = c
            .conn
            .query_tree(c.root)
            .map_err(os_err)?
            .reply()
            .map_err(os_err)?
            .children;
        // Pipeline the attribute and WM_STATE queries of all children in one round trip.
        let cookies: Vec<_> = children
            .iter()
            .map(|&w| {
                (
                    w,
                    c.conn.get_window_attributes(w),
                    c.conn
                        .get_property(false, w, c.atoms.WM_STATE, AtomEnum::ANY, 0, 0),
                )
            })
            .collect();
        let mut out = Vec::new();
        for (w, attrs, wm_state) in cookies {
            let Some(attrs) = attrs.ok().and_then(|c| c.reply().ok()) else {
                continue; // gone meanwhile
            };
            if attrs.override_redirect || attrs.map_state != MapState::VIEWABLE {
                continue; // menus, tooltips, and windows nobody can see
            }
            let managed = wm_state
                .ok()
                .and_then(|c| c.reply().ok())
                .is_some_and(|r| r.type_ != 0);
            if managed {
                out.push(w);
            } else if let Some(client) = self.find_wm_state_child(w) {
                // A non-EWMH manager's frame: the client is a WM_STATE child.
                out.push(client);
            } else {
                out.push(w); // no manager: the top-level is the client
            }
        }
        Ok(out)
    }

    /// The first child of `frame` that carries `WM_STATE` (ICCCM client window).
    fn find_wm_state_child(&self, frame: Window) -> Option<Window> {
        let c = &self.c;
        let children = c.conn.query_tree(frame).ok()?.reply().ok()?.children;
        children.into_iter().find(|&w| {
            c.conn
                .get_property(false, w, c.atoms.WM_STATE, AtomEnum::ANY, 0, 0)
                .ok()
                .and_then(|c| c.reply().ok())
                .is_some_and(|r| r.type_ != 0)
        })
    }
}

impl WindowSystem for X11Windows {
    fn windows(&mut self) -> Result<Vec<WindowInfo>, PlatformError> {
        let ids = self.client_ids()?;
        let has_wm = self.c.has_ewmh_wm();
        let cookies = ids
            .iter()
            .map(|&w| self.c.request_info(w))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(cookies.len());
        for cookie in cookies {
            match cookie.finish(&self.c) {
                // Without a manager only titled windows are candidates (the rest are
                // helper windows of toolkits); a manager's list is taken as it is.
                Ok(info) if has_wm || !info.title.is_empty() => out.push(info),
                Ok(_) | Err(PlatformError::WindowGone(_) | PlatformError::Minimized(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn window(&mut self, id: WindowId) -> Result<WindowInfo, PlatformError> {
        self.c.info(window_of(id)?)
    }

    fn focused(&mut self) -> Result<Option<WindowId>, PlatformError> {
        let Some(focus) = self.c.focus_window()? else {
            return Ok(None);
        };
        let clients = self.client_ids()?;
        // Walk up from the focus window to the client that contains it.
        let mut w = focus;
        let mut top = focus;
        for _ in 0..64 {
            if clients.contains(&w) {
                return Ok(Some(WindowId(u64::from(w))));
            }
            match self.c.parent(w) {
                Some(p) if p != self.c.root => {
                    top = p;
                    w = p;
                }
                _ => break,
            }
        }
        // Focus on a manager frame: report the client inside it if there is one.
        if let Some(client) = clients
            .iter()
            .copied()
            .find(|&cl| self.c.is_within(cl, top))
        {
            return Ok(Some(WindowId(u64::from(client))));
        }
        Ok(Some(WindowId(u64::from(top))))
    }
}
