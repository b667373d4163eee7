//! The scripted expert solves every kind of task on many layouts, headless.

use lumine_arena::TaskKind;
use lumine_arena::World;
use lumine_arena::expert::{Expert, run_episode};

/// Plays every task kind on 50 layouts with the expert `make` builds; the
/// (kind, seed) pairs it did not solve.
fn unsolved(make: impl Fn() -> Expert) -> Vec<(&'static str, u64)> {
    let mut failures = Vec::new();
    for kind in TaskKind::ALL {
        let mut steps = 0;
        for seed in 0..50 {
            let mut world = World::new(seed, Some(kind)).unwrap();
            let e = run_episode(&mut world, make(), 600, |_, _, _| {});
            steps += e.steps;
            if !e.success {
                println!("failed: {} seed {seed}: {:?}", kind.name(), world.state());
                failures.push((kind.name(), seed));
            }
        }
        println!(
            "{}: {:.1} steps on average",
            kind.name(),
            steps as f64 / 50.0
        );
    }
    failures
}

#[test]
fn the_looking_expert_solves_every_task_kind_on_fifty_layouts() {
    assert_eq!(unsolved(|| Expert::looking((5.0, 4.0))), []);
}

#[test]
fn the_servo_expert_solves_all_but_one_of_three_hundred_layouts() {
    // The one it loses: a key-door layout where the way round a solid object
    // (the map's one decision left to it) turns the goal out of view again and
    // again. Any new failure, or this one mended, shows here.
    assert_eq!(unsolved(|| Expert::new((5.0, 4.0))), [("key-door", 44)]);
}

#[test]
fn the_distance_to_the_goal_shrinks_as_the_expert_plays() {
    use lumine_arena::expert::distance_to_goal;
    for kind in TaskKind::ALL {
        let mut world = World::new(77, Some(kind)).unwrap();
        let d0 = distance_to_goal(&world).expect("a path to the goal");
        let mut seen = vec![d0];
        let e = run_episode(&mut world, Expert::new((5.0, 4.0)), 600, |_, w, _| {
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

#[test]
fn the_looking_expert_looks_for_a_target_out_of_view_by_turning_right() {
    use lumine_arena::expert::in_view;
    use lumine_arena::world::ObjectKind;
    let mut looked = 0;
    for seed in 0..40 {
        let world = World::new(seed, Some(TaskKind::Chest)).unwrap();
        let colour = world.task().colour.unwrap();
        let chest = world
            .objects()
            .iter()
            .find(|o| o.kind == ObjectKind::Chest(colour))
            .unwrap()
            .cell;
        let mut expert = Expert::looking((5.0, 4.0));
        let decision = expert.act(&world);
        if in_view(&world, chest) {
            // In view: it heads for it (straight, or around what is in the way).
            assert_ne!(decision.action.dx, 45, "seed {seed}: {:?}", decision.action);
        } else {
            // Out of view: 45 degrees right (1 degree a unit at this scale), standing.
            looked += 1;
            assert_eq!(decision.action.dx, 45, "seed {seed}");
            assert!(decision.action.chunks.iter().all(|c| c.is_empty()));
        }
    }
    assert!(
        looked > 10,
        "most starts face away from the chest: {looked}"
    );
}

#[test]
fn what_is_behind_the_player_or_a_wall_is_out_of_view() {
    use lumine_arena::expert::in_view;
    let world = World::new(4, Some(TaskKind::Door)).unwrap();
    let (x, y) = world.position();
    let h = world.heading();
    let cell = |d: f64, a: f64| {
        (
            (x + d * (h + a).cos()).floor() as i32,
            (y + d * (h + a).sin()).floor() as i32,
        )
    };
    assert!(in_view(&world, cell(0.9, 0.0)), "just ahead");
    assert!(
        !in_view(&world, cell(1.2, std::f64::consts::PI)),
        "just behind"
    );
    // A closed door hides its closet.
    let door = &world.doors()[1];
    let beyond = if door.along_x {
        [
            (door.cell.0 - 1, door.cell.1),
            (door.cell.0 + 1, door.cell.1),
        ]
    } else {
        [
            (door.cell.0, door.cell.1 - 1),
            (door.cell.0, door.cell.1 + 1),
        ]
    };
    let closet = beyond
        .into_iter()
        .find(|&(cx, cy)| !world.rooms()[0].contains(cx, cy))
        .unwrap();
    let mut s = world.state();
    let inside = beyond.into_iter().find(|&c| c != closet).unwrap();
    s.x = f64::from(inside.0) + 0.5;
    s.y = f64::from(inside.1) + 0.5;
    s.heading_deg = f64::from(closet.1 - inside.1)
        .atan2(f64::from(closet.0 - inside.0))
        .to_degrees();
    let mut w = world.clone();
    w.sync_to(&s);
    assert!(in_view(&w, door.cell));
    assert!(!in_view(&w, closet), "behind the closed door");
}
