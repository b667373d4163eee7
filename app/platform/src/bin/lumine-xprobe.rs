//! `lumine-xprobe`: a stand-in for the game in X11 tests.
//!
//! ```text
//! lumine-xprobe [--display :N] [--title T] [--width W] [--height H] [--log FILE]
//! lumine-xprobe --bench
//! ```
//!
//! Opens a window with the given title and size, painted in four known colour
//! quadrants (top-left red, top-right green, bottom-left blue, bottom-right
//! white) so capture tests can check pixels, and writes one line per input
//! event, each starting with CLOCK_MONOTONIC in microseconds:
//!
//! ```text
//! 123456 ready 0x200001
//! 123789 press W            key press (Key name, or `keycode N`)
//! 123800 release W
//! 124000 button 1 press     button 4/5 are wheel steps
//! 124100 raw 12 -3          XInput2 raw motion deltas (unaccelerated, unclamped)
//! 124101 motion 640 360     core pointer position in the window
//! 124200 focus in
//! ```
//!
//! Raw motion is what games that read relative mouse input see; it is selected
//! on the root window, so it is logged whatever window has focus.
//!
//! `--bench` starts its own Xvfb, opens a 1280x720 probe window and times one
//! capture (MIT-SHM vs GetImage, with and without Composite) and one inject batch.

#[cfg(target_os = "linux")]
fn main() {
    if let Err(e) = linux::main() {
        eprintln!("lumine-xprobe: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("lumine-xprobe: X11 only (Linux)");
    std::process::exit(2);
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::Write;
    use std::time::{Duration, Instant};

    use lumine_action::Key;
    use lumine_platform::x11::keys::KeyMap;
    use lumine_platform::x11::xvfb::Xvfb;
    use lumine_platform::x11::{X11Capture, XTestSink, focus_window};
    use lumine_platform::{FrameSource, InputOp, InputSink, WindowId};
    use x11rb::connection::Connection;
    use x11rb::protocol::Event;
    use x11rb::protocol::xinput::{self, ConnectionExt as _, XIEventMask};
    use x11rb::protocol::xproto::{
        AtomEnum, ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask, PropMode, Rectangle,
        Window, WindowClass,
    };
    use x11rb::rust_connection::RustConnection;
    use x11rb::wrapper::ConnectionExt as _;

    type Error = Box<dyn std::error::Error>;

    /// Quadrant colours as 0xRRGGBB (the probe's known pixels).
    pub const QUADRANTS: [u32; 4] = [0xff0000, 0x00ff00, 0x0000ff, 0xffffff];

    struct Args {
        display: Option<String>,
        title: String,
        width: u16,
        height: u16,
        log: Option<String>,
        bench: bool,
    }

    fn parse_args() -> Result<Args, Error> {
        let mut args = Args {
            display: None,
            title: "lumine-xprobe".into(),
            width: 640,
            height: 360,
            log: None,
            bench: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
            match a.as_str() {
                "--display" => args.display = Some(value()?),
                "--title" => args.title = value()?,
                "--width" => args.width = value()?.parse()?,
                "--height" => args.height = value()?.parse()?,
                "--log" => args.log = Some(value()?),
                "--bench" => args.bench = true,
                "-h" | "--help" => {
                    println!(
                        "usage: lumine-xprobe [--display :N] [--title T] [--width W] [--height H] [--log FILE] | --bench"
                    );
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other}").into()),
            }
        }
        Ok(args)
    }

    /// CLOCK_MONOTONIC in microseconds (comparable across processes).
    fn now_us() -> i64 {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        t.tv_sec * 1_000_000 + t.tv_nsec / 1000
    }

    /// Creates, paints and maps the probe window; returns once it is mapped.
    pub fn open_window(
        conn: &RustConnection,
        screen: usize,
        title: &str,
        width: u16,
        height: u16,
    ) -> Result<Window, Error> {
        let s = &conn.setup().roots[screen];
        let (root, depth) = (s.root, s.root_depth);
        // The pattern lives in a background pixmap: the server repaints it on
        // every expose, so captures see it without the probe drawing anything.
        let pixmap = conn.generate_id()?;
        conn.create_pixmap(depth, pixmap, root, width, height)?;
        let gc = conn.generate_id()?;
        conn.create_gc(gc, pixmap, &CreateGCAux::new())?;
        let (hw, hh) = (width / 2, height / 2);
        let rects = [
            (0, 0, hw, hh),
            (hw, 0, width - hw, hh),
            (0, hh, hw, height - hh),
            (hw, hh, width - hw, height - hh),
        ];
        for (&(x, y, w, h), &colour) in rects.iter().zip(&QUADRANTS) {
            conn.change_gc(
                gc,
                &x11rb::protocol::xproto::ChangeGCAux::new().foreground(colour),
            )?;
            conn.poly_fill_rectangle(
                pixmap,
                gc,
                &[Rectangle {
                    x: x as i16,
                    y: y as i16,
                    width: w,
                    height: h,
                }],
            )?;
        }
        let win = conn.generate_id()?;
        conn.create_window(
            depth,
            win,
            root,
            0,
            0,
            width,
            height,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new().background_pixmap(pixmap).event_mask(
                EventMask::KEY_PRESS
                    | EventMask::KEY_RELEASE
                    | EventMask::BUTTON_PRESS
                    | EventMask::BUTTON_RELEASE
                    | EventMask::POINTER_MOTION
                    | EventMask::FOCUS_CHANGE
                    | EventMask::STRUCTURE_NOTIFY,
            ),
        )?;
        conn.free_gc(gc)?;
        conn.free_pixmap(pixmap)?; // the window keeps its own reference
        conn.change_property8(
            PropMode::REPLACE,
            win,
            AtomEnum::WM_NAME,
            AtomEnum::STRING,
            title.as_bytes(),
        )?;
        let net_wm_name = conn.intern_atom(false, b"_NET_WM_NAME")?.reply()?.atom;
        let utf8 = conn.intern_atom(false, b"UTF8_STRING")?.reply()?.atom;
        conn.change_property8(PropMode::REPLACE, win, net_wm_name, utf8, title.as_bytes())?;
        conn.map_window(win)?;
        conn.flush()?;
        loop {
            if let Event::MapNotify(e) = conn.wait_for_event()?
                && e.window == win
            {
                return Ok(win);
            }
        }
    }

    /// Selects XInput2 raw motion on the root (raw events can only be selected there).
    fn select_raw_motion(conn: &RustConnection, root: Window) -> Result<(), Error> {
        conn.xinput_xi_query_version(2, 2)?.reply()?;
        conn.xinput_xi_select_events(
            root,
            &[xinput::EventMask {
                deviceid: 0, // all devices; we keep slave events (deviceid == sourceid)
                mask: vec![XIEventMask::RAW_MOTION],
            }],
        )?
        .check()?;
        Ok(())
    }

    pub fn main() -> Result<(), Error> {
        let args = parse_args()?;
        if args.bench {
            return bench();
        }
        let (conn, screen) = x11rb::connect(args.display.as_deref())?;
        let root = conn.setup().roots[screen].root;
        let keymap = KeyMap::load(&conn)?;
        let raw = select_raw_motion(&conn, root).is_ok();
        let win = open_window(&conn, screen, &args.title, args.width, args.height)?;
        let mut out: Box<dyn Write> = match &args.log {
            Some(path) => Box::new(std::fs::File::create(path)?),
            None => Box::new(std::io::stdout()),
        };
        let mut line = |text: String| -> Result<(), Error> {
            writeln!(out, "{} {text}", now_us())?;
            out.flush()?;
            Ok(())
        };
        line(format!(
            "ready {win:#x}{}",
            if raw { "" } else { " (no raw motion)" }
        ))?;
        let key_name = |code: u8| {
            keymap
                .key(code)
                .map_or_else(|| format!("keycode {code}"), |k: Key| k.to_string())
        };
        // Raw deltas are fixed point; carry the fractions so logged integers sum exactly.
        let mut rest = (0.0f64, 0.0f64);
        loop {
            let Ok(event) = conn.wait_for_event() else {
                return Ok(()); // the server went away
            };
            match event {
                Event::KeyPress(e) if e.event == win => {
                    line(format!("press {}", key_name(e.detail)))?;
                }
                Event::KeyRelease(e) if e.event == win => {
                    line(format!("release {}", key_name(e.detail)))?;
                }
                Event::ButtonPress(e) if e.event == win => {
                    line(format!("button {} press", e.detail))?;
                }
                Event::ButtonRelease(e) if e.event == win => {
                    line(format!("button {} release", e.detail))?;
                }
                Event::MotionNotify(e) if e.event == win => {
                    line(format!("motion {} {}", e.event_x, e.event_y))?;
                }
                Event::FocusIn(e) if e.event == win => line("focus in".into())?,
                Event::FocusOut(e) if e.event == win => line("focus out".into())?,
                Event::XinputRawMotion(e) if e.deviceid == e.sourceid => {
                    let (mut dx, mut dy) = (0.0, 0.0);
                    let mut values = e.axisvalues_raw.iter();
                    for axis in 0..(e.valuator_mask.len() * 32).min(2) {
                        if e.valuator_mask[axis / 32] & (1 << (axis % 32)) == 0 {
                            continue;
                        }
                        let Some(v) = values.next() else { break };
                        let f = f64::from(v.integral) + f64::from(v.frac) / 4_294_967_296.0;
                        if axis == 0 { dx = f } else { dy = f }
                    }
                    let (ax, ay) = (rest.0 + dx, rest.1 + dy);
                    rest = (ax - ax.trunc(), ay - ay.trunc());
                    line(format!("raw {} {}", ax.trunc() as i64, ay.trunc() as i64))?;
                }
                Event::DestroyNotify(e) if e.window == win => return Ok(()),
                _ => {}
            }
        }
    }

    /// Mean, median and 95th percentile of `f`'s duration over `n` runs, in ms.
    fn time(n: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
        for _ in 0..n / 10 {
            f(); // warm up
        }
        let mut d: Vec<f64> = (0..n)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        d.sort_by(f64::total_cmp);
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        (mean, d[d.len() / 2], d[d.len() * 95 / 100])
    }

    fn bench() -> Result<(), Error> {
        let xvfb = Xvfb::start(1600, 900)?;
        xvfb.set_auto_repeat(false)?;
        let display = xvfb.display().to_owned();
        let (conn, screen) = x11rb::connect(Some(&display))?;
        let win = open_window(&conn, screen, "lumine-bench", 1280, 720)?;
        // Keep reading the window's events so the server never stalls on us.
        let reader = std::thread::Builder::new()
            .name("bench-drain".into())
            .spawn(move || while conn.wait_for_event().is_ok() {})?;
        let id = WindowId(u64::from(win));
        focus_window(Some(&display), id)?;
        println!(
            "machine: {} cores; Xvfb 1600x900x24, window 1280x720",
            std::thread::available_parallelism()?.get()
        );
        println!("| what | mean ms | median ms | p95 ms |");
        println!("| --- | --- | --- | --- |");
        for (name, shm, composite) in [
            ("capture 1280x720, MIT-SHM + Composite", true, true),
            ("capture 1280x720, MIT-SHM, window", true, false),
            ("capture 1280x720, GetImage + Composite", false, true),
            ("capture 1280x720, GetImage, window", false, false),
        ] {
            let mut cap = X11Capture::with_options(Some(&display), id, shm, composite)?;
            let frame = cap.capture()?;
            assert_eq!((frame.width, frame.height), (1280, 720));
            let (mean, med, p95) = time(300, || {
                cap.capture().expect("capture");
            });
            println!("| {name} | {mean:.3} | {med:.3} | {p95:.3} |");
        }
        let frame = X11Capture::new(Some(&display), id)?.capture()?;
        let big = frame.resized(1920, 1080);
        let (mean, med, p95) = time(50, || {
            let _ = big.resized(1280, 720);
        });
        println!(
            "| resize 1920x1080 -> 1280x720 (Frame::resized) | {mean:.3} | {med:.3} | {p95:.3} |"
        );
        let mut sink = XTestSink::connect(Some(&display), id)?;
        let batch = [
            InputOp::Press(Key::W),
            InputOp::Release(Key::W),
            InputOp::MoveRelative { dx: 37, dy: -12 },
        ];
        let (mean, med, p95) = time(2000, || {
            sink.inject(&batch).expect("inject");
        });
        println!(
            "| inject batch: press W, release W, move (37,-12) | {mean:.3} | {med:.3} | {p95:.3} |"
        );
        let chunk = [
            InputOp::Press(Key::Shift),
            InputOp::Press(Key::W),
            InputOp::MoveRelative { dx: 92, dy: 0 },
            InputOp::Release(Key::Shift),
            InputOp::Release(Key::W),
        ];
        let (mean, med, p95) = time(2000, || {
            sink.inject(&chunk).expect("inject");
        });
        println!(
            "| inject chunk: press Shift W, move (92,0), release both | {mean:.3} | {med:.3} | {p95:.3} |"
        );
        drop(sink);
        std::thread::sleep(Duration::from_millis(50));
        drop(xvfb); // the drain thread ends with the server
        let _ = reader.join();
        Ok(())
    }
}
