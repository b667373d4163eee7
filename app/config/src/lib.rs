//! The operator's configuration: one RON file in the platform's config directory.
//!
//! The file is created with commented defaults on first use
//! ([`DEFAULT_CONFIG_RON`]), so the operator can read what every field means in
//! the file itself. Unknown fields are rejected with the file path and line, so a
//! misspelled setting is an error rather than silently ignored.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The default configuration file, with a comment on every field.
///
/// Written verbatim on first use; a test checks that it parses to [`Config::default`].
pub const DEFAULT_CONFIG_RON: &str = include_str!("../default_config.ron");

/// Environment variable that points Lumine at another config file (tests, several profiles).
pub const CONFIG_ENV: &str = "LUMINE_CONFIG";

/// Locales the console ships text for (`locales/<code>.ftl`).
pub const LOCALES: [&str; 3] = ["en", "zh-CN", "ja"];

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU execution provider; always available.
    #[default]
    Cpu,
    /// NVIDIA CUDA execution provider.
    Cuda,
    /// NVIDIA TensorRT execution provider.
    TensorRt,
}

/// How the agent is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum AgentMode {
    /// The operator's instruction is in context; the model answers with actions only.
    #[default]
    Instruction,
    /// The model may write a short thought before acting; the latest thought is the goal.
    Reasoning,
}

/// The whole configuration. Field meanings are documented here and in [`DEFAULT_CONFIG_RON`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Language of the console's text: one of [`LOCALES`].
    pub locale: String,
    /// Model directory (holding `manifest.ron`), or `None` for the bundled default.
    pub model: Option<PathBuf>,
    /// Where the model runs.
    pub execution_provider: ExecutionProvider,
    /// GPU device ids for the GPU providers; one per tensor-parallel rank.
    pub devices: Vec<u32>,
    /// Fall back to the CPU when a GPU provider cannot start, instead of failing.
    pub allow_cpu_fallback: bool,
    /// Path of the ONNX Runtime shared library, or `None` to search the usual places.
    pub onnxruntime_library: Option<PathBuf>,
    /// Instruction following or reasoning.
    pub mode: AgentMode,
    /// How many recent (frame, action) pairs the model sees.
    pub history_frames: usize,
    /// Title (or part of it) of the window the agent plays.
    pub target_window: Option<String>,
    /// Key combinations that are never injected, keys joined with `+`.
    pub deny_list: Vec<String>,
    /// Global hotkey that stops the agent and releases every key.
    pub emergency_stop_key: String,
    /// Milliseconds without operator input before the agent takes control back.
    pub takeover_idle_ms: u64,
    /// Folder for recorded trajectories, or `None` for the platform data folder.
    pub recordings_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            locale: "en".to_owned(),
            model: None,
            execution_provider: ExecutionProvider::Cpu,
            devices: vec![0],
            allow_cpu_fallback: false,
            onnxruntime_library: None,
            mode: AgentMode::Instruction,
            history_frames: 10,
            target_window: None,
            deny_list: ["Alt+F4", "Super", "Ctrl+Alt+Delete", "Alt+Tab"]
                .map(str::to_owned)
                .to_vec(),
            emergency_stop_key: "Pause".to_owned(),
            takeover_idle_ms: 3000,
            recordings_dir: None,
        }
    }
}

/// Everything that can go wrong reading or writing the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The platform has no config directory (no home directory).
    #[error("no configuration directory on this system; set {CONFIG_ENV} to a file path")]
    NoConfigDir,
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid RON for [`Config`] (syntax, unknown field, wrong type).
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong, in RON's words.
        message: String,
    },
    /// The file parsed but a value is not allowed.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The offending field.
        field: &'static str,
        /// Why the value is rejected.
        message: String,
    },
}

impl Config {
    /// Parses a configuration from RON text; `path` is only used in error messages.
    pub fn from_ron(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = ron::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            line: e.span.start.line,
            column: e.span.start.col,
            message: e.code.to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks values that the types alone cannot.
    fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            field,
            message,
        };
        if !LOCALES.contains(&self.locale.as_str()) {
            return Err(invalid(
                "locale",
                format!("{:?} is not one of {}", self.locale, LOCALES.join(", ")),
            ));
        }
        if self.history_frames == 0 {
            return Err(invalid("history_frames", "must be at least 1".to_owned()));
        }
        if self.execution_provider != ExecutionProvider::Cpu && self.devices.is_empty() {
            return Err(invalid(
                "devices",
                "a GPU execution provider needs at least one device id".to_owned(),
            ));
        }
        if let Some(bad) = self
            .deny_list
            .iter()
            .find(|c| c.split('+').any(str::is_empty))
        {
            return Err(invalid(
                "deny_list",
                format!("{bad:?} is not a key combination like \"Alt+F4\""),
            ));
        }
        if self.emergency_stop_key.trim().is_empty() {
            return Err(invalid("emergency_stop_key", "must name a key".to_owned()));
        }
        Ok(())
    }

    /// Serialises the configuration as pretty RON (without the explanatory comments).
    pub fn to_ron(&self) -> String {
        // Serialising plain data to a String cannot fail.
        ron::ser::to_string_pretty(self, ron::ser::PrettyConfig::default()).unwrap_or_default()
    }

    /// Writes the configuration to `path` atomically (temporary file, then rename),
    /// so a crash mid-write never leaves a truncated config behind.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        write_atomically(path, &self.to_ron())
    }
}

/// Where the configuration lives: `$LUMINE_CONFIG` if set, else the platform config
/// directory (`~/.config/lumine-console/config.ron` on Linux,
/// `%APPDATA%\lumine-console\config\config.ron` on Windows).
pub fn default_path() -> Result<PathBuf, ConfigError> {
    if let Some(path) = std::env::var_os(CONFIG_ENV) {
        return Ok(PathBuf::from(path));
    }
    let dirs =
        directories::ProjectDirs::from("", "", "lumine-console").ok_or(ConfigError::NoConfigDir)?;
    Ok(dirs.config_dir().join("config.ron"))
}

/// Loads the configuration at `path`, first writing the commented defaults there if
/// the file does not exist yet.
pub fn load_or_create(path: &Path) -> Result<Config, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Config::from_ron(&text, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_atomically(path, DEFAULT_CONFIG_RON)?;
            Ok(Config::default())
        }
        Err(source) => Err(ConfigError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn write_atomically(path: &Path, text: &str) -> Result<(), ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("ron.tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

impl fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cpu => "CPU",
            Self::Cuda => "CUDA",
            Self::TensorRt => "TensorRT",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_ron(text, Path::new("/cfg/config.ron"))
    }

    #[test]
    fn commented_template_is_the_default() {
        assert_eq!(parse(DEFAULT_CONFIG_RON).unwrap(), Config::default());
    }

    #[test]
    fn serialised_default_round_trips() {
        assert_eq!(
            parse(&Config::default().to_ron()).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn missing_fields_take_defaults() {
        let config = parse("(history_frames: 20)").unwrap();
        assert_eq!(config.history_frames, 20);
        assert_eq!(config.locale, "en");
    }

    #[test]
    fn unknown_field_names_file_and_line() {
        let err = parse("(\n  locale: \"en\",\n  histroy_frames: 3,\n)").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("/cfg/config.ron:3:"), "{text}");
        assert!(text.contains("histroy_frames"), "{text}");
    }

    #[test]
    fn wrong_type_names_line() {
        let err = parse("(\n\n  history_frames: \"ten\",\n)").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 3, .. }), "{err}");
    }

    #[test]
    fn invalid_values_are_rejected() {
        for (text, field) in [
            ("(locale: \"fr\")", "locale"),
            ("(history_frames: 0)", "history_frames"),
            ("(execution_provider: Cuda, devices: [])", "devices"),
            ("(deny_list: [\"Alt+\"])", "deny_list"),
            ("(emergency_stop_key: \" \")", "emergency_stop_key"),
        ] {
            match parse(text) {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field, "{text}"),
                other => panic!("{text}: expected an invalid {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn first_use_writes_commented_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.ron");
        assert_eq!(load_or_create(&path).unwrap(), Config::default());
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(written, DEFAULT_CONFIG_RON);
        // Second use reads the file back.
        assert_eq!(load_or_create(&path).unwrap(), Config::default());
    }

    #[test]
    fn save_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.ron");
        let config = Config {
            locale: "ja".to_owned(),
            history_frames: 4,
            model: Some(PathBuf::from("/models/x")),
            ..Config::default()
        };
        config.save(&path).unwrap();
        assert_eq!(load_or_create(&path).unwrap(), config);
    }
}
