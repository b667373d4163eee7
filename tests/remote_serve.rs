//! The remote policy against a real OpenAI-compatible server: `transformers
//! serve` on the CPU with the bundled model's Hugging Face checkpoint
//! (`models/arena-tiny/hf`), driven by a headless `lumine run --remote` over
//! recorded arena frames. The actions it plays must be the ones the embedded
//! engine plays with the same model on the same frames (greedy decoding on
//! both sides).
//!
//! Opt-in (`#[ignore]`): it needs the Python environment of
//! `scripts/setup-export-env` (torch, transformers with its serving extras) and
//! a release build:
//!
//! ```text
//! scripts/setup-export-env
//! cargo build --release -p lumine-cli
//! cargo test --release -p lumine-tests --test remote_serve -- --ignored --nocapture
//! ```
//!
//! `$LUMINE_EXPORT_VENV` points at another environment than `.venv-export/`.

#![cfg(unix)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lumine_tests::{lumine, stderr};

/// Steps each run plays.
const STEPS: usize = 12;
/// The embedded engine's model and the checkpoint the server serves.
const MODEL: &str = "arena-tiny";
/// The recorded episode the frames come from: an evaluation layout (never in
/// the model's training data) on which the model's answers change with the
/// frame: it scans to the right, turns toward the guard and walks, aims again.
const SEED: &str = "1000014";
const TASK: &str = "guard";
/// Frames of history in the context, on both sides: the one frame the
/// bundled model was trained with (its manifest's `history_frames`).
const HISTORY: &str = "1";
/// Longest wait for the server to load torch and the model.
const SERVER_START: Duration = Duration::from_secs(180);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

/// The Python environment with `transformers serve`, or a panic that says how to make it.
fn export_venv() -> PathBuf {
    let venv = std::env::var_os("LUMINE_EXPORT_VENV")
        .map_or_else(|| repo().join(".venv-export"), PathBuf::from);
    assert!(
        venv.join("bin/transformers").is_file() && venv.join(".ready").is_file(),
        "this opt-in test needs the Python environment with `transformers serve` at {} \
         (or $LUMINE_EXPORT_VENV): create it with `scripts/setup-export-env`",
        venv.display()
    );
    venv
}

/// `transformers serve` in its own process group, killed (group and all) on drop,
/// also when the test fails.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    /// Starts the server on a free port with `checkpoint` pinned, on the CPU.
    fn start(venv: &Path, checkpoint: &Path, log: PathBuf) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let out = std::fs::File::create(&log).expect("server log");
        let child = Command::new(venv.join("bin/transformers"))
            .arg("serve")
            .arg(checkpoint)
            .args([
                "--device",
                "cpu",
                "--dtype",
                "float32",
                "--host",
                "127.0.0.1",
            ])
            .args(["--port", &port.to_string()])
            .env("HF_HUB_OFFLINE", "1")
            .env("TRANSFORMERS_OFFLINE", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("server log"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("start `transformers serve`");
        Server { child, port, log }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the server answers a chat completion with `warmup` (a
    /// request with a frame, so the first step does not pay for loading the
    /// image processor either).
    fn wait_ready(&mut self, warmup: &str) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("server status") {
                panic!("`transformers serve` exited ({status}):\n{}", self.log());
            }
            if let Ok((code, body)) = http_post(self.port, "/v1/chat/completions", warmup) {
                assert_eq!(code, 200, "warm-up request: {body}\n{}", self.log());
                eprintln!(
                    "server ready after {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                return;
            }
            assert!(
                started.elapsed() < SERVER_START,
                "`transformers serve` did not answer within {SERVER_START:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The whole group: uvicorn and anything it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 POST of JSON to 127.0.0.1: status code and body.
fn http_post(port: u16, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let code = response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not HTTP: {response:.200}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((code, body))
}

/// The `prompts: (instruction: "...")` string of a `manifest.ron`.
fn manifest_instruction_prompt(manifest: &str) -> String {
    let start = manifest
        .find("instruction: \"")
        .expect("manifest.ron has prompts.instruction")
        + "instruction: \"".len();
    let mut prompt = String::new();
    let mut chars = manifest[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return prompt,
            '\\' => match chars.next().expect("escape in manifest.ron") {
                'n' => prompt.push('\n'),
                't' => prompt.push('\t'),
                other => prompt.push(other),
            },
            c => prompt.push(c),
        }
    }
    panic!("unterminated prompts.instruction in manifest.ron")
}

/// The actions of a recorded run, in step order.
fn recorded_actions(dir: &Path) -> Vec<String> {
    let steps = std::fs::read_to_string(dir.join("steps.jsonl"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    steps
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let step: serde_json::Value = serde_json::from_str(l).expect("a step line");
            step["action"]
                .as_str()
                .expect("action of a step")
                .to_owned()
        })
        .collect()
}

#[test]
#[ignore = "needs scripts/setup-export-env and a release build; see the file's header"]
fn transformers_serve_plays_the_actions_of_the_embedded_engine() {
    let venv = export_venv();
    let model = repo().join("models").join(MODEL);
    let checkpoint = model.join("hf");
    let tmp = tempfile::tempdir().unwrap();
    let started = Instant::now();

    // Frames: a recorded arena episode (640x360 JPEG, scaled to the model's 256x144 by both runs).
    let demos = tmp.path().join("demos");
    let out = lumine(&tmp)
        .args(["arena", "demos", "--episodes", "1", "--seed", SEED])
        .args(["--tasks", TASK, "--out"])
        .arg(&demos)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let episode = std::fs::read_dir(&demos)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("meta.json").is_file())
        .expect("one recorded episode");
    let meta = lumine_tests::read_json(&episode.join("meta.json"));
    let instruction = meta["instruction"].as_str().expect("the task's text");
    let first_frame = std::fs::read_dir(episode.join("frames"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .min()
        .expect("frames");

    // The system prompt the engine takes from the manifest (instruction mode).
    let manifest = std::fs::read_to_string(model.join("manifest.ron")).unwrap();
    let prompt_file = tmp.path().join("system-prompt.txt");
    std::fs::write(&prompt_file, manifest_instruction_prompt(&manifest)).unwrap();

    let mut server = Server::start(&venv, &checkpoint, tmp.path().join("serve.log"));
    let jpeg = std::fs::read(&first_frame).unwrap();
    let warmup = serde_json::json!({
        "model": checkpoint.to_str().unwrap(),
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "warm-up"},
            {"type": "image_url", "image_url": {"url": format!("data:image/jpeg;base64,{}", STANDARD.encode(&jpeg))}},
        ]}],
        "temperature": 0,
        "max_tokens": 4,
    });
    server.wait_ready(&warmup.to_string());

    let run = |policy: &[&str], record: &Path| {
        let begun = Instant::now();
        let out = lumine(&tmp)
            .args(["run", "--frames"])
            .arg(&episode)
            .args(policy)
            .args(["--instruction", instruction, "--history", HISTORY])
            .args(["--steps", &STEPS.to_string(), "--lockstep", "--record"])
            .arg(record)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "lumine run {policy:?}:\n{err}\nserver log:\n{}",
            server.log()
        );
        assert!(
            !err.contains("turn rejected"),
            "lumine run {policy:?}: every turn must play:\n{err}\nserver log:\n{}",
            server.log()
        );
        eprintln!(
            "lumine run {}: {:.1} s",
            policy[0],
            begun.elapsed().as_secs_f64()
        );
        recorded_actions(record)
    };

    let url = server.url();
    let keys = model.join("keys.ron");
    let remote = run(
        &[
            "--remote",
            &url,
            "--remote-model",
            checkpoint.to_str().unwrap(),
            "--remote-strict-openai",
            "--remote-image-format",
            "png",
            "--system-prompt-file",
            prompt_file.to_str().unwrap(),
            "--frame-size",
            "256x144",
            "--keys",
            keys.to_str().unwrap(),
            "--mouse-scale",
            "5,4",
        ],
        &tmp.path().join("remote"),
    );
    let engine = run(
        &["--model", model.to_str().unwrap()],
        &tmp.path().join("engine"),
    );
    drop(server);

    for (i, (r, e)) in remote.iter().zip(&engine).enumerate() {
        eprintln!("step {i}: remote {r:<40} engine {e}");
    }
    assert_eq!(engine.len(), STEPS, "the engine played every step");
    assert_eq!(remote.len(), STEPS, "the remote policy played every step");
    // A model that always answers the same would prove nothing.
    let mut distinct = engine.clone();
    distinct.sort();
    distinct.dedup();
    assert!(
        distinct.len() >= 2 && distinct.iter().any(|a| a != "0 0 0 ; ; ; ; ; ;"),
        "the engine played only {distinct:?}: the comparison would prove nothing"
    );
    assert_eq!(
        remote, engine,
        "transformers serve and the embedded engine played different actions"
    );
    eprintln!(
        "{STEPS} of {STEPS} steps match ({:.1} s in all)",
        started.elapsed().as_secs_f64()
    );
}
