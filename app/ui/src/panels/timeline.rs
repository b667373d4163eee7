//! The action-chunk timeline: the last few seconds, one row per key that was
//! held and one for the mouse, one 33 ms cell per chunk; the chunk being
//! played is outlined, deadline misses are red.

use std::collections::BTreeSet;
use std::time::Instant;

use egui::{Color32, Stroke};
use lumine_action::Key;

use crate::app::ConsoleApp;

/// Cells shown (3 s at 30 Hz).
const CELLS: usize = 90;
/// Height of one row.
const ROW_H: f32 = 16.0;
/// Width of the row labels.
const LABEL_W: f32 = 64.0;

pub(crate) fn draw(app: &ConsoleApp, ui: &mut egui::Ui, now: Instant) {
    let tr = &app.tr;
    ui.heading(tr.tr("chunks"));
    let chunks: Vec<_> = app
        .model
        .chunks
        .iter()
        .skip(app.model.chunks.len().saturating_sub(CELLS))
        .collect();
    let keys: BTreeSet<Key> = chunks.iter().flat_map(|c| c.keys.keys().to_vec()).collect();
    let rows = keys.len() + 1;
    let width = ui.available_width();
    let (rect, _) = ui.allocate_exact_size(
        egui::vec2(width, ROW_H * rows as f32 + 4.0),
        egui::Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    painter.rect_filled(rect, 2.0, visuals.extreme_bg_color);
    let cell_w = ((width - LABEL_W) / CELLS as f32).max(1.0);
    let text = visuals.text_color();
    let font = egui::FontId::monospace(11.0);
    let row_top = |row: usize| rect.top() + 2.0 + row as f32 * ROW_H;
    for (row, key) in keys.iter().enumerate() {
        painter.text(
            egui::pos2(rect.left() + 4.0, row_top(row) + ROW_H / 2.0),
            egui::Align2::LEFT_CENTER,
            key.to_string(),
            font.clone(),
            text,
        );
    }
    painter.text(
        egui::pos2(rect.left() + 4.0, row_top(keys.len()) + ROW_H / 2.0),
        egui::Align2::LEFT_CENTER,
        tr.tr("mouse"),
        font,
        text,
    );
    let newest = chunks.len().saturating_sub(1);
    // The newest chunk is "being played" while it is younger than one chunk.
    let playing = chunks.last().is_some_and(|c| {
        now.saturating_duration_since(c.at).as_secs_f64() * 1e3 < lumine_action::CHUNK_MS
    });
    let max_mouse = chunks
        .iter()
        .map(|c| c.mouse_px.0.abs().max(c.mouse_px.1.abs()))
        .max()
        .unwrap_or(0)
        .max(1) as f32;
    for (i, cell) in chunks.iter().enumerate() {
        let x = rect.left() + LABEL_W + i as f32 * cell_w;
        let column = egui::Rect::from_min_size(
            egui::pos2(x, rect.top() + 2.0),
            egui::vec2(cell_w - 1.0, ROW_H * rows as f32),
        );
        if cell.missed {
            painter.rect_filled(
                column,
                0.0,
                Color32::from_rgba_unmultiplied(220, 40, 40, 160),
            );
            continue;
        }
        for (row, key) in keys.iter().enumerate() {
            if cell.keys.keys().contains(key) {
                let r = egui::Rect::from_min_size(
                    egui::pos2(x, row_top(row) + 2.0),
                    egui::vec2(cell_w - 1.0, ROW_H - 4.0),
                );
                painter.rect_filled(r, 1.0, Color32::from_rgb(80, 180, 110));
            }
        }
        let (dx, dy) = cell.mouse_px;
        if dx != 0 || dy != 0 {
            let strength = dx.abs().max(dy.abs()) as f32 / max_mouse;
            let h = (ROW_H - 4.0) * strength.clamp(0.15, 1.0);
            let r = egui::Rect::from_min_size(
                egui::pos2(x, row_top(keys.len()) + ROW_H - 2.0 - h),
                egui::vec2(cell_w - 1.0, h),
            );
            painter.rect_filled(r, 1.0, Color32::from_rgb(230, 190, 40));
        }
        if i == newest && playing {
            painter.rect_stroke(
                column,
                0.0,
                Stroke::new(2.0, Color32::WHITE),
                egui::StrokeKind::Outside,
            );
        }
    }
    if app.model.misses > 0 {
        ui.colored_label(
            super::DANGER,
            format!("{}: {}", tr.tr("deadline-miss"), app.model.misses),
        );
    }
}
