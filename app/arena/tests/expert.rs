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

#[test]
fn the_distance_to_the_goal_shrinks_as_the_expert_plays() {
    use lumine_arena::expert::distance_to_goal;
    for kind in TaskKind::ALL {
        let mut world = World::new(77, Some(kind)).unwrap();
        let d0 = distance_to_goal(&world).expect("a path to the goal");
        let mut seen = vec![d0];
        let e = run_episode(&mut world, (5.0, 4.0), 600, |_, w, _| {
            seen.push(distance_to_goal(w).unwrap());
        });
        assert!(e.success);
        assert_eq!(distance_to_goal(&world), Some(0));
        // Multi-step tasks move the goal (the key, then the door): only the
        // last goal's distances must fall to zero; overall, never above the
        // start plus the map's size.
        assert!(
            seen.iter().all(|&d| d <= d0 + 40),
            "{}: {seen:?}",
            kind.name()
        );
        if !kind.multi_step() && kind != TaskKind::Crystals {
            assert!(
                seen.windows(2).filter(|w| w[1] > w[0]).count() <= 2,
                "{}: {seen:?}",
                kind.name()
            );
        }
    }
}
