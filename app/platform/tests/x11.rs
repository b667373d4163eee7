//! The X11 backend against a real X server: Xvfb (and openbox where a window
//! manager matters), with `lumine-xprobe` playing the game.
//!
//! On Linux these tests need `Xvfb` and `openbox` (scripts/setup installs them)
//! and fail loudly without them; elsewhere this file is empty.
#![cfg(target_os = "linux")]

use std::process::Command;
use std::time::{Duration, Instant};

use lumine_action::Key;
use lumine_platform::x11::xvfb::{Xvfb, find_program};
use lumine_platform::x11::{
    CaptureMethod, InjectionLog, MonitorConfig, X11Capture, X11Monitor, X11Windows, XTestSink,
    focus_window,
};
use lumine_platform::{
    FrameSource, InjectOutcome, InputMonitor, InputOp, InputSink, OperatorEvent, PlatformError,
    WindowId, WindowSystem,
};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::ConnectionExt as _;
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

const TIMEOUT: Duration = Duration::from_secs(10);

#[path = "support/probe.rs"]
mod probe;
use probe::Probe;

/// The probe binary, built with this crate.
fn xprobe_bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_lumine-xprobe"))
}

/// A fresh Xvfb, auto-repeat off (keys held through XTest would repeat).
fn xvfb() -> Xvfb {
    let x = Xvfb::start(1600, 900).expect("Xvfb must be installed (scripts/setup) and start");
    x.set_auto_repeat(false).expect("auto-repeat off");
    x
}

fn connect(display: &str) -> RustConnection {
    x11rb::connect(Some(display)).unwrap().0
}

/// Moves the pointer into `win` at (x, y), as a person would before clicking.
fn warp_into(display: &str, win: WindowId, x: i16, y: i16) {
    let c = connect(display);
    c.warp_pointer(x11rb::NONE, win.0 as u32, 0, 0, 0, 0, x, y)
        .unwrap()
        .check()
        .unwrap();
}

/// Injects through `sink` and expects delivery.
fn inject(sink: &mut XTestSink, ops: &[InputOp]) {
    assert_eq!(sink.inject(ops).unwrap(), InjectOutcome::Injected);
}

#[test]
fn windows_are_listed_found_and_focused_without_a_window_manager() {
    let x = xvfb();
    let a = Probe::start(x.display(), "probe alpha", 640, 360);
    let b = Probe::start(x.display(), "probe beta", 300, 200);
    let mut ws = X11Windows::connect(Some(x.display())).unwrap();
    assert!(!ws.has_window_manager());
    let list = ws.windows().unwrap();
    let titles: Vec<&str> = list.iter().map(|w| w.title.as_str()).collect();
    assert!(
        titles.contains(&"probe alpha") && titles.contains(&"probe beta"),
        "{titles:?}"
    );
    let found = ws.find("alpha").unwrap();
    assert_eq!(found.id, a.id);
    assert_eq!(
        (found.x, found.y, found.width, found.height),
        (0, 0, 640, 360)
    );
    assert!(!found.minimized);
    assert_eq!(found.dpi_scale, 1.0);
    assert!(matches!(
        ws.find("gamma"),
        Err(PlatformError::NoSuchWindow(_))
    ));

    focus_window(Some(x.display()), a.id).unwrap();
    assert_eq!(ws.focused().unwrap(), Some(a.id));
    ws.focus(b.id).unwrap();
    assert_eq!(ws.focused().unwrap(), Some(b.id));
    assert_eq!(ws.window(b.id).unwrap().width, 300);
}

#[test]
fn with_openbox_windows_are_listed_focused_and_receive_keys() {
    let x = xvfb()
        .with_window_manager()
        .expect("openbox must be installed (scripts/setup)");
    let a = Probe::start(x.display(), "probe alpha", 640, 360);
    let b = Probe::start(x.display(), "probe beta", 320, 240);
    let mut ws = X11Windows::connect(Some(x.display())).unwrap();
    assert!(ws.has_window_manager());
    // The manager's list may lag the map by a moment.
    let deadline = Instant::now() + TIMEOUT;
    let info = loop {
        if let Ok(info) = ws.find("beta") {
            break info;
        }
        assert!(Instant::now() < deadline, "openbox never listed the probe");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(info.id, b.id);
    assert_eq!((info.width, info.height), (320, 240));
    ws.focus(a.id).unwrap();
    assert_eq!(ws.focused().unwrap(), Some(a.id));
    let mut sink = XTestSink::connect(Some(x.display()), a.id).unwrap();
    let m = a.mark();
    inject(
        &mut sink,
        &[InputOp::Press(Key::W), InputOp::Release(Key::W)],
    );
    a.wait_line(m, "press W");
    a.wait_line(m, "release W");
    ws.focus(b.id).unwrap();
    assert_eq!(
        sink.inject(&[InputOp::Press(Key::W)]).unwrap(),
        InjectOutcome::Refused
    );
}

/// The probe's colour at (x, y) of a frame.
fn pixel(f: &lumine_platform::Frame, x: u32, y: u32) -> [u8; 3] {
    let i = ((y * f.width + x) * 3) as usize;
    [f.rgb[i], f.rgb[i + 1], f.rgb[i + 2]]
}

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 255, 0];
const BLUE: [u8; 3] = [0, 0, 255];
const WHITE: [u8; 3] = [255, 255, 255];

fn assert_quadrants(f: &lumine_platform::Frame) {
    let (w, h) = (f.width, f.height);
    assert_eq!(pixel(f, w / 4, h / 4), RED, "top left");
    assert_eq!(pixel(f, 3 * w / 4, h / 4), GREEN, "top right");
    assert_eq!(pixel(f, w / 4, 3 * h / 4), BLUE, "bottom left");
    assert_eq!(pixel(f, 3 * w / 4, 3 * h / 4), WHITE, "bottom right");
}

/// Quadrant centres plus the exact pixels along the borders (unscaled frames).
fn assert_exact_quadrants(f: &lumine_platform::Frame) {
    assert_quadrants(f);
    let (w, h) = (f.width, f.height);
    for (x, y, colour) in [
        (0, 0, RED),
        (w / 2 - 1, h / 2 - 1, RED),
        (w / 2, 0, GREEN),
        (w - 1, 0, GREEN),
        (0, h - 1, BLUE),
        (w / 2 - 1, h / 2, BLUE),
        (w / 2, h / 2, WHITE),
        (w - 1, h - 1, WHITE),
    ] {
        assert_eq!(pixel(f, x, y), colour, "pixel ({x}, {y})");
    }
}

#[test]
fn capture_reads_the_probe_pixels_by_every_path() {
    let x = xvfb();
    let a = Probe::start(x.display(), "probe alpha", 640, 360);
    for (shm, composite) in [(true, true), (true, false), (false, true), (false, false)] {
        let mut cap = X11Capture::with_options(Some(x.display()), a.id, shm, composite).unwrap();
        let expected = if shm {
            CaptureMethod::Shm
        } else {
            CaptureMethod::GetImage
        };
        assert_eq!(cap.method(), expected, "Xvfb offers MIT-SHM 1.2");
        assert_eq!(cap.uses_composite(), composite, "Xvfb offers Composite");
        let f = cap.capture().unwrap();
        assert_eq!((f.width, f.height, f.rgb.len()), (640, 360, 640 * 360 * 3));
        assert_eq!(f.window.id, a.id);
        assert_exact_quadrants(&f);
        // Again: the second frame reuses the segment and renames the pixmap.
        assert_exact_quadrants(&cap.capture().unwrap());
        let small = cap.capture_scaled(320, 180).unwrap();
        assert_eq!((small.width, small.height), (320, 180));
        assert_quadrants(&small);
    }
}

#[test]
fn composite_capture_sees_a_covered_window() {
    let x = xvfb();
    let a = Probe::start(x.display(), "probe alpha", 640, 360);
    // Without a manager both sit at (0, 0): beta covers alpha's top-left quadrant,
    // putting beta's white quadrant over alpha's red centre at (160, 90).
    let b = Probe::start(x.display(), "probe beta", 320, 180);
    focus_window(Some(x.display()), b.id).unwrap();
    // Reading the window itself cannot see alpha's pixels under beta (X leaves
    // them undefined): this is what the Composite path fixes.
    let mut through_window =
        X11Capture::with_options(Some(x.display()), a.id, true, false).unwrap();
    assert_ne!(pixel(&through_window.capture().unwrap(), 160, 90), RED);
    let mut composite = X11Capture::new(Some(x.display()), a.id).unwrap();
    assert!(composite.uses_composite());
    assert_exact_quadrants(&composite.capture().unwrap());
}

#[test]
fn capture_reports_minimised_and_gone_windows() {
    let x = xvfb();
    let a = Probe::start(x.display(), "probe alpha", 200, 100);
    let mut cap = X11Capture::new(Some(x.display()), a.id).unwrap();
    cap.capture().unwrap();
    let c = connect(x.display());
    c.unmap_window(a.id.0 as u32).unwrap().check().unwrap();
    assert!(matches!(cap.capture(), Err(PlatformError::Minimized(id)) if id == a.id));
    let mut ws = X11Windows::connect(Some(x.display())).unwrap();
    assert!(ws.window(a.id).unwrap().minimized);
    c.map_window(a.id.0 as u32).unwrap().check().unwrap();
    assert_quadrants(&cap.capture().unwrap());
    drop(a); // the probe exits and its window is destroyed
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match cap.capture() {
            Err(PlatformError::WindowGone(_)) => break,
            other => assert!(Instant::now() < deadline, "still capturing: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(matches!(
        ws.window(WindowId(0x7fff_fff0)),
        Err(PlatformError::WindowGone(_))
    ));
}

#[test]
fn keys_reach_the_focused_window_and_every_key_has_a_keycode() {
    let x = xvfb();
    let a = Probe::start(x.display(), "probe alpha", 640, 360);
    focus_window(Some(x.display()), a.id).unwrap();
    let mut sink = XTestSink::connect(Some(x.display()), a.id).unwrap();
    let m = a.mark();
    inject(&mut sink, &[InputOp::Press(Key::W)]);
    a.wait_line(m, "press W");
    assert_eq!(sink.held(), vec![Key::W]);
    inject(&mut sink, &[InputOp::Release(Key::W)]);
    a.wait_line(m, "release W");
    assert!(sink.held().is_empty());
    // Every keyboard key of the vocabulary, in one batch.
    let keys: Vec<Key> = Key::ALL
        .iter()
        .copied()
        .filter(|k| !k.is_mouse_button())
        .collect();
    let ops: Vec<InputOp> = keys
        .iter()
        .flat_map(|&k| [InputOp::Press(k), InputOp::Release(k)])
        .collect();
    let m = a.mark();
    inject(&mut sink, &ops);
    a.wait_line(m, &format!("release {}", keys.last().unwrap()));
    let expected: Vec<String> = keys
        .iter()
        .flat_map(|k| [format!("press {k}"), format!("release {k}")])
        .collect();
    let got: Vec<String> = a
        .since(m)
        .into_iter()
        .filter(|l| l.starts_with("press") || l.starts_with("release"))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn a_held_key_is_not_pressed_again_and_releases_only_what_it_pressed() {
    let x = xvfb();
    let a = Probe::start(x.display(), "probe alpha", 640, 360);
    focus_window(Some(x.display()), a.id).unwrap();
    let mut sink = XTestSink::connect(Some(x.display()), a.id).unwrap();
    let m = a.mark();
    inject(&mut sink, &[InputOp::Press(Key::W)]);
    inject(&mut sink, &[InputOp::Press(Key::W), InputOp::Press(Key::A)]);
    inject(
        &mut sink,
        &[InputOp::Press(Key::W), InputOp::Release(Key::A)],
    );
    // A key the sink never pressed is not released (the operator may hold it).
    inject(
        &mut sink,
        &[InputOp::Release(Key::S), InputOp::Release(Key::W)],
    );
    a.wait_line(m, "release W");
    assert_eq!(
        a.input_since(m),
        ["press W", "press A", "release A", "release W"],
        "W pressed once across batches"
    );
}

#[test]
fn mouse_buttons_and_scroll_reach_the_window() {
    let x = xvfb();
    let a = Probe::start(x.display(), "probe alpha", 640, 360);
    focus_window(Some(x.display()), a.id).unwrap();
    warp_into(x.display(), a.id, 100, 100);
    let mut sink = XTestSink::connect(Some(x.display()), a.id).unwrap();
    let m = a.mark();
    let buttons = [
        (Key::MouseLeft, 1),
        (Key::MouseMiddle, 2),
        (Key::MouseRight, 3),
        (Key::MouseX1, 8),
        (Key::MouseX2, 9),
    ];
    for (k, _) in buttons {
        inject(&mut sink, &[InputOp::Press(k)]);
        inject(&mut sink, &[InputOp::Release(k)]);
    }
    inject(&mut sink, &[InputOp::Scroll(3)]);
    inject(&mut sink, &[InputOp::Scroll(-2)]);
    a.wait_line(m, "button 5 release");
    std::thread::sleep(Duration::from_millis(100));
    let mut expected: Vec<String> = buttons
        .iter()
        .flat_map(|(_, b)| [format!("button {b} press"), format!("button {b} release")])
        .collect();
    for _ in 0..3 {
        expected.extend(["button 4 press".into(), "button 4 release".into()]);
    }
    for _ in 0..2 {
        expected.extend(["button 5 press".into(), "button 5 release".into()]);
    }
    let got: Vec<String> = a
        .since(m)
        .into_iter()
        .filter(|l| l.starts_with("button"))
        .collect();
    assert_eq!(got, expected);
}

/// Sum of the probe's raw motion deltas since `mark`, and how many events.
fn raw_sum(p: &Probe, mark: usize) -> ((i64, i64), usize) {
    let raws: Vec<(i64, i64)> = p
        .since(mark)
        .iter()
        .filter_map(|l| {
            let mut it = l.strip_prefix("raw ")?.split(' ');
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .collect();
    let sum = raws.iter().fold((0, 0), |s, r| (s.0 + r.0, s.1 + r.1));
    (sum, raws.len())
}

#[test]
fn relative_motion_sums_exactly_even_beyond_the_screen() {
    let x = xvfb();
    let a = Probe::start(x.display(), "probe alpha", 640, 360);
    focus_window(Some(x.display()), a.id).unwrap();
    let mut sink = XTestSink::connect(Some(x.display()), a.id).unwrap();
    let m = a.mark();
    // 5000 px right is three screen widths: clamping would lose most of it.
    let moves = [(5000, -37), (-3, 2), (92, 0), (-4321, 2999), (0, -1)];
    for (dx, dy) in moves {
        inject(&mut sink, &[InputOp::MoveRelative { dx, dy }]);
    }
    let total = moves.iter().fold((0i64, 0i64), |s, &(dx, dy)| {
        (s.0 + dx as i64, s.1 + dy as i64)
    });
    let deadline = Instant::now() + TIMEOUT;
    while raw_sum(&a, m).0 != total {
        assert!(
            Instant::now() < deadline,
            "raw motion sum {:?} != {total:?}",
            raw_sum(&a, m)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let (sum, events) = raw_sum(&a, m);
    assert_eq!(sum, total, "no extra motion arrived later");
    // Split into steps of at most 127 px: 5000 px alone is 40 events.
    assert!(events > 40 + 1 + 1 + 35, "{events} raw events");
}

#[test]
fn injection_is_refused_while_another_window_has_focus() {
    let x = xvfb();
    let a = Probe::start(x.display(), "probe alpha", 640, 360);
    let b = Probe::start(x.display(), "probe beta", 300, 200);
    focus_window(Some(x.display()), b.id).unwrap();
    let mut to_a = XTestSink::connect(Some(x.display()), a.id).unwrap();
    let mut to_b = XTestSink::connect(Some(x.display()), b.id).unwrap();
    let (ma, mb) = (a.mark(), b.mark());
    let batch = [
        InputOp::Press(Key::W),
        InputOp::MoveRelative { dx: 50, dy: 50 },
        InputOp::Release(Key::W),
    ];
    assert_eq!(to_a.inject(&batch).unwrap(), InjectOutcome::Refused);
    assert!(to_a.held().is_empty(), "a refused batch holds nothing");
    // A sentinel through the focused window's sink: once it arrives, anything the
    // refused batch had sent would have arrived before it.
    inject(
        &mut to_b,
        &[InputOp::Press(Key::Z), InputOp::Release(Key::Z)],
    );
    b.wait_line(mb, "release Z");
    assert_eq!(
        b.input_since(mb),
        ["press Z", "release Z"],
        "the refused batch reached nobody"
    );
    assert!(a.input_since(ma).is_empty(), "{:?}", a.since(ma));
}

/// Keycodes the server reports down, and pointer buttons 1-5 down.
fn server_state(display: &str) -> (Vec<usize>, u16) {
    let c = connect(display);
    let keys = c.query_keymap().unwrap().reply().unwrap().keys;
    let down = (0..256)
        .filter(|&k| keys[k / 8] & (1 << (k % 8)) != 0)
        .collect();
    let root = c.setup().roots[0].root;
    let mask = u16::from(c.query_pointer(root).unwrap().reply().unwrap().mask);
    // Button1Mask..Button5Mask are bits 8..12.
    (down, mask & 0x1f00)
}

#[test]
fn release_all_and_drop_leave_no_key_or_button_down() {
    let x = xvfb();
    let a = Probe::start(x.display(), "probe alpha", 640, 360);
    focus_window(Some(x.display()), a.id).unwrap();
    warp_into(x.display(), a.id, 50, 50);
    let mut sink = XTestSink::connect(Some(x.display()), a.id).unwrap();
    let m = a.mark();
    let held = [
        Key::W,
        Key::Shift,
        Key::MouseLeft,
        Key::MouseRight,
        Key::MouseX1,
    ];
    inject(&mut sink, &held.map(InputOp::Press));
    a.wait_line(m, "button 8 press");
    let (keys, buttons) = server_state(x.display());
    assert_eq!(keys.len(), 2, "W and Shift are down on the server");
    assert_eq!(buttons, (1 << 8) | (1 << 10), "buttons 1 and 3 are down");
    let mut expected = held.to_vec();
    expected.sort();
    assert_eq!(sink.held(), expected);

    sink.release_all().unwrap();
    assert!(sink.held().is_empty());
    a.wait_line(m, "button 8 release");
    assert_eq!(server_state(x.display()), (vec![], 0));

    // Dropping a sink that holds keys releases them too (every stop path).
    inject(
        &mut sink,
        &[InputOp::Press(Key::Ctrl), InputOp::Press(Key::MouseMiddle)],
    );
    assert_ne!(server_state(x.display()), (vec![], 0));
    drop(sink);
    assert_eq!(server_state(x.display()), (vec![], 0));
}

/// Another XTest client (not our sink): the operator's hands, in tests.
struct Operator(RustConnection);

impl Operator {
    fn new(display: &str) -> Self {
        Self(connect(display))
    }
    fn keycode(&self, keysym: u32) -> u8 {
        let c = &self.0;
        let (min, max) = (c.setup().min_keycode, c.setup().max_keycode);
        let map = c
            .get_keyboard_mapping(min, max - min + 1)
            .unwrap()
            .reply()
            .unwrap();
        let per = map.keysyms_per_keycode as usize;
        let i = map.keysyms.iter().position(|&s| s == keysym).unwrap();
        min + (i / per) as u8
    }
    fn fake(&self, type_: u8, detail: u8, dx: i16, dy: i16) {
        let root = self.0.setup().roots[0].root;
        self.0
            .xtest_fake_input(type_, detail, 0, root, dx, dy, 0)
            .unwrap();
        self.0.flush().unwrap();
    }
    fn tap(&self, keysym: u32) {
        let code = self.keycode(keysym);
        self.fake(2, code, 0, 0);
        self.fake(3, code, 0, 0);
    }
}

/// Polls `mon` until `done` holds for everything seen so far; returns it all.
fn collect_until(
    mon: &mut X11Monitor,
    done: impl Fn(&[OperatorEvent]) -> bool,
) -> Vec<OperatorEvent> {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    loop {
        seen.extend(mon.poll().into_iter().map(|(_, e)| e));
        if done(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "monitor failure {:?}; saw {seen:?}",
            mon.failure()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_monitor_reports_other_clients_input_but_not_the_sinks() {
    let x = xvfb();
    let a = Probe::start(x.display(), "probe alpha", 640, 360);
    focus_window(Some(x.display()), a.id).unwrap();
    warp_into(x.display(), a.id, 300, 200);
    let log = InjectionLog::new();
    let mut mon = X11Monitor::start(
        Some(x.display()),
        MonitorConfig {
            injections: Some(log.clone()),
            ..MonitorConfig::default()
        },
    )
    .unwrap();
    let mut sink = XTestSink::connect(Some(x.display()), a.id)
        .unwrap()
        .with_injection_log(log);
    let m = a.mark();
    inject(
        &mut sink,
        &[
            InputOp::Press(Key::W),
            InputOp::MoveRelative { dx: 200, dy: -7 }, // stays inside the window
            InputOp::Press(Key::MouseLeft),
            InputOp::Scroll(2),
        ],
    );
    inject(
        &mut sink,
        &[InputOp::Release(Key::W), InputOp::Release(Key::MouseLeft)],
    );
    a.wait_line(m, "button 1 release");
    // The operator, through another XTest connection: B, a right click, a move.
    let op = Operator::new(x.display());
    op.tap(0x62); // b
    op.fake(4, 3, 0, 0);
    op.fake(5, 3, 0, 0);
    op.fake(6, 1, 7, -3); // relative motion
    let seen = collect_until(&mut mon, |s| {
        s.contains(&OperatorEvent::Release(Key::MouseRight))
            && s.iter().any(|e| matches!(e, OperatorEvent::Move { .. }))
    });
    assert_eq!(
        seen,
        [
            OperatorEvent::Press(Key::B),
            OperatorEvent::Release(Key::B),
            OperatorEvent::Press(Key::MouseRight),
            OperatorEvent::Release(Key::MouseRight),
            OperatorEvent::Move { dx: 7, dy: -3 },
        ],
        "only the operator's input, none of the sink's"
    );
    // And a real external tool, if installed.
    if find_program("xdotool").is_some() {
        let status = Command::new("xdotool")
            .args(["key", "--delay", "0", "q"])
            .env("DISPLAY", x.display())
            .status()
            .unwrap();
        assert!(status.success());
        let seen = collect_until(&mut mon, |s| s.contains(&OperatorEvent::Release(Key::Q)));
        assert_eq!(
            seen,
            [OperatorEvent::Press(Key::Q), OperatorEvent::Release(Key::Q)]
        );
    }
}

#[test]
fn the_emergency_key_is_reported_as_emergency_stop() {
    let x = xvfb();
    let mut mon = X11Monitor::start(Some(x.display()), MonitorConfig::default()).unwrap();
    let op = Operator::new(x.display());
    op.tap(0xff13); // Pause
    op.tap(0x61); // a, as a marker that everything before it was seen
    let seen = collect_until(&mut mon, |s| s.contains(&OperatorEvent::Release(Key::A)));
    assert_eq!(
        seen,
        [
            OperatorEvent::EmergencyStop,
            OperatorEvent::Press(Key::A),
            OperatorEvent::Release(Key::A)
        ]
    );
    // Another hotkey, pressed with xdotool when it is installed.
    drop(mon);
    let mut mon = X11Monitor::start(
        Some(x.display()),
        MonitorConfig {
            emergency_key: Key::F12,
            ..MonitorConfig::default()
        },
    )
    .unwrap();
    if find_program("xdotool").is_some() {
        let status = Command::new("xdotool")
            .args(["key", "F12"])
            .env("DISPLAY", x.display())
            .status()
            .unwrap();
        assert!(status.success());
    } else {
        op.tap(0xffc9);
    }
    let seen = collect_until(&mut mon, |s| !s.is_empty());
    std::thread::sleep(Duration::from_millis(100));
    let mut seen = seen;
    seen.extend(mon.poll().into_iter().map(|(_, e)| e));
    assert_eq!(seen, [OperatorEvent::EmergencyStop]);
}
