//! Writes the first frame of a seed's world as a binary PPM (for looking at
//! layouts and the renderer): `cargo run -p lumine-arena --example snapshot -- SEED OUT.ppm [TURN_PX]`.

use lumine_arena::World;
use lumine_arena::render::{RENDER_H, RENDER_W};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seed: u64 = args
        .next()
        .ok_or("usage: snapshot SEED OUT.ppm [TURN_PX]")?
        .parse()?;
    let out = args
        .next()
        .ok_or("usage: snapshot SEED OUT.ppm [TURN_PX]")?;
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
