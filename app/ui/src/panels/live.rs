//! The live view: the newest frame the agent saw, with the mouse motion of
//! the chunk being played as an arrow and the keys held right now as chips.

use egui::{Color32, RichText, Stroke};

use crate::app::ConsoleApp;

/// Share of the central panel's height the live view may take.
const HEIGHT_SHARE: f32 = 0.5;

pub(crate) fn draw(app: &mut ConsoleApp, ui: &mut egui::Ui) {
    let tr = &app.tr;
    ui.heading(tr.tr("live-view"));
    let Some((_, frame)) = app.model.frame.clone() else {
        ui.label(RichText::new(tr.tr("no-frame")).weak());
        return;
    };
    let texture = app
        .textures
        .live(ui.ctx(), app.model.frame_serial, &frame)
        .clone();
    let aspect = frame.height.max(1) as f32 / frame.width.max(1) as f32;
    let max_h = ui.available_height() * HEIGHT_SHARE;
    let mut width = ui.available_width();
    if width * aspect > max_h {
        width = max_h / aspect;
    }
    let size = egui::vec2(width, width * aspect);
    let response = ui.add(egui::Image::new(&texture).fit_to_exact_size(size));
    let rect = response.rect;
    let painter = ui.painter_at(rect);

    // Mouse motion of the current chunk, scaled from frame pixels to the view.
    let (dx, dy) = app.model.mouse_px;
    if dx != 0 || dy != 0 {
        let scale = rect.width() / frame.width.max(1) as f32;
        let from = rect.center();
        let to = from + egui::vec2(dx as f32, dy as f32) * scale * 3.0;
        painter.arrow(
            from,
            to - from,
            Stroke::new(3.0, Color32::from_rgb(255, 220, 0)),
        );
        painter.text(
            to + egui::vec2(6.0, 0.0),
            egui::Align2::LEFT_CENTER,
            format!("{} {dx},{dy}", tr.tr("mouse")),
            egui::FontId::monospace(13.0),
            Color32::from_rgb(255, 220, 0),
        );
    }

    // Keys held now, bottom-left.
    let mut x = rect.left() + 8.0;
    let y = rect.bottom() - 28.0;
    for key in app.model.held.keys() {
        let label = key.to_string();
        let galley = painter.layout_no_wrap(label, egui::FontId::monospace(15.0), Color32::BLACK);
        let chip =
            egui::Rect::from_min_size(egui::pos2(x, y), galley.size() + egui::vec2(12.0, 6.0));
        painter.rect_filled(chip, 4.0, Color32::from_rgb(120, 220, 140));
        painter.galley(chip.min + egui::vec2(6.0, 3.0), galley, Color32::BLACK);
        x = chip.right() + 6.0;
    }
}
