//! The console's own settings (what the operator picked last time), kept in
//! RON next to the configuration file in the platform's config directory
//! (`~/.config/lumine-console/console.ron` on Linux). A missing file is a
//! first run; a broken one is reported and replaced by defaults on the next
//! save, never silently lost: it is kept beside as `console.ron.bad`.

use std::path::{Path, PathBuf};

use crate::backend::{LaunchRequest, Mode, ModelChoice, Provider, TargetChoice};
use crate::locale::Lang;

/// Recent model folders remembered.
const RECENT_KEPT: usize = 8;

/// Environment variable naming the settings file (tests, portable installs).
pub const SETTINGS_ENV: &str = "LUMINE_CONSOLE_SETTINGS";

/// What the operator chose, persisted between runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    /// UI language.
    pub lang: Lang,
    /// What to play into.
    pub target: TargetChoice,
    /// Which model.
    pub model: ModelChoice,
    /// Model folders used before, newest first.
    pub recent_models: Vec<PathBuf>,
    /// Execution provider.
    pub provider: Provider,
    /// GPU device id.
    pub device: u32,
    /// Instruction following or reasoning.
    pub mode: Mode,
    /// Frames of history in the context window.
    pub history_frames: usize,
    /// The last instruction.
    pub instruction: String,
    /// Record runs.
    pub record: bool,
    /// Where recordings go (a new folder per run inside it).
    pub record_dir: Option<PathBuf>,
    /// Most repaints a second while a run streams events. Without a GPU the
    /// console renders on the CPU (lavapipe) and competes with the model:
    /// 10 keeps the 5 Hz frames smooth and leaves the cores to the agent.
    pub max_ui_fps: u32,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            lang: Lang::English,
            target: TargetChoice::PracticeArena,
            model: ModelChoice::Bundled,
            recent_models: Vec::new(),
            provider: Provider::Cpu,
            device: 0,
            mode: Mode::Instruction,
            history_frames: 10,
            instruction: String::new(),
            record: false,
            record_dir: None,
            max_ui_fps: 10,
        }
    }
}

impl ConsoleSettings {
    /// Remembers a model folder at the top of the recent list.
    pub fn remember_model(&mut self, dir: PathBuf) {
        self.recent_models.retain(|d| d != &dir);
        self.recent_models.insert(0, dir.clone());
        self.recent_models.truncate(RECENT_KEPT);
        self.model = ModelChoice::Folder(dir);
    }

    /// The launch these settings describe.
    #[must_use]
    pub fn launch_request(&self) -> LaunchRequest {
        let instruction = self.instruction.trim();
        LaunchRequest {
            target: self.target.clone(),
            model: self.model.clone(),
            provider: self.provider,
            device: self.device,
            mode: self.mode,
            history_frames: self.history_frames.max(1),
            instruction: (!instruction.is_empty()).then(|| instruction.to_owned()),
            record_into: if self.record {
                self.record_dir.clone().or_else(default_record_dir)
            } else {
                None
            },
        }
    }
}

/// Where recordings go by default: the platform's data directory.
#[must_use]
pub fn default_record_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "lumine-console")
        .map(|dirs| dirs.data_dir().join("recordings"))
}

/// The settings file and how loading it went.
#[derive(Debug, Clone)]
pub struct SettingsStore {
    path: Option<PathBuf>,
}

/// What [`SettingsStore::load`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The settings (defaults if there were none).
    pub settings: ConsoleSettings,
    /// True when there was no settings file: the console's first run.
    pub first_run: bool,
    /// A problem with the file, for the operator.
    pub warning: Option<String>,
}

impl SettingsStore {
    /// The store at `$LUMINE_CONSOLE_SETTINGS`, else the platform's config
    /// directory; `None` inside if there is no home directory (settings then
    /// live only for this session).
    #[must_use]
    pub fn default_location() -> SettingsStore {
        let path = std::env::var_os(SETTINGS_ENV)
            .map(PathBuf::from)
            .or_else(|| {
                directories::ProjectDirs::from("", "", "lumine-console")
                    .map(|dirs| dirs.config_dir().join("console.ron"))
            });
        SettingsStore { path }
    }

    /// A store at `path` (tests; `None`: not persisted).
    #[must_use]
    pub fn at(path: Option<PathBuf>) -> SettingsStore {
        SettingsStore { path }
    }

    /// The file, if any.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Reads the settings.
    #[must_use]
    pub fn load(&self) -> Loaded {
        let Some(path) = &self.path else {
            return Loaded {
                settings: ConsoleSettings::default(),
                first_run: true,
                warning: None,
            };
        };
        match std::fs::read_to_string(path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Loaded {
                settings: ConsoleSettings::default(),
                first_run: true,
                warning: None,
            },
            Err(err) => Loaded {
                settings: ConsoleSettings::default(),
                first_run: false,
                warning: Some(format!("cannot read {}: {err}", path.display())),
            },
            Ok(text) => match ron::from_str::<ConsoleSettings>(&text) {
                Ok(settings) => Loaded {
                    settings,
                    first_run: false,
                    warning: None,
                },
                Err(err) => {
                    // Keep the operator's file: the next save must not erase it.
                    let bad = path.with_extension("ron.bad");
                    let kept = std::fs::copy(path, &bad).is_ok();
                    Loaded {
                        settings: ConsoleSettings::default(),
                        first_run: false,
                        warning: Some(format!(
                            "{}:{}: {}; using defaults{}",
                            path.display(),
                            err.span.start.line,
                            err.code,
                            if kept {
                                format!(" (the file is kept as {})", bad.display())
                            } else {
                                String::new()
                            }
                        )),
                    }
                }
            },
        }
    }

    /// Writes the settings atomically (a temporary file renamed over the old).
    ///
    /// # Errors
    /// The directory or the file could not be written.
    pub fn save(&self, settings: &ConsoleSettings) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = ron::ser::to_string_pretty(settings, ron::ser::PrettyConfig::default())
            .map_err(std::io::Error::other)?;
        let tmp = path.with_extension("ron.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_run_then_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SettingsStore::at(Some(dir.path().join("sub/console.ron")));
        let loaded = store.load();
        assert!(loaded.first_run);
        assert_eq!(loaded.settings, ConsoleSettings::default());
        let mut settings = loaded.settings;
        settings.lang = Lang::Japanese;
        settings.remember_model(PathBuf::from("/models/a"));
        settings.remember_model(PathBuf::from("/models/b"));
        settings.remember_model(PathBuf::from("/models/a"));
        store.save(&settings).expect("saved");
        let again = store.load();
        assert!(!again.first_run);
        assert_eq!(again.settings, settings);
        assert_eq!(
            again.settings.recent_models,
            vec![PathBuf::from("/models/a"), PathBuf::from("/models/b")]
        );
    }

    #[test]
    fn a_broken_file_is_reported_and_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("console.ron");
        std::fs::write(&path, "(lang: en,\n history_frames: \"ten\")").expect("written");
        let loaded = SettingsStore::at(Some(path.clone())).load();
        let warning = loaded.warning.expect("a warning");
        assert!(warning.contains("console.ron:2"), "{warning}");
        assert!(path.with_extension("ron.bad").exists());
        assert_eq!(loaded.settings, ConsoleSettings::default());
    }
}
