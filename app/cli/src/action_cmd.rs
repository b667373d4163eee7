//! `lumine action ...`: check action strings against the action language.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use lumine_action::{KeyVocabulary, ParseError, Turn};
use serde::Serialize;

/// Action-language subcommands.
#[derive(Debug, Subcommand)]
pub enum ActionCommand {
    /// Parse each STRING, print its canonical form, and exit 2 if any is invalid.
    Check {
        /// Print one JSON object per input instead of text.
        #[arg(long)]
        json: bool,
        /// Key vocabulary (RON) to use instead of the default table, e.g. a model's keys.ron.
        #[arg(long, value_name = "FILE")]
        keys: Option<PathBuf>,
        /// Action strings: bare (`DX DY DZ ; K1 ; ... ; K6`), wrapped in action markers,
        /// or a whole turn with a thought.
        #[arg(required = true, value_name = "STRING")]
        strings: Vec<String>,
    },
}

/// One valid input, as `--json` prints it.
#[derive(Serialize)]
struct CheckedTurn<'a> {
    thought: Option<&'a str>,
    dx: i32,
    dy: i32,
    dz: i32,
    chunks: Vec<Vec<&'a str>>,
    canonical: String,
}

/// One invalid input, as `--json` prints it.
#[derive(Serialize)]
struct CheckError {
    error: ErrorBody,
}

#[derive(Serialize)]
struct ErrorBody {
    offset: usize,
    message: String,
}

/// Runs an action subcommand.
pub fn run(cmd: &ActionCommand) -> anyhow::Result<ExitCode> {
    let ActionCommand::Check {
        json,
        keys,
        strings,
    } = cmd;
    let vocab = match keys {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read key vocabulary {}", path.display()))?;
            KeyVocabulary::from_ron(&text)
                .with_context(|| format!("invalid key vocabulary {}", path.display()))?
        }
        None => KeyVocabulary::default(),
    };
    let mut all_valid = true;
    // Check every input before deciding the exit status, so one run reports all problems.
    for input in strings {
        let line = match lumine_action::parse_turn(input, &vocab) {
            Ok(turn) if *json => serde_json::to_string(&checked(&turn, &vocab))?,
            Ok(turn) => turn.format(&vocab),
            Err(err) => {
                all_valid = false;
                if *json {
                    serde_json::to_string(&CheckError {
                        error: ErrorBody {
                            offset: err.offset,
                            message: err.message(),
                        },
                    })?
                } else {
                    readable_error(input, &err)
                }
            }
        };
        println!("{line}");
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn checked<'a>(turn: &'a Turn, vocab: &'a KeyVocabulary) -> CheckedTurn<'a> {
    let action = &turn.action;
    CheckedTurn {
        thought: turn.thought.as_deref(),
        dx: action.dx,
        dy: action.dy,
        dz: action.dz,
        chunks: action
            .chunks
            .iter()
            .map(|chunk| {
                chunk
                    .keys()
                    .iter()
                    .map(|&key| vocab.name(key).unwrap_or("?"))
                    .collect()
            })
            .collect(),
        canonical: turn.format(vocab),
    }
}

/// `error: at byte N: ...` followed by the input and a caret under the offending byte.
fn readable_error(input: &str, err: &ParseError) -> String {
    let column = input
        .get(..err.offset.min(input.len()))
        .map_or(err.offset, |prefix| prefix.chars().count());
    format!("error: {err}\n  {input}\n  {}^", " ".repeat(column))
}
