//! The panels, each a function of the app's state and a `Ui`. They only
//! draw and collect [`Action`]s; `ConsoleApp::act` carries them out.

use std::time::Instant;

use egui::{Color32, RichText};
use fluent_bundle::FluentValue;
use lumine_runtime::RunState;

use crate::app::{Action, ConsoleApp};
use crate::backend::{Mode, ModelChoice, Provider, TargetChoice};
use crate::locale::Lang;
use crate::model::{Phase, pause_reason_id, stop_reason_id};

mod context;
mod latency;
mod live;
mod timeline;

/// Red of the emergency stop and errors.
pub(crate) const DANGER: Color32 = Color32::from_rgb(200, 30, 30);
/// Amber of the operator banner.
const OPERATOR: Color32 = Color32::from_rgb(230, 160, 20);

/// Draws the whole console.
pub(crate) fn draw(app: &mut ConsoleApp, ui: &mut egui::Ui, now: Instant, out: &mut Vec<Action>) {
    egui::Panel::top("top-bar").show(ui, |ui| top_bar(app, ui, out));
    egui::Panel::bottom("status-bar").show(ui, |ui| status_bar(app, ui, now));
    egui::Panel::left("controls")
        .resizable(true)
        .default_size(300.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| controls(app, ui, out));
        });
    egui::Panel::right("mind")
        .resizable(true)
        .default_size(380.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                thought(app, ui, now);
                ui.separator();
                context::draw(app, ui, now);
            });
        });
    egui::CentralPanel::default().show(ui, |ui| {
        banners(app, ui);
        live::draw(app, ui);
        ui.separator();
        timeline::draw(app, ui, now);
        ui.separator();
        latency::draw(app, ui);
    });
}

fn top_bar(app: &mut ConsoleApp, ui: &mut egui::Ui, out: &mut Vec<Action>) {
    let tr = &app.tr;
    ui.horizontal(|ui| {
        ui.heading(tr.tr("app-title"));
        ui.separator();
        let phase = app.model.phase().clone();
        let paused = matches!(phase, Phase::Run(RunState::Paused(_) | RunState::Ready));
        let running = matches!(phase, Phase::Run(RunState::Running));
        let start_label = if paused && app.is_running() {
            tr.tr("resume")
        } else {
            tr.tr("start")
        };
        if ui
            .add_enabled(!running, egui::Button::new(start_label))
            .clicked()
        {
            out.push(Action::Start);
        }
        if ui
            .add_enabled(running, egui::Button::new(tr.tr("pause")))
            .clicked()
        {
            out.push(Action::Pause);
        }
        if ui
            .add_enabled(app.is_running(), egui::Button::new(tr.tr("stop")))
            .clicked()
        {
            out.push(Action::Stop);
        }
        ui.separator();
        // Always visible and always enabled: pressing it with nothing
        // running does no harm, and it must never be greyed out in a hurry.
        let key = app
            .model
            .info
            .as_ref()
            .map_or_else(|| "Pause".to_owned(), |i| i.emergency_key.clone());
        let stop = egui::Button::new(
            RichText::new(tr.tr("emergency-stop"))
                .strong()
                .color(Color32::WHITE),
        )
        .fill(DANGER);
        if ui
            .add(stop)
            .on_hover_text(tr.tr_args("emergency-stop-hint", &[("key", FluentValue::from(key))]))
            .clicked()
        {
            out.push(Action::EmergencyStop);
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            let mut lang = app.settings.lang;
            egui::ComboBox::new("language", tr.tr("language"))
                .selected_text(lang.native_name())
                .show_ui(ui, |ui| {
                    for l in Lang::ALL {
                        ui.selectable_value(&mut lang, l, l.native_name());
                    }
                });
            if lang != app.settings.lang {
                out.push(Action::SetLang(lang));
            }
        });
    });
}

fn banners(app: &ConsoleApp, ui: &mut egui::Ui) {
    let tr = &app.tr;
    if app.model.operator_control() {
        egui::Frame::new()
            .fill(OPERATOR)
            .inner_margin(6.0)
            .show(ui, |ui| {
                ui.label(
                    RichText::new(tr.tr("operator-banner"))
                        .strong()
                        .color(Color32::BLACK),
                );
            });
    }
    let error = match app.model.phase() {
        Phase::LaunchFailed(message) => Some(message.clone()),
        Phase::Run(RunState::Failed(message)) => Some(message.clone()),
        _ => None,
    };
    if let Some(message) = error {
        egui::Frame::new()
            .fill(DANGER)
            .inner_margin(6.0)
            .show(ui, |ui| {
                ui.label(
                    RichText::new(tr.tr_args(
                        "error-banner",
                        &[("message", FluentValue::from(message.clone()))],
                    ))
                    .strong()
                    .color(Color32::WHITE),
                );
                ui.label(RichText::new(tr.tr(help_for(&message))).color(Color32::WHITE));
            });
    }
    if let Some(warning) = &app.warning {
        ui.colored_label(OPERATOR, warning);
    }
}

/// Which advice fits an error message.
fn help_for(message: &str) -> &'static str {
    let lower = message.to_lowercase();
    if lower.contains("manifest") || lower.contains("no model") || lower.contains("model folder") {
        "help-no-model"
    } else if lower.contains("provider") || lower.contains("cuda") || lower.contains("tensorrt") {
        "help-provider"
    } else if lower.contains("window") || lower.contains("capture") || lower.contains("display") {
        "help-capture"
    } else {
        "help-generic"
    }
}

fn controls(app: &mut ConsoleApp, ui: &mut egui::Ui, out: &mut Vec<Action>) {
    let idle = !app.is_running();
    let tr = &app.tr;
    let s = &mut app.settings;

    ui.heading(tr.tr("instruction"));
    let edit = ui.add(
        egui::TextEdit::multiline(&mut app.drafts.instruction)
            .hint_text(tr.tr("instruction-hint"))
            .desired_rows(2)
            .desired_width(f32::INFINITY),
    );
    let enter =
        edit.has_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter) && !i.modifiers.shift);
    if enter {
        // Enter sends; the newline it typed is not part of the instruction.
        let trimmed = app.drafts.instruction.trim_end_matches('\n').to_owned();
        app.drafts.instruction = trimmed;
    }
    if ui.button(tr.tr("instruction-send")).clicked() || enter {
        out.push(Action::SendInstruction);
    }
    ui.separator();

    let operator = app.model.operator_control();
    let mut take = operator;
    if ui
        .add_enabled(
            app.model.phase().is_active(),
            egui::Checkbox::new(&mut take, tr.tr("take-control")),
        )
        .changed()
    {
        out.push(Action::TakeControl(take));
    }
    ui.horizontal(|ui| {
        ui.add(
            egui::TextEdit::singleline(&mut app.drafts.inject)
                .hint_text(tr.tr("inject-hint"))
                .font(egui::TextStyle::Monospace)
                .desired_width(190.0),
        );
        if ui
            .add_enabled(
                app.model.phase().is_active(),
                egui::Button::new(tr.tr("inject")),
            )
            .clicked()
        {
            out.push(Action::Inject);
        }
    });
    ui.separator();

    ui.add_enabled_ui(idle, |ui| {
        ui.heading(tr.tr("settings"));
        ui.label(tr.tr("target"));
        let arena = matches!(s.target, TargetChoice::PracticeArena);
        if ui.radio(arena, tr.tr("target-arena")).clicked() {
            s.target = TargetChoice::PracticeArena;
        }
        ui.horizontal(|ui| {
            if ui.radio(!arena, tr.tr("target-window")).clicked() && arena {
                s.target = TargetChoice::Window {
                    title: String::new(),
                };
            }
            if ui.button(tr.tr("refresh-windows")).clicked() {
                out.push(Action::RefreshWindows);
            }
        });
        if let TargetChoice::Window { title } = &mut s.target {
            ui.text_edit_singleline(title);
        }
        match &app.windows {
            None => {}
            Some(Err(err)) => {
                ui.colored_label(DANGER, err);
            }
            Some(Ok(list)) if list.is_empty() => {
                ui.label(tr.tr("no-windows"));
            }
            Some(Ok(list)) => {
                let thumbs = app.textures.window_thumbs(ui.ctx(), list);
                for (window, thumb) in list.iter().zip(thumbs) {
                    ui.horizontal(|ui| {
                        if let Some(t) = thumb {
                            ui.add(egui::Image::new(&t).fit_to_exact_size(egui::vec2(64.0, 36.0)));
                        }
                        let label = format!("{} ({}x{})", window.title, window.size.0, window.size.1);
                        let chosen = matches!(&s.target, TargetChoice::Window { title } if *title == window.title);
                        if ui.selectable_label(chosen, label).clicked() {
                            s.target = TargetChoice::Window {
                                title: window.title.clone(),
                            };
                        }
                    });
                }
            }
        }
        ui.add_space(6.0);

        ui.label(tr.tr("model"));
        if ui
            .radio(matches!(s.model, ModelChoice::Bundled), tr.tr("model-bundled"))
            .clicked()
        {
            s.model = ModelChoice::Bundled;
        }
        if let ModelChoice::Folder(dir) = &s.model {
            ui.label(RichText::new(dir.display().to_string()).monospace());
        }
        if ui.button(tr.tr("model-folder")).clicked() {
            out.push(Action::PickModelFolder);
        }
        if !s.recent_models.is_empty() {
            let mut picked = None;
            egui::CollapsingHeader::new(tr.tr("model-recent"))
                .id_salt("recent-models")
                .show(ui, |ui| {
                    for dir in &s.recent_models {
                        if ui.selectable_label(false, dir.display().to_string()).clicked() {
                            picked = Some(dir.clone());
                        }
                    }
                });
            if let Some(dir) = picked {
                s.remember_model(dir);
            }
        }
        ui.add_space(6.0);

        ui.horizontal(|ui| {
            egui::ComboBox::new("provider", tr.tr("provider"))
                .selected_text(s.provider.name())
                .show_ui(ui, |ui| {
                    for p in Provider::ALL {
                        ui.selectable_value(&mut s.provider, p, p.name());
                    }
                });
            let device = ui.label(tr.tr("device"));
            ui.add_enabled(
                s.provider != Provider::Cpu,
                egui::DragValue::new(&mut s.device).range(0..=15),
            )
            .labelled_by(device.id);
        });
        ui.label(tr.tr("mode"));
        ui.radio_value(&mut s.mode, Mode::Instruction, tr.tr("mode-instruction"));
        ui.radio_value(&mut s.mode, Mode::Reasoning, tr.tr("mode-reasoning"));
        ui.add(egui::Slider::new(&mut s.history_frames, 1..=20).text(tr.tr("history")));
        ui.checkbox(&mut s.record, tr.tr("record"));
        if s.record {
            let dir = s
                .record_dir
                .clone()
                .or_else(crate::settings::default_record_dir)
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            ui.label(format!("{}: {dir}", tr.tr("record-folder")));
        }
    });
}

fn thought(app: &ConsoleApp, ui: &mut egui::Ui, now: Instant) {
    let tr = &app.tr;
    ui.heading(tr.tr("thought"));
    match &app.model.thought {
        Some(t) => {
            ui.label(
                RichText::new(tr.tr_args("step", &[("step", FluentValue::from(t.step))])).weak(),
            );
            ui.label(RichText::new(&t.text).size(22.0).strong());
        }
        None => {
            ui.label(RichText::new(tr.tr("no-thought")).weak());
        }
    }
    if !app.model.thoughts.is_empty() {
        egui::CollapsingHeader::new(tr.tr("thought-history"))
            .id_salt("thought-history")
            .default_open(true)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("thought-history-scroll")
                    .max_height(160.0)
                    .show(ui, |ui| {
                        for t in app.model.thoughts.iter().rev() {
                            let ago = now.saturating_duration_since(t.at).as_secs_f64();
                            ui.label(format!(
                                "{}  -{ago:.1}s  {}",
                                tr.tr_args("step", &[("step", FluentValue::from(t.step))]),
                                t.text
                            ));
                        }
                    });
            });
    }
}

fn status_bar(app: &ConsoleApp, ui: &mut egui::Ui, now: Instant) {
    let tr = &app.tr;
    let m = &app.model;
    ui.horizontal(|ui| {
        let (text, color) = match m.phase() {
            Phase::Idle => (tr.tr("state-idle"), ui.visuals().text_color()),
            Phase::Launching => (tr.tr("state-launching"), ui.visuals().text_color()),
            Phase::LaunchFailed(message) => (
                tr.tr_args(
                    "state-error",
                    &[("message", FluentValue::from(message.clone()))],
                ),
                DANGER,
            ),
            Phase::Run(state) => match state {
                RunState::Ready => (tr.tr("state-ready"), ui.visuals().text_color()),
                RunState::Running => (tr.tr("state-running"), Color32::from_rgb(40, 170, 70)),
                RunState::Paused(reason) => {
                    let (id, detail) = pause_reason_id(reason);
                    let reason = tr.tr_args(
                        id,
                        &[("detail", FluentValue::from(detail.unwrap_or("").to_owned()))],
                    );
                    (
                        tr.tr_args("state-paused", &[("reason", FluentValue::from(reason))]),
                        OPERATOR,
                    )
                }
                RunState::OperatorControl => (tr.tr("state-operator"), OPERATOR),
                RunState::Stopped(reason) => (
                    tr.tr_args(
                        "state-stopped",
                        &[("reason", FluentValue::from(tr.tr(stop_reason_id(*reason))))],
                    ),
                    ui.visuals().text_color(),
                ),
                RunState::Failed(message) => (
                    tr.tr_args(
                        "state-error",
                        &[("message", FluentValue::from(message.clone()))],
                    ),
                    DANGER,
                ),
            },
        };
        ui.colored_label(color, RichText::new(text).strong());
        ui.separator();
        ui.label(tr.tr_args(
            "fps",
            &[("fps", FluentValue::from(format!("{:.1}", m.fps(now))))],
        ));
        ui.separator();
        ui.label(tr.tr_args("misses", &[("count", FluentValue::from(m.misses))]));
        ui.separator();
        ui.label(tr.tr_args("steps", &[("count", FluentValue::from(m.steps))]));
        ui.separator();
        match &m.info {
            Some(info) => {
                ui.label(format!(
                    "{} · {} · {}",
                    info.policy, info.provider, info.window
                ));
            }
            None => {
                ui.label(format!(
                    "{} · {}",
                    app.model_label(),
                    app.settings.provider.name()
                ));
            }
        }
        if let Some(notice) = m.notices.back() {
            ui.separator();
            ui.label(RichText::new(notice).weak());
        }
    });
}
