//! [`ConsoleApp`]: the window. It drains the UI channel, folds events into
//! the [`RunModel`], draws the panels and turns clicks into [`Command`]s.
//! Nothing here blocks: launching, listing windows and the folder dialog
//! run on the launcher's threads.

use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use lumine_runtime::{COMMAND_CAPACITY, Command};

use crate::backend::{Launcher, ModelChoice, UiEvent, UiSender, WindowChoice, ui_channel};
use crate::locale::{Lang, Translator};
use crate::model::{Phase, RunModel};
use crate::panels;
use crate::settings::{ConsoleSettings, SettingsStore};
use crate::textures::Textures;

/// Most events folded in per frame (the rest wait for the next frame, so a
/// burst never freezes the UI).
const EVENTS_PER_FRAME: usize = 4096;

/// How long closing waits for the run to release everything and end.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// The run the console is driving.
struct Session {
    commands: Sender<Command>,
    thread: JoinHandle<()>,
}

/// Text the operator is typing.
#[derive(Debug, Default)]
pub(crate) struct Drafts {
    /// The instruction box.
    pub instruction: String,
    /// The action-injection box.
    pub inject: String,
}

/// The operator console.
pub struct ConsoleApp {
    pub(crate) tr: Translator,
    pub(crate) settings: ConsoleSettings,
    store: SettingsStore,
    launcher: Box<dyn Launcher>,
    ui_tx: UiSender,
    ui_rx: Receiver<UiEvent>,
    ctx_cell: Arc<OnceLock<egui::Context>>,
    session: Option<Session>,
    pub(crate) model: RunModel,
    pub(crate) textures: Textures,
    pub(crate) drafts: Drafts,
    pub(crate) windows: Option<Result<Vec<WindowChoice>, String>>,
    pub(crate) warning: Option<String>,
    autostart: bool,
    fonts_installed: bool,
}

impl std::fmt::Debug for ConsoleApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleApp")
            .field("settings", &self.settings)
            .field("phase", self.model.phase())
            .finish_non_exhaustive()
    }
}

/// What the UI asked for this frame (collected while drawing, acted on after).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Action {
    Start,
    Pause,
    Stop,
    EmergencyStop,
    SendInstruction,
    TakeControl(bool),
    Inject,
    RefreshWindows,
    PickModelFolder,
    SetLang(Lang),
}

impl ConsoleApp {
    /// A console over `launcher`, with settings from `store`. On the first
    /// run (no settings file) or with `autostart`, it starts the agent on
    /// the current choice (the embedded default) as soon as it is shown.
    #[must_use]
    pub fn new(launcher: Box<dyn Launcher>, store: SettingsStore, autostart: bool) -> ConsoleApp {
        let loaded = store.load();
        let ctx_cell: Arc<OnceLock<egui::Context>> = Arc::new(OnceLock::new());
        let wake_cell = Arc::clone(&ctx_cell);
        // Events come at up to ~40 per second (chunks, frames, context); one
        // repaint per batch, at most `max_ui_fps` a second, keeps a software
        // renderer (no GPU) from taking the cores the model needs.
        let settings = loaded.settings;
        let repaint_every = Duration::from_secs_f64(1.0 / f64::from(settings.max_ui_fps.max(1)));
        let (ui_tx, ui_rx) = ui_channel(Arc::new(move || {
            if let Some(ctx) = wake_cell.get() {
                ctx.request_repaint_after(repaint_every);
            }
        }));
        ConsoleApp {
            tr: Translator::new(settings.lang),
            drafts: Drafts {
                instruction: settings.instruction.clone(),
                inject: String::new(),
            },
            settings,
            store,
            launcher,
            ui_tx,
            ui_rx,
            ctx_cell,
            session: None,
            model: RunModel::default(),
            textures: Textures::default(),
            windows: None,
            warning: loaded.warning,
            autostart: autostart || loaded.first_run,
            fonts_installed: false,
        }
    }

    /// The settings in effect.
    #[must_use]
    pub fn settings(&self) -> &ConsoleSettings {
        &self.settings
    }

    /// What the console knows about the run.
    #[must_use]
    pub fn run_model(&self) -> &RunModel {
        &self.model
    }

    /// Draws the console into `ui` (the whole window) and acts on what the
    /// operator did.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        let _ = self.ctx_cell.set(ctx.clone());
        if !self.fonts_installed {
            ctx.set_fonts(crate::fonts::definitions());
            self.fonts_installed = true;
        }
        self.drain_events();
        let now = Instant::now();
        self.model.expire(now);
        if std::mem::take(&mut self.autostart) {
            self.act(Action::Start);
        }
        let mut actions = Vec::new();
        panels::draw(self, ui, now, &mut actions);
        for action in actions {
            self.act(action);
        }
        self.reap_session();
        // Keep animations (evictions leaving, the FPS figure) moving while a
        // run is alive; events wake the UI anyway.
        if self.model.phase().is_active() {
            ctx.request_repaint_after(Duration::from_secs_f64(
                1.0 / f64::from(self.settings.max_ui_fps.max(1)),
            ));
        }
    }

    fn drain_events(&mut self) {
        for _ in 0..EVENTS_PER_FRAME {
            let Ok(event) = self.ui_rx.try_recv() else {
                break;
            };
            match event {
                UiEvent::Windows(list) => self.windows = Some(list),
                UiEvent::ModelPicked(dir) => {
                    self.settings.remember_model(dir);
                    self.save_settings();
                }
                other => self.model.apply(other),
            }
        }
    }

    fn send(&self, command: Command) {
        if let Some(session) = &self.session {
            // The channel is bounded; a full one means the run is not
            // listening (it is ending), so dropping is right.
            let _ = session.commands.try_send(command);
        }
    }

    pub(crate) fn act(&mut self, action: Action) {
        match action {
            Action::Start => self.start(),
            Action::Pause => self.send(Command::Pause),
            Action::Stop => self.send(Command::Stop),
            Action::EmergencyStop => self.send(Command::EmergencyStop),
            Action::SendInstruction => {
                let text = self.drafts.instruction.trim().to_owned();
                self.settings.instruction.clone_from(&text);
                self.send(Command::SetInstruction((!text.is_empty()).then_some(text)));
                self.save_settings();
            }
            Action::TakeControl(take) => self.send(if take {
                Command::TakeControl
            } else {
                Command::HandBack
            }),
            Action::Inject => {
                let text = self.drafts.inject.trim().to_owned();
                if !text.is_empty() {
                    self.send(Command::InjectAction(text));
                }
            }
            Action::RefreshWindows => {
                self.windows = None;
                self.launcher.list_windows(self.ui_tx.clone());
            }
            Action::PickModelFolder => pick_model_folder(self.ui_tx.clone()),
            Action::SetLang(lang) => {
                self.settings.lang = lang;
                self.tr = Translator::new(lang);
                self.save_settings();
            }
        }
    }

    /// Start: resume a paused run, or launch a new one.
    fn start(&mut self) {
        if self.session.is_some() && self.model.phase().is_active() {
            self.send(Command::Start);
            return;
        }
        self.reap_session();
        if let Some(old) = self.session.take() {
            // A run that has ended but whose thread is still finishing.
            let _ = old.commands.try_send(Command::Stop);
        }
        self.settings.instruction = self.drafts.instruction.trim().to_owned();
        self.save_settings();
        let request = self.settings.launch_request();
        let (commands, command_rx) = crossbeam_channel::bounded(COMMAND_CAPACITY);
        // The run waits for this before acting (it starts paused).
        let _ = commands.try_send(Command::Start);
        self.model.launching();
        self.textures.clear();
        match self
            .launcher
            .launch(request, command_rx, self.ui_tx.clone())
        {
            Ok(thread) => self.session = Some(Session { commands, thread }),
            Err(err) => self.model.apply(UiEvent::LaunchFailed(format!(
                "cannot start the agent's thread: {err}"
            ))),
        }
    }

    fn reap_session(&mut self) {
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.thread.is_finished())
            && let Some(session) = self.session.take()
        {
            let _ = session.thread.join();
        }
    }

    fn save_settings(&mut self) {
        if let Err(err) = self.store.save(&self.settings) {
            self.warning = Some(format!("cannot save the settings: {err}"));
        }
    }

    /// Stops the run (every key released) and saves the settings; waits up
    /// to a few seconds for the run to end. Called when the window closes.
    pub fn shutdown(&mut self) {
        self.settings.instruction = self.drafts.instruction.trim().to_owned();
        self.save_settings();
        if let Some(session) = self.session.take() {
            eprintln!("console: closing: stopping the run");
            let _ = session.commands.try_send(Command::Stop);
            let deadline = Instant::now() + SHUTDOWN_WAIT;
            while !session.thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if session.thread.is_finished() {
                let _ = session.thread.join();
            }
        }
    }

    /// True while a run is launching or alive.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.model.phase().is_active()
    }

    /// The phase the status bar shows.
    #[must_use]
    pub fn phase(&self) -> &Phase {
        self.model.phase()
    }

    pub(crate) fn model_label(&self) -> String {
        match &self.settings.model {
            ModelChoice::Bundled => self.tr.tr("model-bundled"),
            ModelChoice::Folder(dir) => dir.display().to_string(),
        }
    }
}

impl Drop for ConsoleApp {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl eframe::App for ConsoleApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn on_exit(&mut self) {
        eprintln!("console: window closed");
        self.shutdown();
    }
}

/// The folder dialog, on a thread of its own (it blocks until closed).
fn pick_model_folder(events: UiSender) {
    let spawned = std::thread::Builder::new()
        .name("lumine-ui-dialog".to_owned())
        .spawn(move || {
            if let Some(dir) = rfd::FileDialog::new().pick_folder() {
                events.send(UiEvent::ModelPicked(dir));
            }
        });
    if let Err(err) = spawned {
        eprintln!("cannot open the folder dialog: {err}");
    }
}
