//! The console driven like an operator would, through egui_kittest, over a
//! fake runtime: a launcher whose "run" is a thread that records every
//! command it receives and answers the way the real runtime does (state
//! changes), while the test feeds it runtime events.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use lumine_runtime::{Command, Event, EventKind, RunState, StopReason};
use lumine_ui::{ConsoleApp, LaunchRequest, Launcher, RunInfo, SettingsStore, UiEvent, UiSender};

/// What the fake runtime saw, shared with the test.
#[derive(Default)]
struct Seen {
    requests: Vec<LaunchRequest>,
    commands: Vec<Command>,
    events: Option<UiSender>,
}

struct FakeLauncher {
    seen: Arc<Mutex<Seen>>,
}

impl Launcher for FakeLauncher {
    fn launch(
        &mut self,
        request: LaunchRequest,
        commands: Receiver<Command>,
        events: UiSender,
    ) -> std::io::Result<JoinHandle<()>> {
        {
            let mut seen = self.seen.lock().expect("lock");
            seen.requests.push(request);
            seen.events = Some(events.clone());
        }
        let seen = Arc::clone(&self.seen);
        std::thread::Builder::new()
            .name("fake-runtime".to_owned())
            .spawn(move || {
                events.send(UiEvent::Launched(RunInfo {
                    window: "Fake Game".into(),
                    policy: "model:fake".into(),
                    provider: "CPU".into(),
                    system_prompt: "You are an agent.".into(),
                    token_budget: Some(4096),
                    history_frames: 10,
                    emergency_key: "Pause".into(),
                    recording: None,
                    instruction: None,
                }));
                let state = |s: RunState| {
                    UiEvent::Runtime(Event {
                        at: Instant::now(),
                        kind: EventKind::State(s),
                    })
                };
                events.send(state(RunState::Ready));
                // Like the runtime: answer each command with its state change.
                while let Ok(command) = commands.recv() {
                    seen.lock().expect("lock").commands.push(command.clone());
                    match command {
                        Command::Start | Command::HandBack => events.send(state(RunState::Running)),
                        Command::TakeControl => events.send(state(RunState::OperatorControl)),
                        Command::Pause => events.send(state(RunState::Paused(
                            lumine_runtime::PauseReason::Command,
                        ))),
                        Command::Stop | Command::EmergencyStop => break,
                        _ => {}
                    }
                }
                events.send(UiEvent::Ended {
                    state: RunState::Stopped(StopReason::Command),
                    summary: "fake run ended".into(),
                });
            })
    }

    fn list_windows(&mut self, events: UiSender) {
        events.send(UiEvent::Windows(Ok(Vec::new())));
    }
}

struct Fixture {
    harness: Harness<'static, ConsoleApp>,
    seen: Arc<Mutex<Seen>>,
    _dir: tempfile::TempDir,
}

/// A console with a settings file (so it is not a first run, which would
/// start by itself) and the fake launcher.
fn console() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("console.ron");
    std::fs::write(&path, "()").expect("settings written");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = ConsoleApp::new(
        Box::new(FakeLauncher {
            seen: Arc::clone(&seen),
        }),
        SettingsStore::at(Some(path)),
        false,
    );
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1600.0, 900.0))
        .build_ui_state(|ui, app: &mut ConsoleApp| app.show(ui), app);
    harness.run_steps(2);
    Fixture {
        harness,
        seen,
        _dir: dir,
    }
}

impl Fixture {
    /// Steps the UI until `done` holds (the fake runtime is another thread).
    fn until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
            self.harness.run_steps(1);
        }
    }

    fn commands(&self) -> Vec<Command> {
        self.seen.lock().expect("lock").commands.clone()
    }

    fn events(&self) -> UiSender {
        self.seen
            .lock()
            .expect("lock")
            .events
            .clone()
            .expect("launched")
    }

    /// Types `text` into the only input of `role`, then clicks `button`.
    fn type_then_click(&mut self, role: Role, text: &str, button: &str) {
        let input = self.harness.get_by_role(role);
        input.focus();
        input.type_text(text);
        self.harness.run_steps(1);
        self.harness.get_by_label(button).click();
        self.harness.run_steps(2);
    }

    fn start(&mut self) {
        self.harness.get_by_label("Start").click();
        self.harness.run_steps(2);
        self.until("the start command", |f| {
            f.commands().contains(&Command::Start)
        });
        self.until("running", |f| {
            f.harness.state().phase() == &lumine_ui::Phase::Run(RunState::Running)
        });
    }
}

#[test]
fn start_launches_the_run_and_sends_start() {
    let mut f = console();
    f.start();
    let seen = f.seen.lock().expect("lock");
    assert_eq!(seen.requests.len(), 1);
    assert_eq!(
        seen.requests[0].target,
        lumine_ui::TargetChoice::PracticeArena
    );
    assert_eq!(seen.commands, vec![Command::Start]);
}

#[test]
fn typed_instruction_reaches_the_runtime() {
    let mut f = console();
    f.start();
    f.type_then_click(Role::MultilineTextInput, "open the red chest", "Send");
    f.until("the instruction", |f| {
        f.commands()
            .contains(&Command::SetInstruction(Some("open the red chest".into())))
    });
    // Remembered for the next session too.
    assert_eq!(
        f.harness.state().settings().instruction,
        "open the red chest"
    );
}

#[test]
fn a_thought_event_appears_in_the_thought_panel() {
    let mut f = console();
    f.start();
    f.events().send(UiEvent::Runtime(Event {
        at: Instant::now(),
        kind: EventKind::Thought {
            step: 7,
            text: "宝箱在左边，先转向".into(),
        },
    }));
    f.until("the thought", |f| {
        f.harness.query_by_label("宝箱在左边，先转向").is_some()
    });
    f.harness.get_by_label("step 7");
}

#[test]
fn take_control_pauses_injection_and_shows_the_banner() {
    let mut f = console();
    f.start();
    f.harness.get_by_label("Take control").click();
    f.harness.run_steps(2);
    f.until("take control", |f| {
        f.commands().contains(&Command::TakeControl)
    });
    f.until("the banner", |f| {
        f.harness
            .query_by_label_contains("OPERATOR HAS CONTROL")
            .is_some()
    });
    // Handing back resumes.
    f.harness.get_by_label("Take control").click();
    f.harness.run_steps(2);
    f.until("hand back", |f| f.commands().contains(&Command::HandBack));
    f.until("the banner gone", |f| {
        f.harness
            .query_by_label_contains("OPERATOR HAS CONTROL")
            .is_none()
    });
}

#[test]
fn injected_action_text_is_sent() {
    let mut f = console();
    f.start();
    f.type_then_click(Role::TextInput, "0 0 0 ; W ; W ; ; ; ;", "Inject action");
    f.until("the injection", |f| {
        f.commands()
            .contains(&Command::InjectAction("0 0 0 ; W ; W ; ; ; ;".into()))
    });
}

#[test]
fn emergency_stop_and_pause_reach_the_runtime() {
    let mut f = console();
    f.start();
    f.harness.get_by_label("Pause").click();
    f.harness.run_steps(2);
    f.until("pause", |f| f.commands().contains(&Command::Pause));
    f.harness.get_by_label("EMERGENCY STOP").click();
    f.harness.run_steps(2);
    f.until("emergency stop", |f| {
        f.commands().contains(&Command::EmergencyStop)
    });
    f.until("stopped", |f| !f.harness.state().is_running());
}

#[test]
fn the_locale_switch_changes_the_labels() {
    let mut f = console();
    assert!(f.harness.query_by_label("Start").is_some());
    f.harness.get_by_label("Language").click();
    f.harness.run_steps(2);
    f.harness.get_by_label("简体中文").click();
    f.harness.run_steps(2);
    assert!(f.harness.query_by_label("开始").is_some());
    assert!(f.harness.query_by_label("Start").is_none());
    f.harness.get_by_label("语言").click();
    f.harness.run_steps(2);
    f.harness.get_by_label("日本語").click();
    f.harness.run_steps(2);
    assert!(f.harness.query_by_label("開始").is_some());
    assert_eq!(f.harness.state().settings().lang, lumine_ui::Lang::Japanese);
}

#[test]
fn closing_stops_the_run() {
    let mut f = console();
    f.start();
    f.harness.state_mut().shutdown();
    assert!(f.commands().contains(&Command::Stop));
}

#[test]
fn first_run_starts_by_itself() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = ConsoleApp::new(
        Box::new(FakeLauncher {
            seen: Arc::clone(&seen),
        }),
        SettingsStore::at(Some(dir.path().join("console.ron"))),
        false,
    );
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1600.0, 900.0))
        .build_ui_state(|ui, app: &mut ConsoleApp| app.show(ui), app);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen
        .lock()
        .expect("lock")
        .commands
        .contains(&Command::Start)
    {
        assert!(Instant::now() < deadline, "the first run did not start");
        std::thread::sleep(Duration::from_millis(5));
        harness.run_steps(1);
    }
    assert_eq!(seen.lock().expect("lock").requests.len(), 1);
    // And it wrote its settings: the next start is not a first run.
    assert!(dir.path().join("console.ron").exists());
}
