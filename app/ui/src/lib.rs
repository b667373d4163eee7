//! The operator console (eframe/egui on wgpu): a thin view over the runtime.
//!
//! The console receives the runtime's events through a bounded channel that
//! wakes the UI ([`backend::ui_channel`]) and sends [`lumine_runtime::Command`]s
//! back; launching a run, listing windows and the folder dialog happen on a
//! [`Launcher`]'s threads, never on the UI thread. The panels are functions
//! of a pure model of the run ([`RunModel`]), which folds the events in.
//!
//! The binary wires the real launcher (model, window, runtime) in
//! `lumine-cli`; tests drive [`ConsoleApp`] with a fake one through
//! `egui_kittest`.

mod app;
pub mod backend;
mod fonts;
pub mod locale;
pub mod model;
mod panels;
pub mod settings;
mod textures;

pub use app::ConsoleApp;
pub use backend::{
    LaunchRequest, Launcher, Mode, ModelChoice, Provider, RunInfo, TargetChoice, UiEvent, UiSender,
    WindowChoice, ui_channel,
};
pub use locale::{Lang, Translator};
pub use model::{Phase, RunModel};
pub use settings::{ConsoleSettings, SettingsStore};

/// Window title of the console (tests and window managers find it by this).
pub const WINDOW_TITLE: &str = "Lumine Console";

/// Opens the console window and runs it until it is closed; the run, if
/// any, is stopped (every key released) before this returns.
///
/// # Errors
/// The window or its renderer could not be created (no display, no GPU
/// adapter and no software one).
pub fn run_native(
    launcher: Box<dyn Launcher>,
    store: SettingsStore,
    autostart: bool,
    size: (f32, f32),
) -> Result<(), eframe::Error> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(WINDOW_TITLE)
            .with_app_id("lumine-console")
            .with_inner_size([size.0, size.1])
            .with_min_inner_size([960.0, 600.0]),
        ..eframe::NativeOptions::default()
    };
    eframe::run_native(
        WINDOW_TITLE,
        options,
        Box::new(move |_cc| Ok(Box::new(ConsoleApp::new(launcher, store, autostart)))),
    )
}
