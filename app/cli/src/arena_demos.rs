//! `lumine arena demos`: the scripted expert plays arena episodes headless,
//! faster than real time, and each successful episode is written as a
//! trajectory in the format of `lumine record` (frames as the arena window
//! shows them, the instruction, action strings, thoughts where the plan
//! changes).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use lumine_action::{Action, CHUNK_MS, CHUNKS_PER_ACTION, Chunk, KeyVocabulary, STEP_MS};
use lumine_arena::expert::{Expert, run_episode_perturbed};
use lumine_arena::render::{RENDER_H, RENDER_W, label_grid, render_labelled, scale_rgb};
use lumine_arena::rng::Rng;
use lumine_arena::{TaskKind, World};
use lumine_runtime::trajectory::{StepRecord, TrajectoryMeta, TrajectorySource, TrajectoryWriter};
use lumine_runtime::{Actor, StageLatency};
use lumine_vision::RgbImage;

use crate::arena_cmd::parse_task;
use crate::run_cmd::{parse_pair_f32, parse_size};

/// The file beside each demonstration's steps that says, per step, where the
/// task's current goal is in the frame (`{"step":N,"bearing_deg":D}`, degrees
/// right of the view's centre, `null` when out of view): training labels that
/// teach a policy to find its target (models/train/train_policy.py).
pub const GOAL_BEARINGS: &str = "goal_bearing.jsonl";

/// The file beside each demonstration's steps that says, per step, which
/// objects each cell of a grid over the frame shows
/// (`{"step":N,"grid":[COLS,ROWS],"cells":[MASK,...]}`, row-major; bit k of a
/// mask is `lumine_arena::render`'s label class k, set when it covers a tenth
/// of the cell), written with `--label-grid`: dense training labels for a
/// policy's vision (models/train/train_policy.py `--object-labels`).
pub const OBJECT_LABELS: &str = "object_labels.jsonl";

/// Arguments of `lumine arena demos`.
#[derive(Debug, Args)]
pub struct DemosArgs {
    /// Folder for the trajectories (one sub-folder per episode).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Episodes to play.
    #[arg(long, value_name = "N", default_value_t = 10)]
    episodes: u64,
    /// Seed of the first episode (episode i uses seed + i).
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// Task kinds, cycled over the episodes (default: all).
    #[arg(long, value_name = "NAME,...", value_delimiter = ',', value_parser = parse_task)]
    tasks: Vec<TaskKind>,
    /// Pixels per unit of DX,DY (the model's mouse scale).
    #[arg(long, value_name = "X,Y", value_parser = parse_pair_f32, default_value = "5,4")]
    mouse_scale: (f32, f32),
    /// Frame size as the window shows it (the arena window's size).
    #[arg(long, value_name = "WxH", value_parser = parse_size, default_value = "640x360")]
    size: (u32, u32),
    /// Give up on an episode after this many steps (it is not written).
    #[arg(long, value_name = "N", default_value_t = 600)]
    max_steps: u64,
    /// Share of steps whose played action is disturbed (a random turn, or the
    /// keys dropped) while the expert's own action is recorded: the
    /// demonstrations then show recoveries from states off the expert's path.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_share)]
    noise: f64,
    /// Also write `object_labels.jsonl` with this grid over each frame (e.g.
    /// 18x10: the patches of a 256x144 model frame).
    #[arg(long, value_name = "COLSxROWS", value_parser = parse_size)]
    label_grid: Option<(u32, u32)>,
}

/// Parses a share between 0 and 1.
fn parse_share(text: &str) -> Result<f64, String> {
    let p: f64 = text.trim().parse().map_err(|e| format!("{text:?}: {e}"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not between 0 and 1"))
    }
}

/// Disturbs `action` with probability `p`: half the time a turn of up to
/// ±60° is added, else its keys are dropped (the player stops for 200 ms).
fn disturb(action: &mut Action, rng: &mut Rng, p: f64, mouse_scale: (f32, f32)) {
    let draw = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    if draw >= p {
        return;
    }
    if rng.index(2) == 0 {
        // 0.2 degrees per pixel (the arena's turn rate): 300 px is 60 degrees.
        let max_units = (300.0 / mouse_scale.0.max(0.1)).round() as i32;
        action.dx = (action.dx + rng.range(-max_units, max_units)).clamp(-999, 999);
    } else {
        action.chunks = [Chunk::EMPTY; CHUNKS_PER_ACTION];
    }
}

/// The exit status of `lumine arena demos` when it ran to the end but the
/// expert did not finish some episodes (those are not written). An error
/// exits 1, so a script can tell "a few layouts unsolved" from a failure.
pub const SOME_UNFINISHED: u8 = 3;

/// Runs `lumine arena demos`.
pub fn run(args: &DemosArgs) -> anyhow::Result<ExitCode> {
    let tasks = if args.tasks.is_empty() {
        TaskKind::ALL.to_vec()
    } else {
        args.tasks.clone()
    };
    let vocab = KeyVocabulary::default();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let started = Instant::now();
    let (mut written, mut steps_total, mut failed) = (0u64, 0u64, Vec::new());
    let (w, h) = args.size;
    for i in 0..args.episodes {
        let seed = args.seed + i;
        let kind = tasks[(i % tasks.len() as u64) as usize];
        let mut world = World::new(seed, Some(kind))?;
        let instruction = world.task().text();
        let name = format!("{seed:06}-{}", kind.name());
        let dir = args.out.join(&name);
        let partial = args.out.join(format!(".{name}.partial"));
        if partial.exists() {
            std::fs::remove_dir_all(&partial)?;
        }
        let mut meta = TrajectoryMeta::new(
            TrajectorySource::Demonstration,
            (w, h),
            [args.mouse_scale.0, args.mouse_scale.1],
        );
        meta.window = Some("Lumine Arena".to_owned());
        meta.policy = Some(format!(
            "expert:lumine-arena seed={seed} task={}",
            kind.name()
        ));
        meta.instruction = Some(instruction.clone());
        let mut writer = TrajectoryWriter::create(&partial, &meta, Instant::now())?;
        let mut rgb = Vec::new();
        let mut error = None;
        // Its own stream per episode, apart from the layout's: a seed names the same demonstration.
        let mut noise_rng = Rng::new(seed ^ 0x6e6f_6973_6500_0000);
        // Per step, where the goal is in the frame: a training label beside the trajectory.
        let mut labeller = Expert::new(args.mouse_scale);
        let mut bearings = String::new();
        let mut objects = String::new();
        let mut label_map = Vec::new();
        let episode = run_episode_perturbed(
            &mut world,
            Expert::new(args.mouse_scale),
            args.max_steps,
            |action| disturb(action, &mut noise_rng, args.noise, args.mouse_scale),
            |step, world, decision| {
                if error.is_some() {
                    return;
                }
                let bearing = labeller.goal_bearing(world);
                bearings += &format!(
                    "{{\"step\":{step},\"bearing_deg\":{}}}\n",
                    bearing.map_or("null".to_owned(), |b| format!("{b:.1}"))
                );
                if let Some((cols, rows)) = args.label_grid {
                    render_labelled(world, &mut rgb, &mut label_map);
                    let cells = label_grid(&label_map, cols as usize, rows as usize, 0.1);
                    let cells: Vec<String> = cells.iter().map(u16::to_string).collect();
                    objects += &format!(
                        "{{\"step\":{step},\"grid\":[{cols},{rows}],\"cells\":[{}]}}\n",
                        cells.join(",")
                    );
                } else {
                    world.render(&mut rgb);
                }
                let frame = scale_rgb(&rgb, RENDER_W, RENDER_H, w as usize, h as usize);
                let t0 = step as f64 * f64::from(STEP_MS);
                let mut record = StepRecord {
                    step,
                    frame: None,
                    captured_ms: t0,
                    actor: Actor::Operator,
                    instruction: Some(instruction.clone()),
                    thought: decision.thought.clone(),
                    action: decision.action.format(&vocab),
                    chunks_ms: (0..CHUNKS_PER_ACTION)
                        .map(|k| Some(t0 + k as f64 * CHUNK_MS))
                        .collect(),
                    deadline_misses: 0,
                    latency_ms: StageLatency::default(),
                };
                let image = RgbImage::new(w, h, frame).expect("frame size");
                if let Err(e) = writer.write_step(&mut record, Some(&image)) {
                    error = Some(e);
                }
            },
        );
        if let Some(e) = error {
            return Err(e.into());
        }
        writer.finish()?;
        std::fs::write(partial.join(GOAL_BEARINGS), &bearings)?;
        if args.label_grid.is_some() {
            std::fs::write(partial.join(OBJECT_LABELS), &objects)?;
        }
        if episode.success {
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            std::fs::rename(&partial, &dir)?;
            written += 1;
            steps_total += episode.steps;
            println!(
                "{name}: {instruction:?}: done in {} steps ({:.1} s)",
                episode.steps, episode.seconds
            );
        } else {
            std::fs::remove_dir_all(&partial)?;
            println!(
                "{name}: {instruction:?}: not done in {} steps, not written",
                episode.steps
            );
            failed.push(name);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{written} of {} episodes written to {} ({steps_total} steps, {:.0} steps/s, {:.1}x real time)",
        args.episodes,
        args.out.display(),
        steps_total as f64 / secs,
        steps_total as f64 * 0.2 / secs
    );
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(SOME_UNFINISHED)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_noise_share_is_checked() {
        assert_eq!(parse_share("0.15"), Ok(0.15));
        assert_eq!(parse_share("0"), Ok(0.0));
        assert!(parse_share("1.5").is_err());
        assert!(parse_share("-0.1").is_err());
        assert!(parse_share("many").is_err());
    }

    #[test]
    fn disturbing_never_happens_at_zero_and_always_at_one() {
        let walk = lumine_action::parse_action(
            "12 0 0 ; W ; W ; W ; W ; W ; W",
            &KeyVocabulary::default(),
        )
        .unwrap();
        let mut rng = Rng::new(7);
        for _ in 0..100 {
            let mut a = walk;
            disturb(&mut a, &mut rng, 0.0, (5.0, 4.0));
            assert_eq!(a, walk);
        }
        let mut changed = 0;
        for _ in 0..100 {
            let mut a = walk;
            disturb(&mut a, &mut rng, 1.0, (5.0, 4.0));
            assert!(a.dx.abs() <= 999);
            changed += usize::from(a != walk);
        }
        // A drawn turn of exactly 0 leaves the action as it was; anything else changes it.
        assert!(changed >= 95, "{changed} of 100 changed");
    }
}
