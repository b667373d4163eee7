//! The HUD drawn over the 3D view: the task line at the top, a message line
//! under it (dialogue, "locked") while one is shown, the inventory (crystals
//! per colour, the key, the selected slot) at the bottom, and a crosshair.
//! Text uses the 8x8 bitmap glyphs of `font8x8`.

use crate::render::{RENDER_H, RENDER_W};
use crate::world::{Colour, World};

const TEXT: [u8; 3] = [240, 240, 230];
const DIM: [u8; 3] = [150, 150, 150];

fn put(rgb: &mut [u8], x: usize, y: usize, col: [u8; 3]) {
    if x < RENDER_W && y < RENDER_H {
        let i = (y * RENDER_W + x) * 3;
        rgb[i..i + 3].copy_from_slice(&col);
    }
}

/// Darkens rows `y0..y1` (a translucent bar behind text).
fn bar(rgb: &mut [u8], y0: usize, y1: usize) {
    for y in y0..y1.min(RENDER_H) {
        for v in &mut rgb[y * RENDER_W * 3..(y + 1) * RENDER_W * 3] {
            *v /= 3;
        }
    }
}

/// Draws `text` with its top-left corner at `(x, y)`; returns the x after it.
pub fn text(rgb: &mut [u8], x: usize, y: usize, text: &str, col: [u8; 3]) -> usize {
    let mut cx = x;
    for ch in text.chars() {
        let glyph = font8x8::legacy::BASIC_LEGACY
            .get(ch as usize)
            .copied()
            .unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for bit in 0..8 {
                if bits & (1 << bit) != 0 {
                    put(rgb, cx + bit, y + row, col);
                }
            }
        }
        cx += 8;
    }
    cx
}

/// A small crystal icon, 7 pixels wide, 9 tall.
fn crystal_icon(rgb: &mut [u8], x: usize, y: usize, col: [u8; 3]) {
    for dy in 0..9usize {
        let half = 3usize.saturating_sub(dy.abs_diff(4) * 3 / 4);
        for dx in 3 - half..=3 + half {
            put(rgb, x + dx, y + dy, col);
        }
    }
}

/// Splits `text` into lines of at most `width` characters at spaces.
#[must_use]
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

/// Draws the HUD over the frame.
pub fn draw(world: &World, rgb: &mut [u8]) {
    let columns = (RENDER_W - 4) / 8;
    let mut y = 1;
    let mut lines: Vec<(String, [u8; 3])> = wrap(&world.task().text(), columns)
        .into_iter()
        .map(|l| (l, TEXT))
        .collect();
    if let Some(message) = world.message() {
        lines.extend(
            wrap(message, columns)
                .into_iter()
                .map(|l| (l, [255, 230, 140])),
        );
    }
    bar(rgb, 0, 10 * lines.len());
    for (line, colour) in &lines {
        text(rgb, 2, y, line, *colour);
        y += 10;
    }
    bar(rgb, RENDER_H - 11, RENDER_H);
    let y = RENDER_H - 10;
    let mut x = 3;
    for c in Colour::ALL {
        crystal_icon(rgb, x, y, c.rgb());
        let n = world.crystals(c).min(9);
        x = text(rgb, x + 9, y + 1, &n.to_string(), TEXT) + 6;
    }
    if world.has_key() {
        text(rgb, x + 4, y + 1, "KEY", [250, 200, 40]);
    }
    // Slots 1-4 at the right, the selected one bright.
    for s in 1..=4u8 {
        let sx = RENDER_W - 4 - (5 - usize::from(s)) * 12;
        let col = if world.slot() == s { TEXT } else { DIM };
        text(rgb, sx, y + 1, &s.to_string(), col);
    }
    // Crosshair.
    let (cx, cy) = (RENDER_W / 2, RENDER_H / 2);
    for d in 2..5 {
        put(rgb, cx + d, cy, TEXT);
        put(rgb, cx - d, cy, TEXT);
        put(rgb, cx, cy + d, TEXT);
        put(rgb, cx, cy - d, TEXT);
    }
}
