//! The remote policy against a tiny HTTP/1.1 server on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use lumine_action::{KeyVocabulary, StreamEvent};
use lumine_context::{ChatMessage, Part, Role};
use lumine_remote::{FrameFormat, GuidedDecoding, RemoteOptions, RemotePolicy};
use lumine_runtime::policy::{Observation, Policy, PolicyError, SharedFrame};
use lumine_vision::RgbImage;

/// How the stream of one answer ends.
#[derive(Clone, Copy, PartialEq)]
enum End {
    /// `data: [DONE]`, then the last chunk.
    Done,
    /// The last chunk without `[DONE]`.
    NoDone,
    /// The socket closes mid-body (no last chunk).
    Abort,
}

/// One scripted answer.
#[derive(Clone)]
struct Answer {
    status: u16,
    /// Raw `data:` payloads (JSON text).
    data: Vec<String>,
    /// Pause after the headers, before the first event.
    delay: Duration,
    end: End,
}

fn piece(text: &str) -> String {
    serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}}]}).to_string()
}

fn ok(pieces: &[&str], end: End) -> Answer {
    let mut data = vec![r#"{"choices":[{"index":0,"delta":{"role":"assistant"}}]}"#.to_owned()];
    data.extend(pieces.iter().map(|p| piece(p)));
    Answer {
        status: 200,
        data,
        delay: Duration::ZERO,
        end,
    }
}

fn status(code: u16) -> Answer {
    Answer {
        status: code,
        data: vec![r#"{"error":"engine overloaded"}"#.to_owned()],
        delay: Duration::ZERO,
        end: End::Done,
    }
}

/// A request as the server saw it.
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// Serves `answers`, one connection each, in order; returns the base URL and
/// the requests seen.
fn serve(answers: Vec<Answer>) -> (String, Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = crossbeam_channel::bounded(16);
    std::thread::Builder::new()
        .name("test-sse-server".into())
        .spawn(move || {
            for answer in answers {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let seen = handle(stream, &answer);
                if tx.send(seen).is_err() {
                    return;
                }
            }
        })
        .unwrap();
    (base, rx)
}

fn handle(mut stream: TcpStream, answer: &Answer) -> Seen {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let seen = Seen { head, body };
    // Write errors are ignored: the client may have given up.
    if answer.status != 200 {
        let text = &answer.data[0];
        let _ = write!(
            stream,
            "HTTP/1.1 {} Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            answer.status,
            text.len()
        );
        return seen;
    }
    let _ = stream.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    let _ = stream.flush();
    std::thread::sleep(answer.delay);
    let chunk = |stream: &mut TcpStream, text: &str| {
        let _ = write!(stream, "{:x}\r\n{text}\r\n", text.len());
        let _ = stream.flush();
    };
    for data in &answer.data {
        chunk(&mut stream, &format!("data: {data}\n\n"));
        std::thread::sleep(Duration::from_millis(5));
    }
    match answer.end {
        End::Done => {
            chunk(&mut stream, "data: [DONE]\n\n");
            let _ = stream.write_all(b"0\r\n\r\n");
        }
        End::NoDone => {
            let _ = stream.write_all(b"0\r\n\r\n");
        }
        End::Abort => {}
    }
    let _ = stream.flush();
    seen
}

fn frame(shade: u8) -> SharedFrame {
    let (w, h) = (32, 24);
    let data = (0..w * h * 3)
        .map(|i| shade.wrapping_add((i % 251) as u8))
        .collect();
    Arc::new(RgbImage::new(w, h, data).unwrap())
}

fn messages(frames: &[SharedFrame]) -> Vec<ChatMessage<SharedFrame>> {
    let mut out = vec![
        ChatMessage {
            role: Role::System,
            parts: vec![Part::Text("You are a player.".into())],
        },
        ChatMessage {
            role: Role::User,
            parts: vec![Part::Text("Goal: walk.".into())],
        },
    ];
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            out.push(ChatMessage {
                role: Role::Assistant,
                parts: vec![Part::Text(
                    "<|action_start|>0 0 0 ; W ; W ; W ; W ; W ; W<|action_end|>".into(),
                )],
            });
        }
        out.push(ChatMessage {
            role: Role::User,
            parts: vec![Part::Frame(Arc::clone(f))],
        });
    }
    out
}

fn options(base: &str) -> RemoteOptions {
    let mut o = RemoteOptions::new(base, "lumine-test");
    o.connect_timeout = Duration::from_millis(500);
    // Generous for a loaded CI machine, short enough to keep each test quick.
    o.first_token_timeout = Duration::from_millis(800);
    o.chunk_timeout = Duration::from_millis(800);
    o.initial_backoff = Duration::from_millis(20);
    // An environment variable every test process has stands in for the key.
    o.api_key_env = "PATH".into();
    o
}

/// The observation of the step after `frames` (the last one is current).
fn observation<'a>(
    frames: &'a [SharedFrame],
    msgs: &'a [ChatMessage<SharedFrame>],
) -> Observation<'a> {
    Observation {
        step: frames.len() as u64,
        frame: frames.last().unwrap(),
        messages: msgs,
        first_chunk_due: None,
    }
}

fn step(
    policy: &mut RemotePolicy,
    frames: &[SharedFrame],
) -> (Result<lumine_action::Turn, PolicyError>, Vec<StreamEvent>) {
    let msgs = messages(frames);
    let observation = observation(frames, &msgs);
    let mut events = Vec::new();
    let result = policy.next_turn(&observation, &mut |e| events.push(e));
    (result, events)
}

const PIECES: [&str; 9] = [
    "<|action_start|>",
    "3 0 0",
    " ;",
    " W ;",
    " W ;",
    " ; ;",
    " Shift ;",
    " LB",
    "<|action_end|>",
];

#[test]
fn streams_a_valid_action_in_order() {
    let (base, seen) = serve(vec![ok(&PIECES, End::Done)]);
    let mut opts = options(&base);
    opts.guided = GuidedDecoding::Vllm;
    let mut policy = RemotePolicy::new(opts, &KeyVocabulary::default());
    let (result, events) = step(&mut policy, &[frame(0)]);
    let turn = result.unwrap();
    assert_eq!(turn.action.dx, 3);
    assert!(matches!(
        events[0],
        StreamEvent::Mouse {
            dx: 3,
            dy: 0,
            dz: 0
        }
    ));
    for (i, event) in events[1..7].iter().enumerate() {
        assert!(
            matches!(event, StreamEvent::Chunk { index, .. } if *index == i),
            "{event:?}"
        );
    }
    assert!(matches!(events[7], StreamEvent::End(_)));
    assert_eq!(events.len(), 8);

    let request = seen.recv_timeout(Duration::from_secs(2)).unwrap();
    assert!(
        request
            .head
            .starts_with("POST /v1/chat/completions HTTP/1.1")
    );
    let key = std::env::var("PATH").unwrap();
    assert!(
        request
            .head
            .lines()
            .any(|l| l.eq_ignore_ascii_case(&format!("authorization: Bearer {key}"))),
        "{}",
        request.head
    );
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["model"], "lumine-test");
    assert_eq!(body["stream"], true);
    assert_eq!(body["temperature"], 0);
    assert_eq!(body["max_tokens"], 160);
    assert_eq!(body["max_completion_tokens"], 160);
    assert!(body["guided_regex"].as_str().unwrap().contains("Shift"));
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    let image = &messages.last().unwrap()["content"][0];
    assert_eq!(image["type"], "image_url");
    assert!(
        image["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/jpeg;base64,/9j/")
    );
}

#[test]
fn a_stream_without_done_still_gives_the_turn() {
    let (base, _seen) = serve(vec![
        ok(&PIECES, End::NoDone),
        // A bare action (no markers), then a clean end of stream.
        ok(&["1 2 0 ; W ;", " ; ; ; ;"], End::NoDone),
    ]);
    let mut policy = RemotePolicy::new(options(&base), &KeyVocabulary::default());
    let (result, _) = step(&mut policy, &[frame(0)]);
    assert_eq!(result.unwrap().action.dx, 3);
    let (result, events) = step(&mut policy, &[frame(0)]);
    assert_eq!(result.unwrap().action.dy, 2);
    assert!(matches!(events.last(), Some(StreamEvent::End(_))));
}

#[test]
fn a_500_is_retried() {
    let (base, seen) = serve(vec![status(500), ok(&PIECES, End::Done)]);
    let mut policy = RemotePolicy::new(options(&base), &KeyVocabulary::default());
    let (result, _) = step(&mut policy, &[frame(0)]);
    assert_eq!(result.unwrap().action.dx, 3);
    let first = seen.recv_timeout(Duration::from_secs(1)).unwrap();
    let second = seen.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(first.body, second.body, "a retry sends the same request");
}

#[test]
fn persistent_500_gives_up_after_bounded_retries() {
    let (base, seen) = serve(vec![status(500), status(503), status(500), status(500)]);
    let mut opts = options(&base);
    opts.first_token_timeout = Duration::from_secs(5);
    let mut policy = RemotePolicy::new(opts, &KeyVocabulary::default());
    let started = Instant::now();
    let (result, events) = step(&mut policy, &[frame(0)]);
    let err = result.unwrap_err();
    assert!(events.is_empty());
    let text = err.to_string();
    assert!(matches!(err, PolicyError::Disconnected(_)), "{err:?}");
    assert!(
        text.contains("500") && text.contains("engine overloaded"),
        "{text}"
    );
    assert!(text.contains("3 tries"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(seen.try_iter().count(), 3, "exactly three tries");
}

#[test]
fn a_client_error_is_reported_with_status_and_body() {
    let (base, _seen) = serve(vec![status(404)]);
    let mut policy = RemotePolicy::new(options(&base), &KeyVocabulary::default());
    let err = step(&mut policy, &[frame(0)]).0.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("404") && text.contains("engine overloaded"),
        "{text}"
    );
}

#[test]
fn a_slow_first_token_is_a_stall() {
    let mut slow = ok(&PIECES, End::Done);
    slow.delay = Duration::from_secs(3);
    let (base, _seen) = serve(vec![slow]);
    let mut policy = RemotePolicy::new(options(&base), &KeyVocabulary::default());
    let started = Instant::now();
    let (result, events) = step(&mut policy, &[frame(0)]);
    assert!(matches!(result, Err(PolicyError::Stalled(_))), "{result:?}");
    assert!(events.is_empty());
    assert!(started.elapsed() < Duration::from_millis(2500));
}

#[test]
fn a_mid_stream_disconnect_is_reported() {
    let (base, _seen) = serve(vec![ok(&PIECES[..4], End::Abort)]);
    let mut policy = RemotePolicy::new(options(&base), &KeyVocabulary::default());
    let (result, events) = step(&mut policy, &[frame(0)]);
    assert!(
        matches!(result, Err(PolicyError::Disconnected(_))),
        "{result:?}"
    );
    // Mouse and the first chunk arrived before the break.
    assert_eq!(events.len(), 2, "{events:?}");
}

#[test]
fn malformed_json_is_named() {
    let mut answer = ok(&PIECES[..2], End::Done);
    answer.data.push("{\"choices\": [".into());
    let (base, _seen) = serve(vec![answer]);
    let mut policy = RemotePolicy::new(options(&base), &KeyVocabulary::default());
    let err = step(&mut policy, &[frame(0)]).0.unwrap_err();
    assert!(err.to_string().contains("malformed JSON"), "{err}");
}

#[test]
fn an_invalid_action_is_never_played() {
    let pieces = [
        "<|action_start|>",
        "3 0 0",
        " ; W",
        " ;",
        " Bogus ;",
        " W ; W ; W ; W",
        "<|action_end|>",
    ];
    let (base, _seen) = serve(vec![ok(&pieces, End::Done)]);
    let mut policy = RemotePolicy::new(options(&base), &KeyVocabulary::default());
    let (result, events) = step(&mut policy, &[frame(0)]);
    assert!(
        matches!(result, Err(PolicyError::Parse { .. })),
        "{result:?}"
    );
    assert!(matches!(events[0], StreamEvent::Mouse { .. }));
    assert!(
        events[1..]
            .iter()
            .all(|e| matches!(e, StreamEvent::Chunk { index: 0, .. }))
    );
    assert!(!events.iter().any(|e| matches!(e, StreamEvent::End(_))));
}

#[test]
fn consecutive_steps_share_a_byte_identical_prefix() {
    let (base, seen) = serve(vec![ok(&PIECES, End::Done), ok(&PIECES, End::Done)]);
    let mut policy = RemotePolicy::new(options(&base), &KeyVocabulary::default());
    let (a, b) = (frame(1), frame(2));
    step(&mut policy, std::slice::from_ref(&a)).0.unwrap();
    step(&mut policy, &[a, b]).0.unwrap();
    let first = seen.recv_timeout(Duration::from_secs(1)).unwrap().body;
    let second = seen.recv_timeout(Duration::from_secs(1)).unwrap().body;
    // The messages array is the body's prefix up to its closing bracket.
    let end = first
        .windows(10)
        .position(|w| w == b"],\"model\":")
        .unwrap();
    assert!(second.starts_with(&first[..end]));
    assert!(second.len() > first.len());
}

#[test]
fn the_canceller_stops_a_turn_in_progress() {
    let mut slow = ok(&PIECES, End::Done);
    slow.delay = Duration::from_secs(3);
    let (base, _seen) = serve(vec![slow]);
    let mut opts = options(&base);
    opts.first_token_timeout = Duration::from_secs(5);
    let mut policy = RemotePolicy::new(opts, &KeyVocabulary::default());
    let cancel = policy.canceller().unwrap();
    std::thread::Builder::new()
        .name("test-cancel".into())
        .spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            cancel();
        })
        .unwrap();
    let started = Instant::now();
    let (result, _) = step(&mut policy, &[frame(0)]);
    assert_eq!(result.unwrap_err(), PolicyError::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// The request body of one step with `opts`, parsed (no server needed).
fn body_with(opts: RemoteOptions, frames: &[SharedFrame]) -> serde_json::Value {
    let mut policy = RemotePolicy::new(opts, &KeyVocabulary::default());
    let msgs = messages(frames);
    let observation = observation(frames, &msgs);
    serde_json::from_slice(&policy.request_body(&observation).unwrap()).unwrap()
}

#[test]
fn png_frames_carry_the_exact_pixels() {
    use base64::Engine as _;
    let mut opts = options("http://127.0.0.1:9");
    opts.frame_format = FrameFormat::Png;
    let (a, b) = (frame(7), frame(200));
    let body = body_with(opts, &[Arc::clone(&a), Arc::clone(&b)]);
    let urls: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .filter_map(|part| part["image_url"]["url"].as_str())
        .collect();
    assert_eq!(urls.len(), 2);
    for (url, original) in urls.iter().zip([&a, &b]) {
        let data = url.strip_prefix("data:image/png;base64,").unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        let decoded = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .unwrap()
            .to_rgb8();
        assert_eq!(decoded.dimensions(), (original.width, original.height));
        assert_eq!(decoded.into_raw(), original.data, "lossless");
    }
}

#[test]
fn jpeg_is_the_default_and_strict_openai_leaves_out_vendor_fields() {
    let f = frame(3);
    let body = body_with(options("http://127.0.0.1:9"), std::slice::from_ref(&f));
    assert_eq!(body["skip_special_tokens"], false);
    assert!(
        body.to_string().contains("data:image/jpeg;base64,"),
        "JPEG frames by default"
    );

    let mut opts = options("http://127.0.0.1:9");
    opts.strict_openai = true;
    let body = body_with(opts, &[f]);
    let fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        [
            "max_completion_tokens",
            "max_tokens",
            "messages",
            "model",
            "stream",
            "temperature"
        ],
        "only OpenAI chat-completions fields"
    );
    assert_eq!(body["temperature"], 0, "greedy");
}
