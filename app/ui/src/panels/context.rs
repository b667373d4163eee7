//! The context window as the model sees it this step: the system prompt
//! (collapsed), the instruction or latest thought, then the frames in order,
//! each with its action and token count; steps being evicted fade out.

use std::time::Instant;

use egui::{Color32, RichText};
use fluent_bundle::FluentValue;

use crate::app::ConsoleApp;
use crate::model::EVICTED_SHOWN;

/// Thumbnail size in the strip.
const THUMB: egui::Vec2 = egui::vec2(96.0, 54.0);

pub(crate) fn draw(app: &mut ConsoleApp, ui: &mut egui::Ui, now: Instant) {
    let tr = &app.tr;
    let m = &app.model;
    ui.heading(tr.tr("context"));
    let total = match m.info.as_ref().and_then(|i| i.token_budget) {
        Some(budget) => tr.tr_args(
            "tokens-of-budget",
            &[
                ("tokens", FluentValue::from(m.tokens)),
                ("budget", FluentValue::from(budget)),
            ],
        ),
        None => tr.tr_args("tokens", &[("tokens", FluentValue::from(m.tokens))]),
    };
    ui.label(RichText::new(total).strong());
    if let Some(budget) = m.info.as_ref().and_then(|i| i.token_budget) {
        ui.add(egui::ProgressBar::new(
            (m.tokens as f32 / budget.max(1) as f32).min(1.0),
        ));
    }
    if let Some(info) = &m.info {
        egui::CollapsingHeader::new(tr.tr("system-prompt"))
            .id_salt("system-prompt")
            .default_open(false)
            .show(ui, |ui| {
                ui.label(RichText::new(&info.system_prompt).monospace().small());
            });
    }
    ui.label(RichText::new(tr.tr("goal")).weak());
    ui.label(m.goal.clone().unwrap_or_else(|| tr.tr("no-goal")));
    ui.add_space(4.0);

    let ctx = ui.ctx().clone();
    let leaving: Vec<(u64, f32)> = m
        .evicted
        .iter()
        .filter(|e| !m.window.iter().any(|w| w.step == e.step))
        .map(|e| {
            let age = now.saturating_duration_since(e.at).as_secs_f32();
            (
                e.step,
                1.0 - (age / EVICTED_SHOWN.as_secs_f32()).clamp(0.0, 1.0),
            )
        })
        .collect();
    let pending = tr.tr("pending");
    let evicted_label = tr.tr("evicted");
    let mut rows: Vec<(u64, Option<String>, Option<usize>, f32)> = leaving
        .iter()
        .map(|(step, alpha)| (*step, None, None, *alpha))
        .collect();
    rows.extend(m.window.iter().map(|w| {
        (
            w.step,
            Some(w.answer.clone().unwrap_or_else(|| pending.clone())),
            Some(w.tokens),
            1.0,
        )
    }));
    let frames = m.frames.clone();
    for (step, answer, tokens, alpha) in rows {
        ui.horizontal(|ui| {
            ui.set_opacity(alpha.max(0.15));
            match frames.get(&step) {
                Some(frame) => {
                    let texture = app.textures.thumb(&ctx, step, frame).clone();
                    ui.add(egui::Image::new(&texture).fit_to_exact_size(THUMB));
                }
                None => {
                    ui.allocate_space(THUMB);
                }
            }
            ui.vertical(|ui| {
                let head = tr.tr_args("step", &[("step", FluentValue::from(step))]);
                match tokens {
                    Some(tokens) => ui.label(
                        RichText::new(format!(
                            "{head} · {}",
                            tr.tr_args("tokens", &[("tokens", FluentValue::from(tokens))])
                        ))
                        .small(),
                    ),
                    None => ui.label(
                        RichText::new(format!("{head} · {evicted_label}"))
                            .small()
                            .color(Color32::from_rgb(200, 120, 60)),
                    ),
                };
                if let Some(answer) = answer {
                    ui.label(RichText::new(display_answer(&answer)).monospace().small());
                }
            });
        });
    }
    let keep: Vec<u64> = frames.keys().copied().collect();
    app.textures.retain_thumbs(|step| keep.contains(&step));
}

/// The answer without the model's marker tokens, for reading.
fn display_answer(answer: &str) -> String {
    answer
        .replace("<|thought_start|>", "‹")
        .replace("<|thought_end|>", "› ")
        .replace("<|action_start|>", "")
        .replace("<|action_end|>", "")
}
