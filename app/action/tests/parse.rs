//! Whole-text and streaming parsing: accepted forms, exact error offsets.

use lumine_action::{
    Action, Chunk, Key, KeyVocabulary, NumberField, NumberProblem, ParseError, ParseErrorKind,
    StreamEvent, StreamParser, Turn, parse_action, parse_turn,
};

const SPEC: &str = "92 0 0 ; Shift W ; Shift W ; Shift W ; F W ; F W ; F";
const IDLE: &str = "0 0 0 ; ; ; ; ; ;";

fn vocab() -> KeyVocabulary {
    KeyVocabulary::default()
}

fn chunk(keys: &[Key]) -> Chunk {
    Chunk::new(keys).unwrap()
}

fn parse(s: &str) -> Result<Turn, ParseError> {
    parse_turn(s, &vocab())
}

/// Parses `s`, expecting an error; also checks that streaming it one
/// character at a time gives the same error.
fn err(s: &str) -> ParseError {
    let whole = parse(s).expect_err(s);
    assert_eq!(stream_chars(s), Err(whole.clone()), "stream of {s:?}");
    whole
}

fn stream_chars(s: &str) -> Result<Turn, ParseError> {
    let mut p = StreamParser::new(&vocab());
    let mut events = Vec::new();
    let mut buf = [0u8; 4];
    for c in s.chars() {
        p.push(c.encode_utf8(&mut buf), &mut events)?;
    }
    p.finish(&mut events)
}

fn spec_action() -> Action {
    let sw = chunk(&[Key::Shift, Key::W]);
    let fw = chunk(&[Key::F, Key::W]);
    Action::new(92, 0, 0, [sw, sw, sw, fw, fw, chunk(&[Key::F])]).unwrap()
}

#[test]
fn spec_example() {
    let v = vocab();
    let turn = parse(SPEC).unwrap();
    assert_eq!(turn.thought, None);
    assert_eq!(turn.action.dx, 92);
    assert_eq!(turn.action.dy, 0);
    assert_eq!(turn.action.dz, 0);
    assert_eq!(turn.action.chunks[0].keys(), [Key::Shift, Key::W]);
    assert_eq!(turn.action.chunks[3].keys(), [Key::F, Key::W]);
    assert_eq!(turn.action.chunks[5].keys(), [Key::F]);
    assert_eq!(turn.action, spec_action());
    assert_eq!(turn.format(&v), SPEC);
    assert_eq!(parse_action(SPEC, &v).unwrap(), spec_action());
}

#[test]
fn idle_and_extremes() {
    let v = vocab();
    assert_eq!(parse(IDLE).unwrap().action, Action::IDLE);
    let t = parse("-999 999 -5 ; A B C Z ; ; ; ; ; XB2").unwrap();
    assert_eq!((t.action.dx, t.action.dy, t.action.dz), (-999, 999, -5));
    assert_eq!(t.action.chunks[5].keys(), [Key::MouseX2]);
    assert_eq!(t.format(&v), "-999 999 -5 ; A B C Z ; ; ; ; ; XB2");
    // Case sensitivity: `one` is the digit, `One` is F1.
    let t = parse("0 0 0 ; one One ; ; ; ; ;").unwrap();
    assert_eq!(t.action.chunks[0].keys(), [Key::Digit1, Key::F1]);
}

#[test]
fn whitespace_variants() {
    for s in [
        "92 0 0;Shift W;Shift W;Shift W;F W;F W;F",
        "  92\t0   0   ;  Shift   W ;Shift\tW\n;\r\nShift W ; F W ;F W;F  \n",
        "92 0 0 ;Shift W; Shift W ;Shift W;F  W ;F W ; F\t",
        "\n92 0 0\n; Shift W ; Shift W ; Shift W ; F W ; F W ; F",
    ] {
        let t = parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(t.action, spec_action(), "{s:?}");
        assert_eq!(t.format(&vocab()), SPEC);
    }
    let t = parse("0 0 0;;;;;;").unwrap();
    assert_eq!(t.action, Action::IDLE);
}

#[test]
fn wrapped_and_full_turns() {
    let v = vocab();
    let wrapped = format!("<|action_start|>{SPEC}<|action_end|>");
    let t = parse(&wrapped).unwrap();
    assert_eq!(
        t,
        Turn {
            thought: None,
            action: spec_action()
        }
    );
    assert_eq!(t.format_model(&v), wrapped);
    let spaced = format!("  <|action_start|> \n{SPEC}  <|action_end|>\n");
    assert_eq!(parse(&spaced).unwrap(), t);

    let full = format!(
        "<|thought_start|>前方有敌人，先后退<|thought_end|><|action_start|>{SPEC}<|action_end|>"
    );
    let t = parse(&full).unwrap();
    assert_eq!(t.thought.as_deref(), Some("前方有敌人，先后退"));
    assert_eq!(t.action, spec_action());
    assert_eq!(t.format(&v), full);
    assert_eq!(parse_action(&full, &v).unwrap(), spec_action());

    // Thought trimmed; whitespace between the thought and the action.
    let t = parse(&format!(
        "<|thought_start|>  go left\n <|thought_end|>\n<|action_start|>{IDLE}<|action_end|>"
    ))
    .unwrap();
    assert_eq!(t.thought.as_deref(), Some("go left"));
    // Empty thought, and `<` / `|` inside a thought.
    let t = parse(&format!(
        "<|thought_start|><|thought_end|><|action_start|>{IDLE}<|action_end|>"
    ))
    .unwrap();
    assert_eq!(t.thought.as_deref(), Some(""));
    let t = parse(&format!(
        "<|thought_start|>a<b | c <<<|thought_end|><|action_start|>{IDLE}<|action_end|>"
    ))
    .unwrap();
    assert_eq!(t.thought.as_deref(), Some("a<b | c <<"));
}

fn kind_at(s: &str, offset: usize, kind: ParseErrorKind) {
    let e = err(s);
    assert_eq!((e.offset, e.kind.clone()), (offset, kind), "{s:?}: {e}");
}

#[test]
fn unknown_key() {
    let e = err("0 0 0 ; Shx ; ; ; ; ;");
    assert_eq!(e.offset, 10);
    assert_eq!(e.kind, ParseErrorKind::UnknownKey { name: "Shx".into() });
    assert_eq!(
        e.to_string(),
        "at byte 10: unknown key \"Shx\" (expected a key name such as W, Shift, LB)"
    );
    assert_eq!(
        e.message(),
        "unknown key \"Shx\" (expected a key name such as W, Shift, LB)"
    );
    assert_eq!(e.offset(), 10);
    // A prefix that is no name fails where it ends.
    kind_at(
        "0 0 0 ; Sh ; ; ; ; ;",
        10,
        ParseErrorKind::UnknownKey { name: "Sh".into() },
    );
    kind_at(
        "0 0 0 ; ; ; ; ; ; Sh",
        20,
        ParseErrorKind::UnknownKey { name: "Sh".into() },
    );
    kind_at(
        "0 0 0 ; w ; ; ; ; ;",
        8,
        ParseErrorKind::UnknownKey { name: "w".into() },
    );
    kind_at(
        "0 0 0 ; W跳 ; ; ; ; ;",
        9,
        ParseErrorKind::UnknownKey {
            name: "W跳".into()
        },
    );
}

#[test]
fn fifth_and_duplicate_keys() {
    kind_at(
        "0 0 0 ; A B C Z Q ; ; ; ; ;",
        16,
        ParseErrorKind::TooManyKeys { group: 0 },
    );
    kind_at(
        "0 0 0 ; W W ; ; ; ; ;",
        10,
        ParseErrorKind::DuplicateKey {
            group: 0,
            name: "W".into(),
        },
    );
    // `Sh` can only become `Shift`, already in the group.
    kind_at(
        "0 0 0 ; ; Shift Shift ; ; ; ;",
        17,
        ParseErrorKind::DuplicateKey {
            group: 1,
            name: "Shift".into(),
        },
    );
    // `S` could still become `Shift`: the duplicate shows at the end of the name.
    kind_at(
        "0 0 0 ; ; ; ; ; ; S Shift S",
        27,
        ParseErrorKind::DuplicateKey {
            group: 5,
            name: "S".into(),
        },
    );
}

#[test]
fn group_count() {
    kind_at(
        "0 0 0 ; ; ; ; ;",
        15,
        ParseErrorKind::MissingGroup { found: 5 },
    );
    kind_at("0 0 0", 5, ParseErrorKind::MissingGroup { found: 0 });
    kind_at("0 0 0 ; W", 9, ParseErrorKind::MissingGroup { found: 1 });
    kind_at(
        "<|action_start|>0 0 0 ; ; ;<|action_end|>",
        27,
        ParseErrorKind::MissingGroup { found: 3 },
    );
    kind_at(
        "<|action_start|>0 0 0<|action_end|>",
        21,
        ParseErrorKind::MissingGroup { found: 0 },
    );
    kind_at("0 0 0 ; ; ; ; ; ; ;", 18, ParseErrorKind::ExtraGroup);
    kind_at("0 0 0 ; ; ; ; ; ; W;", 19, ParseErrorKind::ExtraGroup);
}

#[test]
fn numbers() {
    let dx = NumberField::Dx;
    let dz = NumberField::Dz;
    kind_at(
        "1000 0 0 ; ; ; ; ; ;",
        3,
        ParseErrorKind::NumberOutOfRange { field: dx },
    );
    kind_at(
        "-1000 0 0 ; ; ; ; ; ;",
        4,
        ParseErrorKind::NumberOutOfRange { field: dx },
    );
    kind_at(
        "0 9999 0 ; ; ; ; ; ;",
        5,
        ParseErrorKind::NumberOutOfRange {
            field: NumberField::Dy,
        },
    );
    kind_at(
        "0 0 6 ; ; ; ; ; ;",
        4,
        ParseErrorKind::NumberOutOfRange { field: dz },
    );
    kind_at(
        "0 0 -10 ; ; ; ; ; ;",
        6,
        ParseErrorKind::NumberOutOfRange { field: dz },
    );
    let malformed = |field, problem| ParseErrorKind::MalformedNumber { field, problem };
    kind_at(
        "+1 0 0 ; ; ; ; ; ;",
        0,
        malformed(dx, NumberProblem::PlusSign),
    );
    kind_at(
        "01 0 0 ; ; ; ; ; ;",
        1,
        malformed(dx, NumberProblem::LeadingZero),
    );
    kind_at(
        "-0 0 0 ; ; ; ; ; ;",
        1,
        malformed(dx, NumberProblem::NegativeZero),
    );
    kind_at(
        "- 1 0 0 ; ; ; ; ; ;",
        1,
        malformed(dx, NumberProblem::MissingDigits),
    );
    kind_at(
        "0 0 00 ; ; ; ; ; ;",
        5,
        malformed(dz, NumberProblem::LeadingZero),
    );
    kind_at("0 0 -", 5, malformed(dz, NumberProblem::MissingDigits));
    kind_at(
        "0\n0 0 ; ; ; ; ; ;",
        1,
        ParseErrorKind::UnexpectedChar {
            found: '\n',
            expected: "a digit, or a space and the DY number",
        },
    );
    kind_at(
        "1 2x 3",
        3,
        ParseErrorKind::UnexpectedChar {
            found: 'x',
            expected: "a digit, or a space and the DZ number",
        },
    );
    kind_at(
        "0 0",
        3,
        ParseErrorKind::UnexpectedEnd {
            expected: "a space and the DZ number",
        },
    );
    kind_at(
        "0 0 0 x",
        6,
        ParseErrorKind::UnexpectedChar {
            found: 'x',
            expected: "`;` and the first key group",
        },
    );
}

#[test]
fn markers_and_thoughts() {
    let end = format!("<|action_start|>{IDLE}<|action_end|>");
    kind_at(
        &format!("{end} x"),
        end.len() + 1,
        ParseErrorKind::TrailingText { found: 'x' },
    );
    kind_at(
        &format!("{end}{end}"),
        end.len(),
        ParseErrorKind::TrailingText { found: '<' },
    );
    kind_at(
        "<|thought_start|>abc",
        20,
        ParseErrorKind::UnterminatedThought,
    );
    kind_at(
        "<|thought_start|>abc<|thou",
        26,
        ParseErrorKind::UnterminatedThought,
    );
    kind_at(
        &format!("<|thought_start|>abc<|thought_end|>{IDLE}"),
        35,
        ParseErrorKind::MissingActionStart { found: Some('0') },
    );
    kind_at(
        "<|thought_start|>abc<|thought_end|>  ",
        37,
        ParseErrorKind::MissingActionStart { found: None },
    );
    kind_at(
        &format!("<|action_start|>{IDLE}"),
        33,
        ParseErrorKind::MissingActionEnd { found: None },
    );
    kind_at(
        &format!("<|action_start|>{IDLE} W<|im_end|>"),
        37,
        ParseErrorKind::MissingActionEnd { found: Some('i') },
    );
    kind_at(
        "<|thought_start|>a<|b",
        20,
        ParseErrorKind::UnexpectedChar {
            found: 'b',
            expected: "`<|thought_end|>` (a thought cannot contain `<|`)",
        },
    );
    kind_at(
        "<|bogus|>",
        2,
        ParseErrorKind::UnexpectedChar {
            found: 'b',
            expected: "`<|thought_start|>` or `<|action_start|>`",
        },
    );
    // A bare action has no end marker.
    let e = err(&format!("{IDLE}<|action_end|>"));
    assert_eq!(e.offset, IDLE.len());
    assert!(
        matches!(e.kind, ParseErrorKind::UnexpectedChar { found: '<', .. }),
        "{e}"
    );
    // A thought needs the action markers.
    let e = err(&format!(
        "<|thought_start|>x<|thought_end|><|action_start|>{IDLE}"
    ));
    assert_eq!(e.kind, ParseErrorKind::MissingActionEnd { found: None });
}

#[test]
fn empty_and_garbage() {
    kind_at("", 0, ParseErrorKind::EmptyInput);
    kind_at(" \t\n", 3, ParseErrorKind::EmptyInput);
    let e = err("hello");
    assert_eq!(e.offset, 0);
    assert!(matches!(
        e.kind,
        ParseErrorKind::UnexpectedChar { found: 'h', .. }
    ));
    let e = err("跳");
    assert!(matches!(
        e.kind,
        ParseErrorKind::UnexpectedChar { found: '跳', .. }
    ));
    kind_at(
        "<|act",
        5,
        ParseErrorKind::UnexpectedEnd {
            expected: "`<|action_start|>`",
        },
    );
    // Every kind's message says what was expected.
    for s in [
        "",
        "x",
        "0 0 0 ; Shx",
        "0 0 7",
        "01",
        "0 0 0 ; ; ; ; ; ; ;",
        "<|thought_start|>",
    ] {
        let e = err(s);
        assert!(e.message().contains("expected"), "{s:?}: {e}");
    }
}

#[test]
fn stream_events_and_split_markers() {
    let v = vocab();
    let text = format!("<|thought_start|>走<|thought_end|><|action_start|>{SPEC}<|action_end|>");
    // Split inside the markers, inside names and inside numbers.
    let fragments: Vec<&str> = {
        let mut cuts = vec![0];
        for probe in ["<|thou", "<|thought_end", "<|act", "9", "Shi", "<|action_e"] {
            let from = *cuts.last().unwrap();
            cuts.push(from + text[from..].find(probe).unwrap() + probe.len());
        }
        cuts.push(text.len());
        cuts.windows(2).map(|w| &text[w[0]..w[1]]).collect()
    };
    assert_eq!(fragments.concat(), text);
    let mut p = StreamParser::new(&v);
    let mut events = Vec::new();
    for f in &fragments {
        p.push(f, &mut events).unwrap();
    }
    assert!(p.is_done());
    let turn = p.finish(&mut events).unwrap();
    assert_eq!(turn, parse(&text).unwrap());
    let a = spec_action();
    let mut expected = vec![
        StreamEvent::Thought("走".into()),
        StreamEvent::Mouse {
            dx: 92,
            dy: 0,
            dz: 0,
        },
    ];
    for (index, chunk) in a.chunks.iter().enumerate() {
        expected.push(StreamEvent::Chunk {
            index,
            chunk: *chunk,
        });
    }
    expected.push(StreamEvent::End(turn));
    assert_eq!(events, expected);

    // `<|act` + `ion_end|>`: chunk 5 and End arrive with the second half.
    let mut p = StreamParser::new(&v);
    let mut events = Vec::new();
    p.push(&format!("<|action_start|>{IDLE}<|act"), &mut events)
        .unwrap();
    assert_eq!(events.len(), 6, "{events:?}");
    p.push("ion_end|>", &mut events).unwrap();
    assert!(matches!(events.last(), Some(StreamEvent::End(_))));
    assert_eq!(events.len(), 8);
}

#[test]
fn chunks_stream_at_their_delimiter() {
    let v = vocab();
    let mut p = StreamParser::new(&v);
    let mut events = Vec::new();
    p.push("0 0 0 ; W", &mut events).unwrap();
    assert_eq!(
        events,
        [StreamEvent::Mouse {
            dx: 0,
            dy: 0,
            dz: 0
        }]
    );
    p.push(" ;", &mut events).unwrap();
    assert_eq!(
        events[1],
        StreamEvent::Chunk {
            index: 0,
            chunk: chunk(&[Key::W])
        }
    );
    p.push(" ; ; ; ; LB", &mut events).unwrap();
    assert_eq!(events.len(), 6);
    // A bare action's last chunk comes at finish.
    let turn = p.finish(&mut events).unwrap();
    assert_eq!(
        events[6],
        StreamEvent::Chunk {
            index: 5,
            chunk: chunk(&[Key::MouseLeft])
        }
    );
    assert_eq!(events[7], StreamEvent::End(turn));
}

#[test]
fn stream_stays_failed_and_offsets_are_global() {
    let v = vocab();
    let mut p = StreamParser::new(&v);
    let mut events = Vec::new();
    p.push("0 0 0 ; ", &mut events).unwrap();
    assert_eq!(p.offset(), 8);
    let e = p.push("W Shx", &mut events).unwrap_err();
    assert_eq!(e.offset, 12);
    assert!(p.error().is_some());
    assert_eq!(e, p.push("ift ; ; ; ; ;", &mut events).unwrap_err());
    assert_eq!(e, p.finish(&mut events).unwrap_err());
    let e2 = p.push("", &mut events).unwrap_err();
    assert_eq!(e, e2);
    // The error is the whole parse's.
    let whole = parse("0 0 0 ; W Shx").unwrap_err();
    let mut p = StreamParser::new(&v);
    p.push("0 0 0 ; W Sh", &mut events).unwrap();
    assert_eq!(p.push("x", &mut events).unwrap_err(), whole);
    assert_eq!(whole.offset, 12);
    p.reset();
    p.push(IDLE, &mut events).unwrap();
    assert_eq!(p.finish(&mut events).unwrap().action, Action::IDLE);
}

#[test]
fn custom_vocabulary() {
    let v = KeyVocabulary::from_ron(r#"(keys: {"前进": W, "跳": Space, "W": Up})"#).unwrap();
    let t = parse_turn("0 0 0 ; 前进 跳 ; W ; ; ; ;", &v).unwrap();
    assert_eq!(t.action.chunks[0].keys(), [Key::W, Key::Space]);
    assert_eq!(t.action.chunks[1].keys(), [Key::Up]);
    assert_eq!(t.format(&v), "0 0 0 ; 前进 跳 ; W ; ; ; ;");
    let e = parse_turn("0 0 0 ; 前后 ; ; ; ; ;", &v).unwrap_err();
    // The error points at the start of the impossible character.
    assert_eq!(
        (e.offset, e.kind),
        (
            11,
            ParseErrorKind::UnknownKey {
                name: "前后".into()
            }
        )
    );
    assert!(parse_turn(SPEC, &v).is_err());
}
