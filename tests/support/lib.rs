//! Helpers shared by the end-to-end tests: find and run the built `lumine` binary.

use std::path::PathBuf;
use std::process::{Command, Output};

/// Path of the `lumine` binary under test: `$LUMINE_BIN`, or the one Cargo built next
/// to this test executable (`target/<profile>/lumine`).
///
/// # Panics
/// When no binary is found, with the command that builds it.
pub fn lumine_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("LUMINE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/lumine
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join(format!("lumine{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not found: build it first with `cargo build -p lumine-cli` (scripts/test does)",
        bin.display()
    );
    bin
}

/// Path of the release `lumine` binary (`target/release/lumine`, next to the
/// profile directory of this test executable), for the tests that run in
/// real time as a user does; `$LUMINE_RELEASE_BIN` overrides it.
///
/// # Panics
/// When it is not built, with the command that builds it.
pub fn lumine_release_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("LUMINE_RELEASE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("test executable lives in target/<profile>/deps");
    let bin = target
        .join("release")
        .join(format!("lumine{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not found: build it first with `cargo build --release -p lumine-cli` (scripts/test does)",
        bin.display()
    );
    bin
}

/// A `lumine` command with an isolated configuration file, so tests never touch the
/// user's real configuration.
pub fn lumine(config_dir: &tempfile::TempDir) -> Command {
    let mut cmd = Command::new(lumine_bin());
    cmd.env("LUMINE_CONFIG", config_dir.path().join("config.ron"));
    cmd
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The repository's `models/` folder.
pub fn models_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// A JSON file, parsed (panics with the path on error).
pub fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `lumine model check DIR`: its exit code and everything it printed.
pub fn model_check(dir: &std::path::Path) -> (Option<i32>, String) {
    let config = tempfile::tempdir().expect("temp dir");
    let out = lumine(&config)
        .args(["model", "check"])
        .arg(dir)
        .output()
        .expect("run lumine model check");
    (out.status.code(), stdout(&out) + &stderr(&out))
}
