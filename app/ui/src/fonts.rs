//! Fonts: egui's defaults for Latin text, with Droid Sans Fallback (Apache
//! 2.0, `assets/fonts/`) behind them for Chinese and Japanese. It is compiled
//! in so thoughts and labels in CJK render on any machine.

use std::sync::Arc;

/// The CJK fallback font.
const CJK_FONT: &[u8] = include_bytes!("../../../assets/fonts/DroidSansFallbackFull.ttf");

/// Font definitions: the defaults plus the CJK fallback for every family.
#[must_use]
pub fn definitions() -> egui::FontDefinitions {
    let mut fonts = egui::FontDefinitions::default();
    fonts.font_data.insert(
        "cjk".to_owned(),
        Arc::new(egui::FontData::from_static(CJK_FONT)),
    );
    for family in [egui::FontFamily::Proportional, egui::FontFamily::Monospace] {
        fonts
            .families
            .entry(family)
            .or_default()
            .push("cjk".to_owned());
    }
    fonts
}
