//! The remote engine policy: [`RemotePolicy`] asks an OpenAI-compatible
//! chat-completions server (vLLM, SGLang) for each turn and streams the
//! answer through the same action parser as every other policy
//! (SPEC.md section 7, "Remote").
//!
//! * One blocking HTTP client (`ureq`), no async runtime. The request runs on
//!   a short-lived named thread that sends lines of the server-sent-event
//!   stream over a bounded channel; the policy waits on it with the
//!   first-token and between-chunk deadlines, and checks the cancel flag.
//! * Frames go as base64 JPEG data URLs (or lossless PNG, [`FrameFormat`]),
//!   each encoded once and cached by its `Arc`, so the prompt is append-only
//!   and byte-stable from step to step and the server's prefix cache hits.
//! * The server's structured output can be asked for ([`GuidedDecoding`]);
//!   the text is validated here regardless: nothing invalid is played.

mod messages;
mod sse;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use lumine_action::{KeyVocabulary, StreamEvent, Turn};
use lumine_runtime::policy::{Canceller, Observation, Policy, PolicyError, TextTurn};

pub use messages::{
    action_regex, encode_frame_data_url, encode_jpeg_data_url, encode_png_data_url,
};
pub use sse::{SseLine, parse_sse_line};

/// Environment variable holding the API key (sent as `Authorization: Bearer`).
pub const API_KEY_ENV: &str = "LUMINE_REMOTE_API_KEY";

/// The built-in system prompt for remote runs (`lumine run --remote`
/// without `--system-prompt-file`): SPEC.md section 4 in English. With
/// `reasoning`, the model may open a turn with a thought.
#[must_use]
pub fn default_system_prompt(reasoning: bool) -> String {
    let mut prompt = String::from(
        "You are an experienced PC game player. Each turn you see the latest game frame and \
         plan the next 200 ms of input as six 33 ms steps. Answer with exactly one action:\n\
         <|action_start|>DX DY DZ ; K1 ; K2 ; K3 ; K4 ; K5 ; K6<|action_end|>\n\
         DX DY: relative mouse motion (integers, |value| < 1000, DX > 0 right, DY > 0 down); \
         DZ: scroll steps -5..5 (DZ > 0 up); K1..K6: the keys held in each step, 0 to 4 key \
         names separated by spaces, an empty step still keeps its ';'. Key names (case \
         sensitive): letters A..Z; digits one..nine, zero; F1..F12 One..Twelve; Shift, Ctrl, \
         Alt, Space, Tab, Esc, Caps, Enter, Backspace, Up, Down, Left, Right; mouse buttons \
         LB, RB, MB, XB1, XB2. A key held in consecutive steps stays down.",
    );
    if reasoning {
        prompt.push_str(
            " You may start a turn with <|thought_start|>THOUGHT<|thought_end|> before the \
             action: think only when the situation changed, the last plan failed, or a new \
             goal appeared.",
        );
    }
    prompt
}

/// How to ask the server to constrain its output to the action language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuidedDecoding {
    /// No server-side constraint (the client still validates every piece).
    #[default]
    Off,
    /// vLLM's `guided_regex` request field.
    Vllm,
    /// SGLang's `regex` request field.
    Sglang,
}

/// How frames are sent to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFormat {
    /// `data:image/jpeg` at this quality (1..=100): small, lossy.
    Jpeg {
        /// JPEG quality, 1..=100.
        quality: u8,
    },
    /// `data:image/png`: lossless and larger; the server sees exactly the
    /// pixels the embedded engine would.
    Png,
}

impl Default for FrameFormat {
    fn default() -> FrameFormat {
        FrameFormat::Jpeg { quality: 85 }
    }
}

/// Settings of a [`RemotePolicy`].
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteOptions {
    /// Server base URL, e.g. `http://127.0.0.1:8000` (the policy posts to
    /// `{base}/v1/chat/completions`).
    pub base_url: String,
    /// Model name as the server knows it.
    pub model: String,
    /// Environment variable the API key is read from (default
    /// [`API_KEY_ENV`]); unset or empty sends no `Authorization` header.
    pub api_key_env: String,
    /// Time to open the connection.
    pub connect_timeout: Duration,
    /// Time from sending the request to the first text piece.
    pub first_token_timeout: Duration,
    /// Longest silence between two stream lines once text is flowing.
    pub chunk_timeout: Duration,
    /// Tries for connection errors and HTTP 5xx before the first token (at least 1).
    pub max_attempts: u32,
    /// Wait before the second try; doubled for each further one.
    pub initial_backoff: Duration,
    /// Upper bound on the tokens of one turn (sent as both `max_tokens` and
    /// `max_completion_tokens`).
    pub max_tokens: u32,
    /// Encoding of the frames (default JPEG quality 85).
    pub frame_format: FrameFormat,
    /// Send only fields of the OpenAI schema: leave out
    /// `skip_special_tokens: false` (a vLLM and SGLang extension), for servers
    /// that refuse unknown fields (`transformers serve` answers HTTP 422).
    /// Such a server must keep the action markers in the text by itself
    /// (`transformers serve` does for Qwen2-VL models).
    pub strict_openai: bool,
    /// Server-side structured output.
    pub guided: GuidedDecoding,
    /// Whether the turn may open with a thought (for the guided regex).
    pub allow_thought: bool,
}

impl RemoteOptions {
    /// Defaults for a server at `base_url` serving `model`.
    #[must_use]
    pub fn new(base_url: &str, model: &str) -> RemoteOptions {
        RemoteOptions {
            base_url: base_url.trim_end_matches('/').to_owned(),
            model: model.to_owned(),
            api_key_env: API_KEY_ENV.to_owned(),
            connect_timeout: Duration::from_secs(2),
            first_token_timeout: Duration::from_secs(5),
            chunk_timeout: Duration::from_secs(2),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_tokens: 160,
            frame_format: FrameFormat::default(),
            strict_openai: false,
            guided: GuidedDecoding::Off,
            allow_thought: false,
        }
    }
}

/// What the request thread reports.
enum Report {
    /// One line of the stream (without its line ending).
    Line(String),
    /// The stream ended cleanly (EOF).
    Eof,
    /// The request failed.
    Failed(PolicyError),
}

/// A policy that asks a remote OpenAI-compatible engine for each turn.
pub struct RemotePolicy {
    options: RemoteOptions,
    vocab: KeyVocabulary,
    agent: ureq::Agent,
    api_key: Option<String>,
    cancel: Arc<AtomicBool>,
    /// Encoded data URL of each frame in the window, by the frame's `Arc`
    /// address (the `Arc` is kept so the address cannot be reused).
    frames: HashMap<usize, (lumine_runtime::policy::SharedFrame, Arc<str>)>,
    /// The body of the last request (for tests and diagnostics).
    last_body: Arc<[u8]>,
}

impl std::fmt::Debug for RemotePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemotePolicy")
            .field("options", &self.options)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

impl RemotePolicy {
    /// A policy for `options`, parsing turns with `vocab`. Reads the API key
    /// from the environment variable `options.api_key_env`.
    #[must_use]
    pub fn new(options: RemoteOptions, vocab: &KeyVocabulary) -> RemotePolicy {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(options.connect_timeout))
            // Headers must come within the first-token limit; the body's
            // pacing is watched by the policy itself.
            .timeout_recv_response(Some(options.first_token_timeout))
            // Bounds a request thread the policy stopped listening to (a stall,
            // a cancel) that is stuck on a silent socket.
            .timeout_recv_body(Some(BODY_LIMIT))
            .http_status_as_error(false)
            .build();
        let api_key = std::env::var(&options.api_key_env)
            .ok()
            .filter(|k| !k.is_empty());
        RemotePolicy {
            options,
            vocab: vocab.clone(),
            agent: config.into(),
            api_key,
            cancel: Arc::new(AtomicBool::new(false)),
            frames: HashMap::new(),
            last_body: Arc::from(Vec::new()),
        }
    }

    /// The settings.
    #[must_use]
    pub fn options(&self) -> &RemoteOptions {
        &self.options
    }

    /// The JSON body of the last request sent (empty before the first).
    #[must_use]
    pub fn last_request_body(&self) -> &[u8] {
        &self.last_body
    }

    /// Builds the request body for `observation` (frames encoded or taken
    /// from the cache).
    ///
    /// # Errors
    /// A frame cannot be encoded.
    pub fn request_body(&mut self, observation: &Observation<'_>) -> Result<Vec<u8>, PolicyError> {
        let format = self.options.frame_format;
        let messages =
            messages::to_openai_messages(observation.messages, &mut self.frames, format)?;
        let mut body = serde_json::Map::new();
        body.insert("model".into(), self.options.model.clone().into());
        body.insert("messages".into(), messages);
        body.insert("stream".into(), true.into());
        body.insert("temperature".into(), 0.into());
        body.insert("max_tokens".into(), self.options.max_tokens.into());
        body.insert(
            "max_completion_tokens".into(),
            self.options.max_tokens.into(),
        );
        // The action markers are special tokens of the Lumine tokenizer: keep them.
        if !self.options.strict_openai {
            body.insert("skip_special_tokens".into(), false.into());
        }
        let regex = || action_regex(&self.vocab, self.options.allow_thought);
        match self.options.guided {
            GuidedDecoding::Off => {}
            GuidedDecoding::Vllm => {
                body.insert("guided_regex".into(), regex().into());
            }
            GuidedDecoding::Sglang => {
                body.insert("regex".into(), regex().into());
            }
        }
        serde_json::to_vec(&serde_json::Value::Object(body))
            .map_err(|e| PolicyError::Failed(format!("remote: request body: {e}")))
    }

    /// Starts the request thread.
    fn start(&self, body: Arc<[u8]>) -> Result<Receiver<Report>, PolicyError> {
        let (tx, rx) = crossbeam_channel::bounded(256);
        let request = Request {
            agent: self.agent.clone(),
            url: format!("{}/v1/chat/completions", self.options.base_url),
            api_key: self.api_key.clone(),
            body,
            max_attempts: self.options.max_attempts.max(1),
            backoff: self.options.initial_backoff,
            cancel: Arc::clone(&self.cancel),
        };
        std::thread::Builder::new()
            .name("remote-policy-http".into())
            .spawn(move || request.run(&tx))
            .map_err(|e| PolicyError::Failed(format!("remote: cannot start a thread: {e}")))?;
        Ok(rx)
    }
}

/// One request, run on its own thread.
struct Request {
    agent: ureq::Agent,
    url: String,
    api_key: Option<String>,
    body: Arc<[u8]>,
    max_attempts: u32,
    backoff: Duration,
    cancel: Arc<AtomicBool>,
}

impl Request {
    fn run(self, tx: &Sender<Report>) {
        let mut backoff = self.backoff;
        let mut attempt = 1;
        let response = loop {
            let mut req = self
                .agent
                .post(&self.url)
                .header("Content-Type", "application/json")
                .header("Accept", "text/event-stream");
            if let Some(key) = &self.api_key {
                req = req.header("Authorization", format!("Bearer {key}"));
            }
            let failure = match req.send(&self.body[..]) {
                Ok(response) if response.status().is_success() => break response,
                Ok(response) => {
                    let status = response.status();
                    let excerpt = body_excerpt(response);
                    let message = format!("HTTP {status} from {}: {excerpt}", self.url);
                    if !status.is_server_error() {
                        let _ = tx.send(Report::Failed(PolicyError::Failed(format!(
                            "remote: {message}"
                        ))));
                        return;
                    }
                    PolicyError::Disconnected(message)
                }
                Err(ureq::Error::Timeout(what)) => {
                    let _ = tx.send(Report::Failed(PolicyError::Stalled(format!(
                        "no answer from {} ({what:?} timed out)",
                        self.url
                    ))));
                    return;
                }
                Err(e) => PolicyError::Disconnected(format!("{}: {e}", self.url)),
            };
            if attempt >= self.max_attempts || self.cancel.load(Ordering::Relaxed) {
                let failure = match failure {
                    PolicyError::Disconnected(m) => {
                        PolicyError::Disconnected(format!("{m} (gave up after {attempt} tries)"))
                    }
                    other => other,
                };
                let _ = tx.send(Report::Failed(failure));
                return;
            }
            std::thread::sleep(backoff);
            backoff = backoff.saturating_mul(2);
            attempt += 1;
        };
        let reader = BufReader::new(response.into_body().into_reader());
        for line in reader.lines() {
            let report = match line {
                Ok(line) => Report::Line(line),
                Err(e) => Report::Failed(PolicyError::Disconnected(format!(
                    "stream from {} broke: {e}",
                    self.url
                ))),
            };
            let failed = matches!(report, Report::Failed(_));
            // The policy stopped listening (done, cancelled, timed out): drop the response.
            if tx.send(report).is_err() || failed || self.cancel.load(Ordering::Relaxed) {
                return;
            }
        }
        let _ = tx.send(Report::Eof);
    }
}

/// The first 300 characters of an error response's body.
fn body_excerpt(response: ureq::http::Response<ureq::Body>) -> String {
    let text = response
        .into_body()
        .with_config()
        .limit(4096)
        .read_to_string()
        .unwrap_or_else(|e| format!("<unreadable body: {e}>"));
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Longest a response body may take; no turn comes close.
const BODY_LIMIT: Duration = Duration::from_secs(60);

/// How often the waiting policy looks at the cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(20);

impl Policy for RemotePolicy {
    fn describe(&self) -> String {
        format!("remote:{}@{}", self.options.model, self.options.base_url)
    }

    fn next_turn(
        &mut self,
        observation: &Observation<'_>,
        out: &mut dyn FnMut(StreamEvent),
    ) -> Result<Turn, PolicyError> {
        self.cancel.store(false, Ordering::Relaxed);
        let body: Arc<[u8]> = Arc::from(self.request_body(observation)?);
        self.last_body = Arc::clone(&body);
        let started = Instant::now();
        let rx = self.start(body)?;
        let mut turn = TextTurn::new(&self.vocab);
        let mut got_text = false;
        let mut deadline = started + self.options.first_token_timeout;
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                return Err(PolicyError::Cancelled);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(PolicyError::Stalled(if got_text {
                    format!(
                        "nothing from {} for {:?} mid-turn",
                        self.options.base_url, self.options.chunk_timeout
                    )
                } else {
                    format!(
                        "no first token from {} within {:?}",
                        self.options.base_url, self.options.first_token_timeout
                    )
                }));
            }
            let report = match rx.recv_timeout(CANCEL_POLL.min(deadline - now)) {
                Ok(report) => report,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => Report::Eof,
            };
            match report {
                Report::Failed(error) => return Err(error),
                Report::Eof => {
                    // A stream may end without `data: [DONE]`.
                    // A complete turn (also a bare action without its end marker) stands.
                    let text = turn.text().to_owned();
                    return turn.finish(out).map_err(|_| {
                        PolicyError::Disconnected(format!(
                            "the stream from {} ended mid-turn after {text:?}",
                            self.options.base_url
                        ))
                    });
                }
                Report::Line(line) => {
                    if got_text {
                        deadline = Instant::now() + self.options.chunk_timeout;
                    }
                    match parse_sse_line(&line)
                        .map_err(|e| PolicyError::Failed(format!("remote: {e}")))?
                    {
                        SseLine::Ignore => {}
                        SseLine::Done => return turn.finish(out),
                        SseLine::Content(piece) => {
                            if !piece.is_empty() {
                                if !got_text {
                                    got_text = true;
                                    deadline = Instant::now() + self.options.chunk_timeout;
                                }
                                turn.push(&piece, out)?;
                                if turn.is_done() {
                                    // The turn is complete: stop reading (drops the stream).
                                    return turn.finish(out);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn canceller(&self) -> Option<Canceller> {
        let cancel = Arc::clone(&self.cancel);
        Some(Arc::new(move || cancel.store(true, Ordering::Relaxed)))
    }
}
