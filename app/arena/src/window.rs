//! The arena as an ordinary top-level X11 window, played like a game.
//!
//! * Keys: `KeyPress`/`KeyRelease` on the window, mapped to action-language
//!   keys with the server's keyboard map (X auto-repeat pairs are dropped).
//! * Mouse: XInput2 raw motion (selected on the root window, as games that
//!   read relative input do), applied only while the window has the focus;
//!   the pointer's position is never used, so it may sit at a screen edge.
//! * Time: a named reader thread timestamps every event the moment it
//!   arrives; the game loop applies them in order, advancing the world to
//!   each event's time first, so movement does not depend on the frame rate.
//! * Frames: rendered at 320x180, scaled to the window, `PutImage` in bands
//!   that fit the server's request size, about 30 times a second.
//! * State: JSON lines ([`crate::world::State`], with the window id) on every
//!   discrete change, every frame while moving, and every second otherwise.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
use lumine_action::Key;
use lumine_platform::WindowId;
use lumine_platform::x11::focus_window;
use lumine_platform::x11::keys::KeyMap;
use x11rb::connection::{Connection, RequestConnection as _};
use x11rb::protocol::Event;
use x11rb::protocol::xinput::{self, ConnectionExt as _, XIEventMask};
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask, ImageFormat, PropMode,
    Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

use crate::render::{RENDER_H, RENDER_W, to_bgrx};
use crate::world::{State, TaskKind, World};

/// Where the state lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateOut {
    /// Standard output.
    Stdout,
    /// A file (created or truncated).
    File(std::path::PathBuf),
}

/// How to open the arena window.
#[derive(Debug, Clone)]
pub struct WindowOptions {
    /// X display (`None`: `$DISPLAY`).
    pub display: Option<String>,
    /// Layout seed.
    pub seed: u64,
    /// Task kind (`None`: drawn from the seed).
    pub task: Option<TaskKind>,
    /// Window size, pixels.
    pub size: (u16, u16),
    /// Window title.
    pub title: String,
    /// Where to write state lines, if anywhere.
    pub state_out: Option<StateOut>,
    /// Frames per second.
    pub fps: u32,
    /// Close after this long (`None`: until the window is closed).
    pub max_seconds: Option<f64>,
}

impl Default for WindowOptions {
    fn default() -> Self {
        WindowOptions {
            display: None,
            seed: 0,
            task: None,
            size: (640, 360),
            title: "Lumine Arena".to_owned(),
            state_out: None,
            fps: 30,
            max_seconds: None,
        }
    }
}

/// Why the window could not run.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// Talking to the X server failed.
    #[error("X11: {0}")]
    X11(String),
    /// The X server's pixel format is not one the arena draws.
    #[error("unsupported display: {0}")]
    Unsupported(String),
    /// The world could not be made.
    #[error(transparent)]
    World(#[from] crate::world::WorldError),
    /// Writing the state failed.
    #[error("state output: {0}")]
    Io(#[from] std::io::Error),
}

fn x11<E: std::fmt::Display>(e: E) -> WindowError {
    WindowError::X11(e.to_string())
}

const XI_ALL_DEVICES: u16 = 0;

/// Opens the window and plays until it is closed (or `max_seconds` pass, or
/// the X server goes away). Returns the final state.
///
/// # Errors
/// The display cannot be opened, has no 24-bit TrueColor visual with 32-bit
/// pixels, or has no XInput2; or the state cannot be written.
pub fn run(options: &WindowOptions) -> Result<State, WindowError> {
    let mut world = World::new(options.seed, options.task)?;
    let (conn, screen) = x11rb::connect(options.display.as_deref()).map_err(x11)?;
    let conn = Arc::new(conn);
    let s = conn.setup().roots[screen].clone();
    check_format(&conn, &s)?;
    let keymap = KeyMap::load(&conn).map_err(x11)?;
    conn.xinput_xi_query_version(2, 2)
        .map_err(x11)?
        .reply()
        .map_err(|e| WindowError::Unsupported(format!("no XInput2: {e}")))?;
    conn.xinput_xi_select_events(
        s.root,
        &[xinput::EventMask {
            deviceid: XI_ALL_DEVICES,
            mask: vec![XIEventMask::RAW_MOTION],
        }],
    )
    .map_err(x11)?
    .check()
    .map_err(x11)?;
    let (w, h) = options.size;
    let win = create_window(&conn, &s, &options.title, w, h)?;
    let gc = conn.generate_id().map_err(x11)?;
    conn.create_gc(gc, win, &CreateGCAux::new().graphics_exposures(0))
        .map_err(x11)?;
    conn.map_window(win).map_err(x11)?;
    conn.flush().map_err(x11)?;
    loop {
        if let Event::MapNotify(e) = conn.wait_for_event().map_err(x11)?
            && e.window == win
        {
            break;
        }
    }
    let delete = conn
        .intern_atom(false, b"WM_DELETE_WINDOW")
        .map_err(x11)?
        .reply()
        .map_err(x11)?
        .atom;
    // Take the keyboard focus, as a game does when it starts (the agent's
    // runtime only plays into the focused window).
    if let Err(e) = focus_window(options.display.as_deref(), WindowId(u64::from(win))) {
        eprintln!("lumine arena: could not take the focus: {e}");
    }
    let events = spawn_reader(Arc::clone(&conn))?;
    let mut out: Option<Box<dyn Write>> = match &options.state_out {
        None => None,
        Some(StateOut::Stdout) => Some(Box::new(std::io::stdout())),
        Some(StateOut::File(p)) => Some(Box::new(std::fs::File::create(p)?)),
    };
    let mut game = Game {
        world: &mut world,
        keymap: &keymap,
        win,
        focused: false,
        pending: std::collections::VecDeque::new(),
        closed: false,
        delete,
    };
    let start = Instant::now();
    let mut last = start;
    let tick = Duration::from_secs_f64(1.0 / f64::from(options.fps.max(1)));
    let mut next = start;
    let mut rgb = Vec::new();
    let mut bgrx = Vec::new();
    let mut last_written: Option<(State, Instant)> = None;
    let max_bytes = conn.maximum_request_bytes();
    loop {
        // Everything that arrived, in order, each at its own time.
        loop {
            match events.try_recv() {
                Ok(item) => game.pending.push_back(item),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    game.closed = true;
                    break;
                }
            }
        }
        while let Some((at, event)) = game.pending.pop_front() {
            let at = at.max(last);
            game.world.advance((at - last).as_secs_f64());
            last = at;
            game.apply(event);
        }
        let now = Instant::now();
        game.world.advance((now - last).as_secs_f64());
        last = now;
        if let Some(out) = &mut out {
            let mut state = game.world.state();
            state.window = Some(u64::from(win));
            if should_write(&state, last_written.as_ref(), now) {
                serde_json::to_writer(&mut *out, &state).map_err(std::io::Error::other)?;
                out.write_all(b"\n")?;
                out.flush()?;
                last_written = Some((state, now));
            }
        }
        if game.closed
            || options
                .max_seconds
                .is_some_and(|m| (now - start).as_secs_f64() >= m)
        {
            break;
        }
        game.world.render(&mut rgb);
        to_bgrx(
            &rgb,
            RENDER_W,
            RENDER_H,
            usize::from(w),
            usize::from(h),
            &mut bgrx,
        );
        if let Err(e) = put_frame(&conn, win, gc, s.root_depth, w, h, &bgrx, max_bytes) {
            // The window or the server went away.
            eprintln!("lumine arena: {e}");
            break;
        }
        next += tick;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now; // behind: do not try to catch up
        }
    }
    let mut state = world.state();
    state.window = Some(u64::from(win));
    let _ = conn.destroy_window(win);
    let _ = conn.flush();
    Ok(state)
}

/// Writes on a discrete change or a move, else once a second.
fn should_write(state: &State, last: Option<&(State, Instant)>, now: Instant) -> bool {
    let Some((prev, at)) = last else {
        return true;
    };
    let since = (now - *at).as_secs_f64();
    let discrete = |s: &State| {
        (
            s.crystals,
            s.key,
            s.opened_chests.clone(),
            s.opened_doors.clone(),
            s.passed_doors.clone(),
            s.talked,
            s.success,
        )
    };
    if discrete(state) != discrete(prev) {
        return true;
    }
    let moved = (state.x - prev.x).abs() > 1e-3
        || (state.y - prev.y).abs() > 1e-3
        || (state.heading_deg - prev.heading_deg).abs() > 1e-3;
    since >= 1.0 || moved
}

struct Game<'a> {
    world: &'a mut World,
    keymap: &'a KeyMap,
    win: Window,
    focused: bool,
    pending: std::collections::VecDeque<(Instant, Event)>,
    closed: bool,
    delete: u32,
}

impl Game<'_> {
    fn key(&self, code: u8) -> Option<Key> {
        self.keymap.key(code)
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::KeyPress(e) if e.event == self.win => {
                if let Some(k) = self.key(e.detail) {
                    self.world.press(k);
                }
            }
            Event::KeyRelease(e) if e.event == self.win => {
                // X auto-repeat: a release and a press of the same key at the
                // same server time. Drop both.
                if let Some((_, Event::KeyPress(next))) = self.pending.front()
                    && next.detail == e.detail
                    && next.time == e.time
                {
                    self.pending.pop_front();
                    return;
                }
                if let Some(k) = self.key(e.detail) {
                    self.world.release(k);
                }
            }
            Event::FocusIn(e) if e.event == self.win => self.focused = true,
            Event::FocusOut(e) if e.event == self.win => {
                self.focused = false;
                self.world.release_all();
            }
            Event::XinputRawMotion(e) if e.deviceid == e.sourceid && self.focused => {
                let mut values = e.axisvalues_raw.iter();
                for axis in 0..(e.valuator_mask.len() * 32).min(2) {
                    if e.valuator_mask[axis / 32] & (1 << (axis % 32)) == 0 {
                        continue;
                    }
                    let Some(v) = values.next() else { break };
                    if axis == 0 {
                        let dx = f64::from(v.integral) + f64::from(v.frac) / 4_294_967_296.0;
                        self.world.turn(dx);
                    }
                }
            }
            Event::ClientMessage(e)
                if e.window == self.win && e.data.as_data32()[0] == self.delete =>
            {
                self.closed = true;
            }
            Event::DestroyNotify(e) if e.window == self.win => self.closed = true,
            _ => {}
        }
    }
}

/// The reader thread: blocks on the connection and timestamps each event.
fn spawn_reader(conn: Arc<RustConnection>) -> Result<Receiver<(Instant, Event)>, WindowError> {
    let (tx, rx) = crossbeam_channel::bounded(8192);
    std::thread::Builder::new()
        .name("arena-events".into())
        .spawn(move || {
            while let Ok(event) = conn.wait_for_event() {
                if tx.send((Instant::now(), event)).is_err() {
                    break;
                }
            }
        })?;
    Ok(rx)
}

/// Checks that the root visual is 24-bit TrueColor stored in 32-bit pixels,
/// little-endian BGRX (what [`to_bgrx`] writes).
fn check_format(
    conn: &RustConnection,
    s: &x11rb::protocol::xproto::Screen,
) -> Result<(), WindowError> {
    let setup = conn.setup();
    let bpp = setup
        .pixmap_formats
        .iter()
        .find(|f| f.depth == s.root_depth)
        .map(|f| f.bits_per_pixel);
    let visual = s
        .allowed_depths
        .iter()
        .flat_map(|d| &d.visuals)
        .find(|v| v.visual_id == s.root_visual);
    let ok = s.root_depth == 24
        && bpp == Some(32)
        && setup.image_byte_order == x11rb::protocol::xproto::ImageOrder::LSB_FIRST
        && visual.is_some_and(|v| v.red_mask == 0xff_0000 && v.blue_mask == 0xff);
    if ok {
        Ok(())
    } else {
        Err(WindowError::Unsupported(format!(
            "depth {} with {bpp:?} bits per pixel; the arena draws 24-bit BGRX",
            s.root_depth
        )))
    }
}

fn create_window(
    conn: &RustConnection,
    s: &x11rb::protocol::xproto::Screen,
    title: &str,
    width: u16,
    height: u16,
) -> Result<Window, WindowError> {
    let win = conn.generate_id().map_err(x11)?;
    conn.create_window(
        s.root_depth,
        win,
        s.root,
        0,
        0,
        width,
        height,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new()
            .background_pixel(s.black_pixel)
            .event_mask(
                EventMask::KEY_PRESS
                    | EventMask::KEY_RELEASE
                    | EventMask::FOCUS_CHANGE
                    | EventMask::STRUCTURE_NOTIFY
                    | EventMask::EXPOSURE,
            ),
    )
    .map_err(x11)?;
    conn.change_property8(
        PropMode::REPLACE,
        win,
        AtomEnum::WM_NAME,
        AtomEnum::STRING,
        title.as_bytes(),
    )
    .map_err(x11)?;
    let atom = |name: &[u8]| -> Result<u32, WindowError> {
        Ok(conn
            .intern_atom(false, name)
            .map_err(x11)?
            .reply()
            .map_err(x11)?
            .atom)
    };
    let utf8 = atom(b"UTF8_STRING")?;
    conn.change_property8(
        PropMode::REPLACE,
        win,
        atom(b"_NET_WM_NAME")?,
        utf8,
        title.as_bytes(),
    )
    .map_err(x11)?;
    conn.change_property8(
        PropMode::REPLACE,
        win,
        AtomEnum::WM_CLASS,
        AtomEnum::STRING,
        b"lumine-arena\0Lumine-arena\0",
    )
    .map_err(x11)?;
    conn.change_property32(
        PropMode::REPLACE,
        win,
        atom(b"_NET_WM_PID")?,
        AtomEnum::CARDINAL,
        &[std::process::id()],
    )
    .map_err(x11)?;
    conn.change_property32(
        PropMode::REPLACE,
        win,
        atom(b"WM_PROTOCOLS")?,
        AtomEnum::ATOM,
        &[atom(b"WM_DELETE_WINDOW")?],
    )
    .map_err(x11)?;
    Ok(win)
}

/// Puts the frame in horizontal bands that each fit one request.
#[allow(clippy::too_many_arguments)]
fn put_frame(
    conn: &RustConnection,
    win: Window,
    gc: u32,
    depth: u8,
    w: u16,
    h: u16,
    bgrx: &[u8],
    max_bytes: usize,
) -> Result<(), WindowError> {
    let row = usize::from(w) * 4;
    let rows = ((max_bytes.saturating_sub(64)) / row).clamp(1, usize::from(h));
    let mut y = 0usize;
    while y < usize::from(h) {
        let n = rows.min(usize::from(h) - y);
        conn.put_image(
            ImageFormat::Z_PIXMAP,
            win,
            gc,
            w,
            n as u16,
            0,
            y as i16,
            0,
            depth,
            &bgrx[y * row..(y + n) * row],
        )
        .map_err(x11)?;
        y += n;
    }
    conn.flush().map_err(x11)
}
