//! [`XTestSink`]: input for one window through XTest, one persistent connection,
//! one flush per batch.

use std::collections::BTreeSet;
use std::time::Instant;

use lumine_action::Key;
use x11rb::connection::{Connection, RequestConnection as _};
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    BUTTON_PRESS_EVENT, BUTTON_RELEASE_EVENT, ConnectionExt as _, KEY_PRESS_EVENT,
    KEY_RELEASE_EVENT, MOTION_NOTIFY_EVENT, Window,
};
use x11rb::protocol::xtest::{self, ConnectionExt as _};

use super::keys::{KeyMap, button};
use super::monitor::{Injected, InjectionLog};
use super::{Conn, os_err, window_of};
use crate::motion::{MAX_MOTION_STEP_PX, motion_steps};
use crate::{InjectOutcome, InputOp, InputSink, PlatformError, WindowId};

/// Plays input into one target window with XTest.
///
/// Every batch first checks that the keyboard focus is in the target (one round
/// trip, which also collects X errors from the previous batch); when it is not,
/// nothing is sent and the batch is [`InjectOutcome::Refused`].
pub struct XTestSink {
    c: Conn,
    display: Option<String>,
    target: Window,
    id: WindowId,
    keymap: KeyMap,
    held: BTreeSet<Key>,
    log: Option<InjectionLog>,
}

impl XTestSink {
    /// A sink for window `id` on `display` (`None`: `$DISPLAY`).
    pub fn connect(display: Option<&str>, id: WindowId) -> Result<Self, PlatformError> {
        let c = Conn::open(display)?;
        if c.conn
            .extension_information(xtest::X11_EXTENSION_NAME)
            .map_err(os_err)?
            .is_none()
        {
            return Err(PlatformError::Unsupported(
                "the X server has no XTEST extension".into(),
            ));
        }
        let keymap = KeyMap::load(&c.conn)?;
        Ok(Self {
            c,
            display: display.map(str::to_owned),
            target: window_of(id)?,
            id,
            keymap,
            held: BTreeSet::new(),
            log: None,
        })
    }

    /// Tells `log` about every event this sink injects, so an [`super::X11Monitor`]
    /// sharing it does not mistake them for the operator's.
    #[must_use]
    pub fn with_injection_log(mut self, log: InjectionLog) -> Self {
        self.log = Some(log);
        self
    }

    /// The window this sink plays into.
    #[must_use]
    pub fn target(&self) -> WindowId {
        self.id
    }

    /// Whether the keyboard focus is in the target: the focus window is the
    /// target or inside it, or (pointer-root focus) the pointer is over it.
    fn target_has_focus(&self) -> Result<bool, PlatformError> {
        let c = &self.c;
        let focus = c
            .conn
            .get_input_focus()
            .map_err(os_err)?
            .reply()
            .map_err(os_err)?
            .focus;
        match focus {
            0 => Ok(false),
            1 => {
                // PointerRoot: keys go to whatever is under the pointer.
                let p = c
                    .conn
                    .query_pointer(self.target)
                    .map_err(os_err)?
                    .reply()
                    .map_err(os_err)?;
                let under = c
                    .conn
                    .query_pointer(c.root)
                    .map_err(os_err)?
                    .reply()
                    .map_err(os_err)?
                    .child;
                let g = c
                    .conn
                    .get_geometry(self.target)
                    .map_err(os_err)?
                    .reply()
                    .map_err(os_err)?;
                let inside = p.same_screen
                    && (0..i32::from(g.width)).contains(&i32::from(p.win_x))
                    && (0..i32::from(g.height)).contains(&i32::from(p.win_y));
                Ok(inside && under != 0 && c.is_within(self.target, under))
            }
            f => Ok(c.is_within(f, self.target)),
        }
    }

    /// X errors that arrived for earlier requests (the sink selects no events, so
    /// anything queued is an error), or a broken connection.
    fn pending_error(&self) -> Option<String> {
        loop {
            match self.c.conn.poll_for_event() {
                Ok(None) => return None,
                Ok(Some(Event::Error(e))) => return Some(format!("X error {e:?}")),
                Ok(Some(_)) => {}
                Err(e) => return Some(e.to_string()),
            }
        }
    }

    /// Sends one XTest event (queued; the caller flushes).
    fn fake(&self, type_: u8, detail: u8, dx: i16, dy: i16) -> Result<(), PlatformError> {
        self.c
            .conn
            .xtest_fake_input(type_, detail, x11rb::CURRENT_TIME, self.c.root, dx, dy, 0)
            .map_err(os_err)?;
        Ok(())
    }

    /// The press or release of `key` as (XTest event, detail, what the monitor sees).
    fn event_for(&self, key: Key, press: bool) -> Result<(u8, u8, Injected), PlatformError> {
        if let Some(b) = button(key) {
            return Ok(if press {
                (BUTTON_PRESS_EVENT, b, Injected::ButtonPress(b))
            } else {
                (BUTTON_RELEASE_EVENT, b, Injected::ButtonRelease(b))
            });
        }
        let code = self.keymap.keycode(key).ok_or_else(|| {
            PlatformError::Unsupported(format!("the X keyboard map has no key for {key}"))
        })?;
        Ok(if press {
            (KEY_PRESS_EVENT, code, Injected::KeyPress(code))
        } else {
            (KEY_RELEASE_EVENT, code, Injected::KeyRelease(code))
        })
    }

    /// Queues the batch; returns what the monitor will see.
    fn send_batch(&mut self, ops: &[InputOp]) -> Result<Vec<Injected>, PlatformError> {
        let mut sent = Vec::with_capacity(ops.len() * 2);
        for &op in ops {
            match op {
                InputOp::Press(k) => {
                    // Hold semantics: a key already down is not pressed again.
                    if self.held.contains(&k) {
                        continue;
                    }
                    let (t, d, inj) = self.event_for(k, true)?;
                    self.fake(t, d, 0, 0)?;
                    self.held.insert(k);
                    sent.push(inj);
                }
                InputOp::Release(k) => {
                    // Never release what we did not press: the operator may hold it.
                    if !self.held.contains(&k) {
                        continue;
                    }
                    let (t, d, inj) = self.event_for(k, false)?;
                    self.fake(t, d, 0, 0)?;
                    self.held.remove(&k);
                    sent.push(inj);
                }
                InputOp::MoveRelative { dx, dy } => {
                    for (sx, sy) in motion_steps(dx, dy, MAX_MOTION_STEP_PX) {
                        // detail 1: relative motion (never a warp, which games ignore).
                        self.fake(MOTION_NOTIFY_EVENT, 1, sx, sy)?;
                        sent.push(Injected::Motion);
                    }
                }
                InputOp::Scroll(steps) => {
                    // Wheel steps are clicks of buttons 4 (up) and 5 (down).
                    let b = if steps > 0 { 4 } else { 5 };
                    for _ in 0..steps.unsigned_abs() {
                        self.fake(BUTTON_PRESS_EVENT, b, 0, 0)?;
                        self.fake(BUTTON_RELEASE_EVENT, b, 0, 0)?;
                        sent.push(Injected::ButtonPress(b));
                        sent.push(Injected::ButtonRelease(b));
                    }
                }
            }
        }
        Ok(sent)
    }

    /// After a connection or protocol error: release everything on a fresh
    /// connection (the old one may be dead) and continue with that connection.
    fn recover(&mut self, why: &str) -> PlatformError {
        let result = Conn::open(self.display.as_deref()).and_then(|fresh| {
            let old = std::mem::replace(&mut self.c, fresh);
            drop(old);
            self.keymap = KeyMap::load(&self.c.conn)?;
            self.release_held()
        });
        match result {
            Ok(()) => os_err(format!("{why}; released all keys and reconnected")),
            Err(e) => os_err(format!("{why}; releasing keys also failed: {e}")),
        }
    }

    /// Releases every held key and button on the current connection, one flush.
    fn release_held(&mut self) -> Result<(), PlatformError> {
        let mut sent = Vec::new();
        for &k in &self.held {
            let (t, d, inj) = self.event_for(k, false)?;
            self.fake(t, d, 0, 0)?;
            sent.push(inj);
        }
        self.note(&sent);
        // A round trip, so the releases have been processed when we return: the
        // caller may be about to exit, or another client may look at the keyboard.
        self.c
            .conn
            .get_input_focus()
            .map_err(os_err)?
            .reply()
            .map_err(os_err)?;
        self.held.clear();
        Ok(())
    }

    fn note(&self, sent: &[Injected]) {
        if let Some(log) = &self.log {
            log.record(Instant::now(), sent);
        }
    }
}

impl InputSink for XTestSink {
    fn inject(&mut self, ops: &[InputOp]) -> Result<InjectOutcome, PlatformError> {
        // Refuse the whole batch before sending anything if a key is unknown.
        for op in ops {
            if let InputOp::Press(k) | InputOp::Release(k) = *op {
                self.event_for(k, true)?;
            }
        }
        let focused = match self.target_has_focus() {
            Ok(f) => f,
            Err(e) => return Err(self.recover(&e.to_string())),
        };
        if let Some(err) = self.pending_error() {
            return Err(self.recover(&err));
        }
        if !focused {
            return Ok(InjectOutcome::Refused);
        }
        let sent = match self.send_batch(ops) {
            Ok(sent) => sent,
            Err(e) => return Err(self.recover(&e.to_string())),
        };
        // Log before the flush so the monitor can never see an event before its entry.
        self.note(&sent);
        if let Err(e) = self.c.conn.flush() {
            return Err(self.recover(&e.to_string()));
        }
        Ok(InjectOutcome::Injected)
    }

    fn release_all(&mut self) -> Result<(), PlatformError> {
        if self.held.is_empty() {
            return Ok(());
        }
        match self.release_held() {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = self.recover(&e.to_string());
                if self.held.is_empty() {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    fn held(&self) -> Vec<Key> {
        self.held.iter().copied().collect()
    }
}

impl Drop for XTestSink {
    fn drop(&mut self) {
        let _ = self.release_all();
    }
}
