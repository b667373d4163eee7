//! World rules, headless: seeded layouts, collision, pick-ups, interaction,
//! doors and the key, task predicates, and the renderer.

use lumine_action::Key;
use lumine_arena::render::{RENDER_H, RENDER_W};
use lumine_arena::world::{Cell, Colour, Input, MAP_H, MAP_W, ObjectKind, TaskKind, World};

fn hold(keys: &[Key]) -> Input {
    Input {
        keys: keys.to_vec(),
        mouse_dx: 0.0,
        mouse_dy: 0.0,
    }
}

fn layout(w: &World) -> Vec<Cell> {
    (0..MAP_H)
        .flat_map(|y| (0..MAP_W).map(move |x| (x, y)))
        .map(|(x, y)| w.cell(x, y))
        .collect()
}

/// Places the player at the centre of `cell` facing `toward` (a cell centre).
fn stand(w: &mut World, cell: (i32, i32), toward: (i32, i32)) {
    let mut s = w.state();
    s.x = f64::from(cell.0) + 0.5;
    s.y = f64::from(cell.1) + 0.5;
    s.heading_deg = f64::from(toward.1 - cell.1)
        .atan2(f64::from(toward.0 - cell.0))
        .to_degrees();
    w.sync_to(&s);
}

/// Where the layout's guard stands.
fn guard_cell(w: &World) -> (i32, i32) {
    w.objects()
        .iter()
        .find(|o| o.kind == ObjectKind::Guard)
        .unwrap()
        .cell
}

/// A walkable neighbour of `cell` (4-connected).
fn free_neighbour(w: &World, cell: (i32, i32)) -> (i32, i32) {
    [(1, 0), (-1, 0), (0, 1), (0, -1)]
        .iter()
        .map(|&(dx, dy)| (cell.0 + dx, cell.1 + dy))
        .find(|&(x, y)| !w.blocked(x, y))
        .expect("a free neighbour")
}

#[test]
fn a_seed_names_one_layout_and_task() {
    for seed in [0, 1, 42, 1_000_003] {
        let (a, b) = (
            World::new(seed, None).unwrap(),
            World::new(seed, None).unwrap(),
        );
        assert_eq!(layout(&a), layout(&b));
        assert_eq!(a.objects(), b.objects());
        assert_eq!(a.task(), b.task());
        assert_eq!(a.position(), b.position());
    }
    let differ = (0..10)
        .filter(|&s| {
            layout(&World::new(s, None).unwrap()) != layout(&World::new(s + 1, None).unwrap())
        })
        .count();
    assert!(
        differ >= 9,
        "neighbouring seeds should give different layouts"
    );
    // Every kind appears among the drawn tasks, and the words name the colour.
    let kinds: std::collections::BTreeSet<TaskKind> = (0..200)
        .map(|s| World::new(s, None).unwrap().task().kind)
        .collect();
    assert_eq!(kinds.len(), TaskKind::ALL.len());
    let w = World::new(3, Some(TaskKind::Chest)).unwrap();
    let c = w.task().colour.unwrap();
    assert_eq!(w.task().text(), format!("open the {} chest", c.name()));
    assert!(w.objects().iter().any(|o| o.kind == ObjectKind::Chest(c)));
}

#[test]
fn walls_stop_the_player_and_sprint_is_faster() {
    let mut w = World::new(5, None).unwrap();
    let (x, y) = w.position();
    let start = (x.floor() as i32, y.floor() as i32);
    let next = free_neighbour(&w, start);
    stand(&mut w, start, next);
    // Walk straight along a grid axis for ten seconds: never inside a blocked
    // cell, and stopped for good by a wall.
    for _ in 0..300 {
        w.step(&hold(&[Key::W]), 1.0 / 30.0);
        let (x, y) = w.position();
        assert!(!w.blocked(x.floor() as i32, y.floor() as i32));
    }
    let (x, y) = w.position();
    assert!((x - 0.5 - f64::from(start.0)).abs() + (y - 0.5 - f64::from(start.1)).abs() > 0.9);
    let before = w.position();
    w.step(&hold(&[Key::W]), 1.0);
    assert_eq!(w.position(), before, "still against the wall");
    // The same 0.1 s from the start: sprinting covers more ground than walking.
    let mut a = World::new(5, None).unwrap();
    let mut b = World::new(5, None).unwrap();
    stand(&mut a, start, next);
    stand(&mut b, start, next);
    a.step(&hold(&[Key::W]), 0.1);
    b.step(&hold(&[Key::W, Key::Shift]), 0.1);
    let c = (f64::from(start.0) + 0.5, f64::from(start.1) + 0.5);
    let da = (a.position().0 - c.0).hypot(a.position().1 - c.1);
    let db = (b.position().0 - c.0).hypot(b.position().1 - c.1);
    assert!((da - 0.22).abs() < 1e-9, "walk {da}");
    assert!((db - 0.36).abs() < 1e-9, "sprint {db}");
}

#[test]
fn the_mouse_turns_the_view_by_its_pixels() {
    let mut w = World::new(9, None).unwrap();
    let h0 = w.state().heading_deg;
    w.step(
        &Input {
            keys: vec![],
            mouse_dx: 150.0,
            mouse_dy: 40.0,
        },
        0.0,
    );
    let turned = (w.state().heading_deg - h0 + 540.0).rem_euclid(360.0) - 180.0;
    assert!((turned - 30.0).abs() < 1e-9, "{turned}");
}

#[test]
fn crystals_are_collected_by_walking_through_them() {
    let mut w = World::new(11, Some(TaskKind::Crystals)).unwrap();
    let colour = w.task().colour.unwrap();
    let cells: Vec<(i32, i32)> = w
        .objects()
        .iter()
        .filter(|o| o.kind == ObjectKind::Crystal(colour))
        .map(|o| o.cell)
        .collect();
    assert_eq!(cells.len(), 2);
    for (i, &cell) in cells.iter().enumerate() {
        let from = free_neighbour(&w, cell);
        stand(&mut w, from, cell);
        assert_eq!(w.crystals(colour), i as u32);
        w.step(&hold(&[Key::W]), 0.5);
        assert_eq!(w.crystals(colour), i as u32 + 1, "crystal {i}");
        assert_eq!(w.success(), i == 1);
    }
}

#[test]
fn chests_open_with_f_only_when_close_and_facing() {
    let mut w = World::new(12, Some(TaskKind::Chest)).unwrap();
    let colour = w.task().colour.unwrap();
    let chest = w
        .objects()
        .iter()
        .find(|o| o.kind == ObjectKind::Chest(colour))
        .unwrap()
        .cell;
    let from = free_neighbour(&w, chest);
    // Facing away: nothing.
    stand(&mut w, from, (2 * from.0 - chest.0, 2 * from.1 - chest.1));
    w.step(&hold(&[Key::F]), 0.1);
    w.step(&hold(&[]), 0.1);
    assert!(w.state().opened_chests.is_empty());
    // Facing it: opened, and the task is done.
    stand(&mut w, from, chest);
    w.step(&hold(&[Key::F]), 0.1);
    assert_eq!(w.state().opened_chests, vec![colour]);
    assert!(w.success());
    assert!(w.message().unwrap().contains(colour.name()));
    // Holding F is one press: nothing else happens until it is pressed again.
    w.step(&hold(&[Key::F]), 0.1);
    assert_eq!(w.state().opened_chests.len(), 1);
}

#[test]
fn the_locked_door_needs_the_key_and_doors_open_and_are_passed() {
    let mut w = World::new(13, Some(TaskKind::KeyDoor)).unwrap();
    let door = w.doors().iter().find(|d| d.locked).unwrap().clone();
    let from = free_neighbour(&w, door.cell);
    stand(&mut w, from, door.cell);
    w.step(&hold(&[Key::F]), 0.1);
    assert!(w.state().opened_doors.is_empty());
    assert_eq!(w.message(), Some("The door is locked."));
    assert!(w.blocked(door.cell.0, door.cell.1));
    // Pick up the key, come back, open.
    let key = w
        .objects()
        .iter()
        .find(|o| o.kind == ObjectKind::Key)
        .unwrap()
        .cell;
    let near_key = free_neighbour(&w, key);
    stand(&mut w, near_key, key);
    w.step(&hold(&[]), 0.1);
    w.step(&hold(&[Key::W]), 0.5);
    assert!(w.has_key());
    assert!(!w.success(), "holding the key is only the first step");
    stand(&mut w, from, door.cell);
    w.step(&hold(&[Key::F]), 0.1);
    assert_eq!(w.state().opened_doors, vec!["locked".to_owned()]);
    assert!(!w.blocked(door.cell.0, door.cell.1));
    assert!(w.success());
    // Walk through it: passed.
    w.step(&hold(&[Key::W]), 1.2);
    assert_eq!(w.state().passed_doors, vec!["locked".to_owned()]);
}

#[test]
fn going_into_a_door_and_back_is_not_going_through() {
    let mut w = World::new(14, Some(TaskKind::Door)).unwrap();
    let colour = w.task().colour.unwrap();
    let door = w
        .doors()
        .iter()
        .find(|d| d.colour == Some(colour))
        .unwrap()
        .clone();
    let from = free_neighbour(&w, door.cell);
    stand(&mut w, from, door.cell);
    w.step(&hold(&[Key::F]), 0.1);
    assert!(!w.blocked(door.cell.0, door.cell.1));
    w.step(&hold(&[Key::W]), 0.5); // into the doorway
    w.step(&hold(&[Key::S]), 0.6); // and back out
    assert!(w.state().passed_doors.is_empty());
    assert!(!w.success());
    w.step(&hold(&[Key::W]), 1.2); // through
    assert_eq!(w.state().passed_doors, vec![colour.name().to_owned()]);
    assert!(w.success());
}

#[test]
fn the_guard_talks_and_the_second_step_must_come_second() {
    let mut w = World::new(15, Some(TaskKind::Guard)).unwrap();
    let guard = guard_cell(&w);
    let from = free_neighbour(&w, guard);
    stand(&mut w, from, guard);
    w.step(&hold(&[Key::F]), 0.1);
    assert!(w.state().talked && w.success());
    assert!(w.message().unwrap().starts_with("Guard:"));
    // Crystal, then chest: the chest first does not count.
    let mut w = World::new(16, Some(TaskKind::CrystalChest)).unwrap();
    let chest_colour = w.task().second.unwrap();
    let chest = w
        .objects()
        .iter()
        .find(|o| o.kind == ObjectKind::Chest(chest_colour))
        .unwrap()
        .cell;
    let from = free_neighbour(&w, chest);
    stand(&mut w, from, chest);
    w.step(&hold(&[Key::F]), 0.1);
    assert_eq!(w.state().opened_chests, vec![chest_colour]);
    assert!(!w.success());
    assert_ne!(Colour::ALL.len(), 0);
}

#[test]
fn frames_are_not_blank_and_change_when_turning_or_moving() {
    let mut w = World::new(21, None).unwrap();
    let mut a = Vec::new();
    w.render(&mut a);
    assert_eq!(a.len(), RENDER_W * RENDER_H * 3);
    let distinct: std::collections::BTreeSet<&[u8]> = a.chunks(3).collect();
    assert!(distinct.len() > 50, "{} colours", distinct.len());
    // The task line is drawn: the top rows hold light text pixels.
    assert!(
        a[..RENDER_W * 10 * 3]
            .chunks(3)
            .any(|p| p[0] > 200 && p[1] > 200)
    );
    w.turn(300.0);
    let mut b = Vec::new();
    w.render(&mut b);
    let changed = a.chunks(3).zip(b.chunks(3)).filter(|(p, q)| p != q).count();
    assert!(
        changed > RENDER_W * RENDER_H / 4,
        "{changed} pixels changed"
    );
    // Same world, same frame.
    let mut c = Vec::new();
    w.render(&mut c);
    assert_eq!(b, c);
}

#[test]
fn the_label_map_says_what_each_pixel_shows() {
    use lumine_arena::render::{label_grid, object_label, render_labelled};
    let mut w = World::new(7, Some(TaskKind::Guard)).unwrap();
    let guard = guard_cell(&w);
    let from = free_neighbour(&w, guard);
    let from = free_neighbour(&w, from);
    stand(&mut w, from, guard);
    let (mut rgb, mut labels) = (Vec::new(), Vec::new());
    render_labelled(&w, &mut rgb, &mut labels);
    // The same picture as render.
    let mut plain = Vec::new();
    w.render(&mut plain);
    assert_eq!(rgb, plain);
    assert_eq!(labels.len(), RENDER_W * RENDER_H);
    // Faced from two cells, the guard is drawn in the middle of the view.
    let class = object_label(ObjectKind::Guard);
    let centre = labels[(RENDER_H / 2) * RENDER_W + RENDER_W / 2];
    assert_eq!(centre, class);
    // The floor in front of the feet and the ceiling show nothing.
    assert_eq!(labels[(RENDER_H - 20) * RENDER_W + 5], 0);
    assert_eq!(labels[20 * RENDER_W + 5], 0);
    // On a 2x1 grid both halves touch the middle column, so both show the guard.
    let grid = label_grid(&labels, 2, 1, 0.01);
    assert!(grid.iter().all(|&m| m & (1 << class) != 0), "{grid:?}");
    // Nothing is claimed above the share asked.
    assert_eq!(label_grid(&labels, 1, 1, 1.0), vec![0]);
}

#[test]
fn long_task_lines_wrap_at_spaces_within_the_frame() {
    use lumine_arena::hud::wrap;
    let lines = wrap("collect a yellow crystal, then open the yellow chest", 39);
    assert_eq!(
        lines,
        ["collect a yellow crystal, then open the", "yellow chest"]
    );
    assert_eq!(wrap("talk to the guard", 39), ["talk to the guard"]);
    // Drawn: the second line's row holds text pixels for a wrapped task.
    let w = (0..200)
        .map(|s| World::new(s, Some(TaskKind::CrystalChest)).unwrap())
        .find(|w| w.task().text().len() > 39)
        .unwrap();
    let mut rgb = Vec::new();
    w.render(&mut rgb);
    let row = |y: usize| rgb[y * RENDER_W * 3..(y + 1) * RENDER_W * 3].to_vec();
    assert!((11..19).any(|y| {
        row(y)
            .chunks(3)
            .any(|p| p[0] > 200 && p[1] > 200 && p[2] > 200)
    }));
}

#[test]
fn a_layout_is_one_hall_with_three_doors_into_closets() {
    for seed in 0..200 {
        let w = World::new(seed, None).unwrap();
        let rooms = w.rooms();
        assert_eq!(rooms.len(), 4, "seed {seed}: the hall and three closets");
        let hall = rooms[0];
        assert_eq!(w.doors().len(), 3);
        // Every object and the player start in the hall.
        let (x, y) = w.position();
        assert!(hall.contains(x.floor() as i32, y.floor() as i32));
        assert!(
            w.objects()
                .iter()
                .all(|o| hall.contains(o.cell.0, o.cell.1))
        );
        // Each door joins the hall to its own closet, and the floor is only
        // the hall, the closets and the doors.
        for (i, d) in w.doors().iter().enumerate() {
            let (a, b) = if d.along_x {
                ((d.cell.0 - 1, d.cell.1), (d.cell.0 + 1, d.cell.1))
            } else {
                ((d.cell.0, d.cell.1 - 1), (d.cell.0, d.cell.1 + 1))
            };
            let closet = rooms[1 + i];
            assert!(
                (hall.contains(a.0, a.1) && closet.contains(b.0, b.1))
                    || (hall.contains(b.0, b.1) && closet.contains(a.0, a.1)),
                "seed {seed}: door {i} at {:?}",
                d.cell
            );
        }
        for (x, y) in (0..MAP_H).flat_map(|y| (0..MAP_W).map(move |x| (x, y))) {
            if w.cell(x, y) == Cell::Floor {
                assert!(
                    rooms.iter().any(|r| r.contains(x, y)),
                    "seed {seed}: stray floor"
                );
            }
        }
    }
}
