//! [`X11Monitor`]: global input monitoring with XInput2 raw events, and the
//! [`InjectionLog`] that tells our own injections from the operator's hands.
//!
//! Raw events (XI 2.x, selected on the root window) reach every client that asks,
//! whatever window has focus and whatever grabs a game holds, and carry motion as
//! unaccelerated device deltas, which is what a game reading raw input sees and
//! what a demonstration should record. XTest events look exactly like any other
//! XTest client's (xdotool's, say), so the sink writes what it injects into a
//! shared [`InjectionLog`] and the monitor drops those events.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lumine_action::Key;
use x11rb::connection::{Connection, RequestConnection as _};
use x11rb::protocol::Event;
use x11rb::protocol::xinput::{
    self, ConnectionExt as _, DeviceClassData, Fp3232, RawButtonPressEvent, ValuatorMode,
    XIEventMask,
};
use x11rb::protocol::xproto::{
    ClientMessageEvent, ConnectionExt as _, CreateWindowAux, EventMask, WindowClass,
};
use x11rb::rust_connection::RustConnection;

use super::keys::{KeyMap, key_of_button};
use super::{Conn, os_err};
use crate::{InputMonitor, OperatorEvent, PlatformError};

/// How long an injected event waits in the log for the monitor to see it. Far
/// longer than delivery takes (well under a millisecond), short enough that an
/// entry whose event never came (a motion the server dropped) cannot swallow the
/// operator's input for long.
const MATCH_WINDOW: Duration = Duration::from_millis(1000);

/// An X-level event the sink injected, as the monitor will see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    KeyPress(u8),
    KeyRelease(u8),
    ButtonPress(u8),
    ButtonRelease(u8),
    Motion,
}

#[derive(Debug, Default)]
struct LogState {
    pending: VecDeque<(Instant, Injected)>,
    /// Keycodes the sink holds down: X auto-repeat of these is ours too.
    held_keycodes: HashSet<u8>,
}

/// What an [`super::XTestSink`] injected, shared with an [`X11Monitor`] so the
/// monitor reports only the operator's input. Cheap to clone (one shared log).
#[derive(Debug, Clone, Default)]
pub struct InjectionLog {
    inner: Arc<Mutex<LogState>>,
}

impl InjectionLog {
    /// An empty log.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LogState> {
        // The state stays consistent under any panic (plain inserts), so a
        // poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes events just injected (before they are flushed to the server).
    pub(crate) fn record(&self, at: Instant, events: &[Injected]) {
        if events.is_empty() {
            return;
        }
        let mut s = self.state();
        for &e in events {
            match e {
                Injected::KeyPress(k) => {
                    s.held_keycodes.insert(k);
                }
                Injected::KeyRelease(k) => {
                    s.held_keycodes.remove(&k);
                }
                _ => {}
            }
            s.pending.push_back((at, e));
        }
    }

    /// Whether `event` is one of ours: consumes the oldest matching entry.
    fn take(&self, event: Injected, now: Instant) -> bool {
        let mut s = self.state();
        while s
            .pending
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > MATCH_WINDOW)
        {
            s.pending.pop_front();
        }
        if let Some(i) = s.pending.iter().position(|(_, e)| *e == event) {
            s.pending.remove(i);
            return true;
        }
        // Auto-repeat of a key the sink holds: the server made it, not a person.
        matches!(event, Injected::KeyPress(k) | Injected::KeyRelease(k) if s.held_keycodes.contains(&k))
    }
}

/// Settings of an [`X11Monitor`].
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// The key reported as [`OperatorEvent::EmergencyStop`] (its press and
    /// release are not reported as key events).
    pub emergency_key: Key,
    /// The log our sink writes, so its injections are not reported.
    pub injections: Option<InjectionLog>,
    /// Events kept between polls; the oldest go first when it is full.
    pub queue_capacity: usize,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            emergency_key: Key::Pause,
            injections: None,
            queue_capacity: 4096,
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<VecDeque<(Instant, OperatorEvent)>>,
    stop: AtomicBool,
    failure: Mutex<Option<String>>,
}

/// Watches all keyboard and mouse input on an X display from its own named
/// thread and queues the operator's events for [`InputMonitor::poll`].
pub struct X11Monitor {
    shared: Arc<Shared>,
    conn: Arc<RustConnection>,
    wake: u32,
    thread: Option<JoinHandle<()>>,
}

impl X11Monitor {
    /// Starts monitoring `display` (`None`: `$DISPLAY`). Input made after this
    /// returns is seen.
    pub fn start(display: Option<&str>, config: MonitorConfig) -> Result<Self, PlatformError> {
        let Conn { conn, root, .. } = Conn::open(display)?;
        if conn
            .extension_information(xinput::X11_EXTENSION_NAME)
            .map_err(os_err)?
            .is_none()
        {
            return Err(PlatformError::Unsupported(
                "the X server has no XInputExtension (XI2 raw events)".into(),
            ));
        }
        let version = conn
            .xinput_xi_query_version(2, 2)
            .map_err(os_err)?
            .reply()
            .map_err(os_err)?;
        if (version.major_version, version.minor_version) < (2, 0) {
            return Err(PlatformError::Unsupported(format!(
                "XInput {}.{} has no raw events",
                version.major_version, version.minor_version
            )));
        }
        let keymap = KeyMap::load(&conn)?;
        // Slave devices only (every physical event once, with its source device).
        let mask = XIEventMask::RAW_KEY_PRESS
            | XIEventMask::RAW_KEY_RELEASE
            | XIEventMask::RAW_BUTTON_PRESS
            | XIEventMask::RAW_BUTTON_RELEASE
            | XIEventMask::RAW_MOTION;
        conn.xinput_xi_select_events(
            root,
            &[xinput::EventMask {
                deviceid: XI_ALL_DEVICES,
                mask: vec![mask],
            }],
        )
        .map_err(os_err)?
        .check()
        .map_err(os_err)?;
        // An unmapped window of our own, so Drop can wake the blocked reader.
        let wake = conn.generate_id().map_err(os_err)?;
        conn.create_window(
            0,
            wake,
            root,
            0,
            0,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new(),
        )
        .map_err(os_err)?
        .check()
        .map_err(os_err)?;
        let conn = Arc::new(conn);
        let shared = Arc::new(Shared::default());
        let mut reader = Reader {
            conn: Arc::clone(&conn),
            root,
            shared: Arc::clone(&shared),
            keymap,
            config,
            down_keys: HashSet::new(),
            down_buttons: HashSet::new(),
            absolute: HashMap::new(),
            last_abs: None,
            rest: (0.0, 0.0),
        };
        let thread = std::thread::Builder::new()
            .name("lumine-x11-monitor".into())
            .spawn(move || reader.run())
            .map_err(os_err)?;
        Ok(Self {
            shared,
            conn,
            wake,
            thread: Some(thread),
        })
    }

    /// Why the monitor stopped (the X connection broke), if it did.
    #[must_use]
    pub fn failure(&self) -> Option<String> {
        self.shared
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl InputMonitor for X11Monitor {
    fn poll(&mut self) -> Vec<(Instant, OperatorEvent)> {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect()
    }
}

impl Drop for X11Monitor {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let event = ClientMessageEvent::new(32, self.wake, 0u32, [0u32; 5]);
        let _ = self
            .conn
            .send_event(false, self.wake, EventMask::NO_EVENT, event);
        let _ = self.conn.flush();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// XIAllDevices: every device, masters and slaves.
const XI_ALL_DEVICES: u16 = 0;

/// The reader thread's state.
struct Reader {
    conn: Arc<RustConnection>,
    root: u32,
    shared: Arc<Shared>,
    keymap: KeyMap,
    config: MonitorConfig,
    down_keys: HashSet<u8>,
    down_buttons: HashSet<u32>,
    /// Source devices and whether their x/y axes are absolute (tablets, VMs).
    absolute: HashMap<u16, bool>,
    last_abs: Option<(i16, i16)>,
    /// Sub-pixel remainders of raw motion, so the reported deltas sum exactly.
    rest: (f64, f64),
}

impl Reader {
    fn run(&mut self) {
        loop {
            let event = match self.conn.wait_for_event() {
                Ok(e) => e,
                Err(e) => {
                    *self
                        .shared
                        .failure
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
                    return;
                }
            };
            if self.shared.stop.load(Ordering::SeqCst) {
                return;
            }
            let now = Instant::now();
            match event {
                // Master devices repeat their slaves' events: take each once.
                Event::XinputRawKeyPress(e) if e.deviceid == e.sourceid => {
                    self.key(e.detail, true, now);
                }
                Event::XinputRawKeyRelease(e) if e.deviceid == e.sourceid => {
                    self.key(e.detail, false, now);
                }
                Event::XinputRawButtonPress(e) if e.deviceid == e.sourceid => {
                    self.button(e.detail, true, now);
                }
                Event::XinputRawButtonRelease(e) if e.deviceid == e.sourceid => {
                    self.button(e.detail, false, now);
                }
                Event::XinputRawMotion(e) if e.deviceid == e.sourceid => self.motion(&e, now),
                Event::MappingNotify(_) => {
                    if let Ok(map) = KeyMap::load(&self.conn) {
                        self.keymap = map;
                    }
                }
                _ => {}
            }
        }
    }

    fn ours(&self, event: Injected, now: Instant) -> bool {
        self.config
            .injections
            .as_ref()
            .is_some_and(|log| log.take(event, now))
    }

    fn push(&self, now: Instant, event: OperatorEvent) {
        let mut q = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if q.len() >= self.config.queue_capacity.max(1) {
            q.pop_front();
        }
        q.push_back((now, event));
    }

    fn key(&mut self, detail: u32, press: bool, now: Instant) {
        let Ok(code) = u8::try_from(detail) else {
            return;
        };
        let injected = if press {
            Injected::KeyPress(code)
        } else {
            Injected::KeyRelease(code)
        };
        if self.ours(injected, now) {
            return;
        }
        // Auto-repeat (a press of a key already down) is not a new press.
        let fresh = if press {
            self.down_keys.insert(code)
        } else {
            self.down_keys.remove(&code)
        };
        let Some(key) = self.keymap.key(code) else {
            return; // a key outside our vocabulary
        };
        if key == self.config.emergency_key {
            if press && fresh {
                self.push(now, OperatorEvent::EmergencyStop);
            }
        } else if fresh || !press {
            self.push(
                now,
                if press {
                    OperatorEvent::Press(key)
                } else {
                    OperatorEvent::Release(key)
                },
            );
        }
    }

    fn button(&mut self, detail: u32, press: bool, now: Instant) {
        let Ok(b) = u8::try_from(detail) else {
            return;
        };
        let injected = if press {
            Injected::ButtonPress(b)
        } else {
            Injected::ButtonRelease(b)
        };
        if self.ours(injected, now) {
            return;
        }
        match detail {
            // One wheel step is a press and release of button 4 (up) or 5 (down).
            4 if press => self.push(now, OperatorEvent::Scroll(1)),
            5 if press => self.push(now, OperatorEvent::Scroll(-1)),
            _ => {
                let fresh = if press {
                    self.down_buttons.insert(detail)
                } else {
                    self.down_buttons.remove(&detail)
                };
                if let (Some(key), true) = (key_of_button(detail), fresh || !press) {
                    self.push(
                        now,
                        if press {
                            OperatorEvent::Press(key)
                        } else {
                            OperatorEvent::Release(key)
                        },
                    );
                }
            }
        }
    }

    fn motion(&mut self, e: &RawButtonPressEvent, now: Instant) {
        if self.ours(Injected::Motion, now) {
            return;
        }
        let (dx, dy) = if self.is_absolute(e.sourceid) {
            // Absolute devices report device coordinates: use pointer positions.
            let Some(p) = self
                .conn
                .query_pointer(self.root)
                .ok()
                .and_then(|c| c.reply().ok())
            else {
                return;
            };
            let pos = (p.root_x, p.root_y);
            let d = self.last_abs.map_or((0, 0), |(x, y)| {
                (
                    i32::from(pos.0) - i32::from(x),
                    i32::from(pos.1) - i32::from(y),
                )
            });
            self.last_abs = Some(pos);
            d
        } else {
            self.last_abs = None;
            let (rx, ry) = raw_xy(e);
            let (ax, ay) = (self.rest.0 + rx, self.rest.1 + ry);
            let (ix, iy) = (ax.trunc(), ay.trunc());
            self.rest = (ax - ix, ay - iy);
            (ix as i32, iy as i32)
        };
        if (dx, dy) != (0, 0) {
            self.push(now, OperatorEvent::Move { dx, dy });
        }
    }

    /// Whether the source device's x axis is absolute (asks the server once per device).
    fn is_absolute(&mut self, device: u16) -> bool {
        if let Some(&abs) = self.absolute.get(&device) {
            return abs;
        }
        let abs = self
            .conn
            .xinput_xi_query_device(device)
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some_and(|r| {
                r.infos.iter().any(|info| {
                    info.classes.iter().any(|class| {
                        matches!(&class.data, DeviceClassData::Valuator(v)
                            if v.number == 0 && v.mode == ValuatorMode::ABSOLUTE)
                    })
                })
            });
        self.absolute.insert(device, abs);
        abs
    }
}

/// The raw (unaccelerated) x and y deltas of a raw motion event.
fn raw_xy(e: &RawButtonPressEvent) -> (f64, f64) {
    let mut values = e.axisvalues_raw.iter();
    let mut out = (0.0, 0.0);
    // Values are listed for the set bits of the mask, in axis order.
    for axis in 0..(e.valuator_mask.len() * 32) {
        let set = e.valuator_mask[axis / 32] & (1 << (axis % 32)) != 0;
        if !set {
            continue;
        }
        let Some(v) = values.next() else { break };
        match axis {
            0 => out.0 = fp(*v),
            1 => out.1 = fp(*v),
            _ => break,
        }
    }
    out
}

fn fp(v: Fp3232) -> f64 {
    f64::from(v.integral) + f64::from(v.frac) / 4_294_967_296.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_matches_each_injected_event_once() {
        let log = InjectionLog::new();
        let t = Instant::now();
        log.record(t, &[Injected::KeyPress(25), Injected::Motion]);
        assert!(log.take(Injected::Motion, t));
        assert!(!log.take(Injected::Motion, t));
        assert!(log.take(Injected::KeyPress(25), t));
        // Held by the sink: repeats are ours.
        assert!(log.take(Injected::KeyPress(25), t));
        log.record(t, &[Injected::KeyRelease(25)]);
        assert!(log.take(Injected::KeyRelease(25), t));
        assert!(!log.take(Injected::KeyRelease(25), t));
        // Entries expire.
        log.record(t, &[Injected::ButtonPress(1)]);
        assert!(!log.take(Injected::ButtonPress(1), t + MATCH_WINDOW * 2));
    }
}
