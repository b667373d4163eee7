//! Latency plots: each step's stages (capture, scale, preprocess, vision,
//! prefill, first chunk, whole turn) against the 200 ms step budget, and each
//! chunk's boundary lateness against the 33 ms chunk budget.

use egui_plot::{HLine, Legend, Line, Plot, PlotPoints};

use crate::app::ConsoleApp;

/// One plotted stage: its legend name and how to read it from a step.
type Stage = (&'static str, fn(&lumine_runtime::StageLatency) -> f64);

pub(crate) fn draw(app: &ConsoleApp, ui: &mut egui::Ui) {
    let tr = &app.tr;
    let m = &app.model;
    ui.heading(tr.tr("latency"));
    let height = (ui.available_height() - 24.0).max(80.0);
    ui.columns(2, |cols| {
        let stages: [Stage; 7] = [
            ("capture", |l| l.capture_ms),
            ("scale", |l| l.scale_ms),
            ("preprocess", |l| l.preprocess_ms),
            ("vision", |l| l.vision_ms),
            ("prefill", |l| l.prefill_ms),
            ("first chunk", |l| l.first_chunk_ms),
            ("turn", |l| l.turn_ms),
        ];
        cols[0].label(tr.tr("latency-step"));
        Plot::new("latency-steps")
            .height(height)
            .legend(Legend::default())
            .include_y(0.0)
            .include_y(220.0)
            .allow_scroll(false)
            .show(&mut cols[0], |plot| {
                plot.hline(HLine::new(tr.tr("budget-step"), 200.0));
                for (name, get) in stages {
                    let points: PlotPoints<'_> = m
                        .latencies
                        .iter()
                        .map(|(step, l)| [*step as f64, get(l)])
                        .collect();
                    plot.line(Line::new(name, points));
                }
            });
        cols[1].label(tr.tr("latency-chunk"));
        Plot::new("latency-chunks")
            .height(height)
            .include_y(0.0)
            .include_y(40.0)
            .allow_scroll(false)
            .show(&mut cols[1], |plot| {
                plot.hline(HLine::new(tr.tr("budget-chunk"), lumine_action::CHUNK_MS));
                let points: PlotPoints<'_> = m
                    .chunks
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| !c.missed)
                    .map(|(i, c)| [i as f64, c.late_ms])
                    .collect();
                plot.line(Line::new(tr.tr("latency-chunk"), points));
            });
    });
}
