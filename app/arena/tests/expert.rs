//! The scripted expert solves every kind of task on many layouts, headless.

use lumine_arena::TaskKind;
use lumine_arena::World;
use lumine_arena::expert::run_episode;

#[test]
fn the_expert_solves_every_task_kind_on_fifty_layouts() {
    let mut failures = Vec::new();
    for kind in TaskKind::ALL {
        let mut steps = 0;
        for seed in 0..50 {
            let mut world = World::new(seed, Some(kind)).unwrap();
            let e = run_episode(&mut world, (5.0, 4.0), 600, |_, _, _| {});
            steps += e.steps;
            if !e.success {
                failures.push((kind.name(), seed, world.state()));
            }
        }
        println!(
            "{}: {:.1} steps on average",
            kind.name(),
            steps as f64 / 50.0
        );
    }
    for f in &failures {
        println!("failed: {} seed {}: {:?}", f.0, f.1, f.2);
    }
    assert!(failures.is_empty(), "{} failures", failures.len());
}
