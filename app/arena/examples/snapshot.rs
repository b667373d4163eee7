//! Writes the first frame of a seed's world as a binary PPM (for looking at
//! layouts and the renderer), and times headless rendering and stepping:
//!
//! ```text
//! cargo run -p lumine-arena --example snapshot -- SEED OUT.ppm [TURN_PX]
//! cargo run --release -p lumine-arena --example snapshot -- --time N
//! ```

use std::time::Instant;

use lumine_arena::World;
use lumine_arena::expert::{Expert, run_episode};
use lumine_arena::render::{RENDER_H, RENDER_W};
use lumine_arena::world::TaskKind;

const USAGE: &str = "usage: snapshot SEED OUT.ppm [TURN_PX] | snapshot --time N";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let first = args.next().ok_or(USAGE)?;
    if first == "--time" {
        let n: u32 = args.next().ok_or(USAGE)?.parse()?;
        return time(n);
    }
    let seed: u64 = first.parse()?;
    let out = args.next().ok_or(USAGE)?;
    let turn: f64 = args.next().map_or(Ok(0.0), |t| t.parse())?;
    let mut world = World::new(seed, None)?;
    world.turn(turn);
    let mut rgb = Vec::new();
    world.render(&mut rgb);
    let mut ppm = format!("P6\n{RENDER_W} {RENDER_H}\n255\n").into_bytes();
    ppm.extend_from_slice(&rgb);
    std::fs::write(&out, ppm)?;
    println!("{}", world.task().text());
    Ok(())
}

/// Frames rendered per second while turning, and expert steps (decide and
/// play six chunks, no rendering) per second over whole episodes.
fn time(n: u32) -> Result<(), Box<dyn std::error::Error>> {
    let mut world = World::new(1, None)?;
    let mut rgb = Vec::new();
    let t = Instant::now();
    for _ in 0..n {
        world.turn(7.0);
        world.render(&mut rgb);
    }
    let render = t.elapsed().as_secs_f64() / f64::from(n);
    let (mut steps, t) = (0u64, Instant::now());
    let mut seed = 0;
    while t.elapsed().as_secs_f64() < 2.0 {
        let mut w = World::new(seed, Some(TaskKind::ALL[seed as usize % 6]))?;
        steps += run_episode(&mut w, Expert::new((5.0, 4.0)), 600, |_, _, _| {}).steps;
        seed += 1;
    }
    let step = t.elapsed().as_secs_f64() / steps as f64;
    println!(
        "render {RENDER_W}x{RENDER_H}: {:.3} ms per frame ({:.0} frames/s); expert step without rendering: {:.3} ms ({:.0}x real time at 200 ms per step); {seed} world builds included",
        render * 1e3,
        1.0 / render,
        step * 1e3,
        0.2 / step
    );
    Ok(())
}
