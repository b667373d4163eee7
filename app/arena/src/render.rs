//! The software renderer: a grid ray-caster (textured floor, walls and doors
//! by DDA), billboard sprites for the objects, and the HUD, into a packed RGB8
//! buffer of [`RENDER_W`] x [`RENDER_H`].

use crate::world::{Cell, Colour, ObjectKind, World};

/// Internal frame width, pixels.
pub const RENDER_W: usize = 320;
/// Internal frame height, pixels.
pub const RENDER_H: usize = 180;
/// Half the horizontal field of view as its tangent (about 67 degrees wide).
const PLANE: f64 = 0.66;
/// Eye height above the floor, cells (the ceiling is at 1).
const EYE: f64 = 0.5;
/// How much larger than life chests, crystals and the key are drawn, so that
/// they are a few visual tokens wide across the hall.
const OBJECT_SCALE: f64 = 1.5;
/// Pixels per cell at distance 1.
const FOCAL: f64 = RENDER_W as f64 / (2.0 * PLANE);

const CEILING: [f32; 3] = [58.0, 62.0, 78.0];
const FLOOR_A: [f32; 3] = [96.0, 84.0, 70.0];
const FLOOR_B: [f32; 3] = [84.0, 74.0, 62.0];
const LOCKED_DOOR: [u8; 3] = [150, 120, 60];

fn shade(c: [f32; 3], k: f32) -> [u8; 3] {
    [
        (c[0] * k).clamp(0.0, 255.0) as u8,
        (c[1] * k).clamp(0.0, 255.0) as u8,
        (c[2] * k).clamp(0.0, 255.0) as u8,
    ]
}

fn f3(c: [u8; 3]) -> [f32; 3] {
    [f32::from(c[0]), f32::from(c[1]), f32::from(c[2])]
}

/// Light falling off with distance (`d` in cells).
fn fog(d: f64) -> f32 {
    (1.0 / (1.0 + 0.12 * d * d.sqrt())) as f32
}

/// The light on what can be used (objects and doors): lit from within, as
/// games highlight it, so that it reads across the hall where walls and floor
/// fade.
fn glow(d: f64) -> f32 {
    0.75 + 0.25 * fog(d)
}

fn hash(x: i32, y: i32) -> u32 {
    let mut h = (x as u32).wrapping_mul(0x9e37_79b1) ^ (y as u32).wrapping_mul(0x85eb_ca77);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2c1b_3c6d);
    h ^ (h >> 12)
}

/// Renders `world` into `rgb` (`RENDER_W * RENDER_H * 3` bytes, resized if needed).
pub fn render(world: &World, rgb: &mut Vec<u8>) {
    draw(world, rgb, None);
}

/// Object classes of [`render_labelled`]'s label map; 0 is none (walls,
/// floor, ceiling).
pub const LABEL_CLASSES: usize = 16;

/// The label class of an object: 1-4 chests, 5-8 crystals (red, green, blue,
/// yellow), 9 the key, 10 the guard.
#[must_use]
pub fn object_label(kind: ObjectKind) -> u8 {
    match kind {
        ObjectKind::Chest(c) => 1 + c.index() as u8,
        ObjectKind::Crystal(c) => 5 + c.index() as u8,
        ObjectKind::Key => 9,
        ObjectKind::Guard => 10,
    }
}

/// The label class of a door: 11-14 coloured (red, green, blue, yellow), 15
/// the locked one.
#[must_use]
pub fn door_label(colour: Option<Colour>) -> u8 {
    colour.map_or(15, |c| 11 + c.index() as u8)
}

/// Renders as [`render`] does, and writes into `labels` (`RENDER_W *
/// RENDER_H` bytes) the class of what each pixel shows ([`object_label`],
/// [`door_label`], 0 for the rest; the HUD is not labelled): training labels
/// that say where every object is, which only the renderer knows exactly.
pub fn render_labelled(world: &World, rgb: &mut Vec<u8>, labels: &mut Vec<u8>) {
    labels.clear();
    labels.resize(RENDER_W * RENDER_H, 0);
    draw(world, rgb, Some(labels));
}

fn draw(world: &World, rgb: &mut Vec<u8>, mut labels: Option<&mut Vec<u8>>) {
    rgb.resize(RENDER_W * RENDER_H * 3, 0);
    let mut label = |x: usize, y: usize, class: u8| {
        if let Some(l) = labels.as_deref_mut() {
            l[y * RENDER_W + x] = class;
        }
    };
    let (px, py) = world.position();
    let (s, c) = world.heading().sin_cos();
    let dir = (c, s);
    let right = (-s, c);
    let eye = EYE + world.jump_height();
    let horizon = RENDER_H as f64 / 2.0;
    let put = |rgb: &mut Vec<u8>, x: usize, y: usize, col: [u8; 3]| {
        let i = (y * RENDER_W + x) * 3;
        rgb[i..i + 3].copy_from_slice(&col);
    };
    // Floor and ceiling, row by row.
    let left_ray = (dir.0 - right.0 * PLANE, dir.1 - right.1 * PLANE);
    let right_ray = (dir.0 + right.0 * PLANE, dir.1 + right.1 * PLANE);
    for y in 0..RENDER_H {
        let dy = y as f64 + 0.5 - horizon;
        let below = dy > 0.0;
        let dist = if below {
            eye * FOCAL / dy
        } else {
            (1.0 - eye) * FOCAL / -dy
        };
        let k = fog(dist);
        for x in 0..RENDER_W {
            let t = (x as f64 + 0.5) / RENDER_W as f64;
            let wx = px + dist * (left_ray.0 + (right_ray.0 - left_ray.0) * t);
            let wy = py + dist * (left_ray.1 + (right_ray.1 - left_ray.1) * t);
            let col = if below {
                let tile = (wx.floor() as i64 + wy.floor() as i64).rem_euclid(2) == 0;
                shade(if tile { FLOOR_A } else { FLOOR_B }, k)
            } else {
                shade(CEILING, k * 0.9 + 0.1)
            };
            put(rgb, x, y, col);
        }
    }
    // Walls and closed doors.
    let mut zbuf = [f64::INFINITY; RENDER_W];
    for (x, z) in zbuf.iter_mut().enumerate() {
        let cam = 2.0 * (x as f64 + 0.5) / RENDER_W as f64 - 1.0;
        let ray = (dir.0 + right.0 * PLANE * cam, dir.1 + right.1 * PLANE * cam);
        let (mut mx, mut my) = (px.floor() as i32, py.floor() as i32);
        let delta = (
            if ray.0 == 0.0 {
                1e30
            } else {
                (1.0 / ray.0).abs()
            },
            if ray.1 == 0.0 {
                1e30
            } else {
                (1.0 / ray.1).abs()
            },
        );
        let (step_x, mut side_x) = if ray.0 < 0.0 {
            (-1, (px - f64::from(mx)) * delta.0)
        } else {
            (1, (f64::from(mx) + 1.0 - px) * delta.0)
        };
        let (step_y, mut side_y) = if ray.1 < 0.0 {
            (-1, (py - f64::from(my)) * delta.1)
        } else {
            (1, (f64::from(my) + 1.0 - py) * delta.1)
        };
        let mut side = 0;
        let mut hit = Cell::Wall;
        for _ in 0..64 {
            if side_x < side_y {
                side_x += delta.0;
                mx += step_x;
                side = 0;
            } else {
                side_y += delta.1;
                my += step_y;
                side = 1;
            }
            let cell = world.cell(mx, my);
            let solid = match cell {
                Cell::Wall => true,
                Cell::Door(i) => !world.doors()[i].open,
                Cell::Floor => false,
            };
            if solid {
                hit = cell;
                break;
            }
        }
        let perp = if side == 0 {
            side_x - delta.0
        } else {
            side_y - delta.1
        }
        .max(1e-4);
        *z = perp;
        let wall_x = if side == 0 {
            py + perp * ray.1
        } else {
            px + perp * ray.0
        };
        let u = wall_x - wall_x.floor();
        let line = FOCAL / perp;
        let top = horizon - (1.0 - eye) * line;
        let y0 = top.max(0.0) as usize;
        let y1 = ((horizon + eye * line).ceil().max(0.0) as usize).min(RENDER_H);
        let lit = if matches!(hit, Cell::Door(_)) {
            glow(perp)
        } else {
            fog(perp)
        };
        let k = lit * if side == 1 { 0.78 } else { 1.0 };
        let h = hash(mx, my);
        for y in y0..y1 {
            let v = (y as f64 + 0.5 - top) / line; // 0 at the ceiling, 1 at the floor
            let col = match hit {
                Cell::Door(i) => {
                    let d = &world.doors()[i];
                    let base = d.colour.map_or(LOCKED_DOOR, Colour::rgb);
                    let frame = !(0.08..0.92).contains(&u) || v < 0.06;
                    let plank = (u * 5.0).fract() < 0.06;
                    let keyhole = d.locked && (u - 0.5).abs() < 0.05 && (v - 0.55).abs() < 0.08;
                    let m = if frame {
                        0.35
                    } else if keyhole {
                        0.1
                    } else if plank {
                        0.7
                    } else {
                        1.0
                    };
                    label(x, y, door_label(d.colour));
                    shade(f3(base), k * m)
                }
                _ => {
                    // Stone blocks: rows of bricks, offset every other row, tinted per cell.
                    let row = (v * 4.0).floor();
                    let bu = u * 2.0 + if row as i64 % 2 == 0 { 0.0 } else { 0.5 };
                    let mortar = (v * 4.0).fract() < 0.07 || bu.fract() < 0.04;
                    let tint = (h % 24) as f32;
                    let base = [118.0 + tint, 112.0 + tint, 104.0 + tint * 0.5];
                    shade(base, k * if mortar { 0.6 } else { 1.0 })
                }
            };
            put(rgb, x, y, col);
        }
    }
    // Sprites, far to near.
    let mut sprites: Vec<(f64, f64, usize)> = Vec::new();
    for (i, o) in world.objects().iter().enumerate() {
        let visible = match o.kind {
            ObjectKind::Crystal(_) | ObjectKind::Key => !o.done,
            ObjectKind::Chest(_) | ObjectKind::Guard => true,
        };
        if !visible {
            continue;
        }
        let (ox, oy) = o.centre();
        let (sx, sy) = (ox - px, oy - py);
        let depth = sx * dir.0 + sy * dir.1;
        let lateral = sx * right.0 + sy * right.1;
        if depth > 0.1 {
            sprites.push((depth, lateral, i));
        }
    }
    sprites.sort_by(|a, b| b.0.total_cmp(&a.0));
    let t = world.time();
    for (depth, lateral, i) in sprites {
        let o = &world.objects()[i];
        let scale = FOCAL / depth;
        let cx = RENDER_W as f64 / 2.0 + lateral * scale;
        let x0 = (cx - 0.75 * scale).floor().max(0.0) as usize;
        let x1 = ((cx + 0.75 * scale).ceil().max(0.0) as usize).min(RENDER_W);
        let y0 = (horizon - (1.0 - eye) * scale).floor().max(0.0) as usize;
        let y1 = ((horizon + eye * scale).ceil().max(0.0) as usize).min(RENDER_H);
        let k = glow(depth);
        let size = match o.kind {
            ObjectKind::Guard => 1.0,
            _ => OBJECT_SCALE,
        };
        for (x, &zb) in zbuf.iter().enumerate().take(x1).skip(x0) {
            if depth >= zb {
                continue;
            }
            let u = (x as f64 + 0.5 - cx) / scale;
            for y in y0..y1 {
                let hz = eye - (y as f64 + 0.5 - horizon) / scale;
                if let Some(col) = sprite_pixel(o.kind, o.done, u / size, hz / size, t) {
                    put(rgb, x, y, shade(f3(col), k));
                    label(x, y, object_label(o.kind));
                }
            }
        }
    }
    crate::hud::draw(world, rgb);
}

/// The colour of an object's billboard at lateral offset `u` and height `hz`
/// (cells; 0 = floor), or `None` where it is transparent.
fn sprite_pixel(kind: ObjectKind, done: bool, u: f64, hz: f64, t: f64) -> Option<[u8; 3]> {
    let au = u.abs();
    match kind {
        ObjectKind::Chest(c) => {
            let base = c.rgb();
            let dark = [base[0] / 2, base[1] / 2, base[2] / 2];
            if done {
                if au < 0.36 && (0.34..0.62).contains(&hz) {
                    return Some(dark); // the lid, standing open at the back
                }
                if au < 0.3 && (0.28..0.34).contains(&hz) {
                    return Some([20, 14, 10]); // the empty inside
                }
            } else if au < 0.36 && (0.34..0.44).contains(&hz) {
                return Some(if au < 0.04 { [250, 220, 90] } else { dark });
            }
            if au < 0.34 && (0.0..0.34).contains(&hz) {
                if !done && au < 0.04 && (0.24..0.34).contains(&hz) {
                    return Some([250, 220, 90]); // the lock
                }
                if (0.2..0.24).contains(&au) {
                    return Some([70, 60, 50]); // iron bands
                }
                return Some(base);
            }
            None
        }
        ObjectKind::Crystal(c) => {
            let centre = 0.42 + 0.04 * (t * 2.5).sin();
            let r = au / 0.13 + (hz - centre).abs() / 0.2;
            (r <= 1.0).then(|| {
                let b = c.rgb();
                if u < 0.0 {
                    [
                        b[0].saturating_add(60),
                        b[1].saturating_add(60),
                        b[2].saturating_add(60),
                    ]
                } else {
                    b
                }
            })
        }
        ObjectKind::Key => {
            let gold = [250, 200, 40];
            let ring = (u + 0.1).hypot(hz - 0.35);
            let shaft = (-0.04..0.18).contains(&u) && (hz - 0.35).abs() < 0.022;
            let teeth = ((0.1..0.13).contains(&u) || (0.15..0.18).contains(&u))
                && (0.27..0.35).contains(&hz);
            ((0.045..0.085).contains(&ring) || shaft || teeth).then_some(gold)
        }
        ObjectKind::Guard => {
            if (0.19..0.22).contains(&u) && (0.0..0.95).contains(&hz) {
                return Some([110, 80, 50]); // spear shaft
            }
            if (0.16..0.25).contains(&u) && (0.95..1.0).contains(&hz) {
                return Some([200, 200, 210]); // spear head
            }
            if (0.0..0.36).contains(&hz) && au < 0.12 && au > 0.02 {
                return Some([60, 60, 70]); // legs
            }
            if (0.36..0.7).contains(&hz) && au < 0.22 {
                // A purple tunic: no task colour, and not the walls' grey.
                return Some(if au < 0.02 {
                    [120, 40, 140]
                } else {
                    [180, 70, 210]
                });
            }
            let head = u.hypot(hz - 0.78);
            if head < 0.08 {
                return Some(if hz > 0.8 {
                    [150, 155, 170]
                } else {
                    [230, 190, 150]
                });
            }
            None
        }
    }
}

/// Scales a packed RGB8 frame by nearest neighbour into 32-bit BGRX rows (the
/// layout of a 24-bit-depth X11 `ZPixmap`).
pub fn to_bgrx(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize, out: &mut Vec<u8>) {
    out.resize(dw * dh * 4, 0);
    for y in 0..dh {
        let sy = y * sh / dh;
        for x in 0..dw {
            let sx = x * sw / dw;
            let i = (sy * sw + sx) * 3;
            let o = (y * dw + x) * 4;
            out[o] = src[i + 2];
            out[o + 1] = src[i + 1];
            out[o + 2] = src[i];
            out[o + 3] = 0;
        }
    }
}

/// Scales a packed RGB8 frame by nearest neighbour (what the window shows at
/// `dw` x `dh`, as packed RGB8: what a capture of the window reads).
#[must_use]
pub fn scale_rgb(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<u8> {
    let mut out = vec![0; dw * dh * 3];
    for y in 0..dh {
        let sy = y * sh / dh;
        for x in 0..dw {
            let sx = x * sw / dw;
            let i = (sy * sw + sx) * 3;
            let o = (y * dw + x) * 3;
            out[o..o + 3].copy_from_slice(&src[i..i + 3]);
        }
    }
    out
}

/// Summarises a label map of [`render_labelled`] over a `cols` x `rows` grid
/// of equal cells (row-major): per cell, a bit mask with bit `k` set when
/// class `k` ([`LABEL_CLASSES`], 0 excluded) covers at least `min_share` of
/// the cell. A model's visual tokens tile the frame the same way.
#[must_use]
pub fn label_grid(labels: &[u8], cols: usize, rows: usize, min_share: f64) -> Vec<u16> {
    let mut out = Vec::with_capacity(cols * rows);
    for r in 0..rows {
        let (y0, y1) = (r * RENDER_H / rows, (r + 1) * RENDER_H / rows);
        for c in 0..cols {
            let (x0, x1) = (c * RENDER_W / cols, (c + 1) * RENDER_W / cols);
            let mut count = [0usize; LABEL_CLASSES];
            for y in y0..y1 {
                for &l in &labels[y * RENDER_W + x0..y * RENDER_W + x1] {
                    count[usize::from(l)] += 1;
                }
            }
            let area = ((y1 - y0) * (x1 - x0)) as f64;
            let mask = (1..LABEL_CLASSES)
                .filter(|&k| count[k] as f64 >= min_share * area)
                .fold(0u16, |m, k| m | (1 << k));
            out.push(mask);
        }
    }
    out
}
