//! Finding and loading the ONNX Runtime shared library.
//!
//! `ort` is built with `load-dynamic`: the library is opened at run time, so a
//! missing or wrong library is an error we can explain, never a link failure or a
//! panic. The library comes from PyPI (`scripts/setup-onnxruntime`); an installed
//! copy keeps it next to the executable.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The ONNX Runtime version the project provisions and tests with.
pub const EXPECTED_VERSION: &str = "1.31.1";

/// Environment variable that names the library file explicitly (`ort`'s own convention).
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";

/// File names of the library, most specific first.
#[cfg(target_os = "linux")]
const FILE_NAMES: &[&str] = &["libonnxruntime.so", "libonnxruntime.so.1.31.1"];
#[cfg(target_os = "windows")]
const FILE_NAMES: &[&str] = &["onnxruntime.dll"];
#[cfg(target_os = "macos")]
const FILE_NAMES: &[&str] = &["libonnxruntime.dylib"];
#[cfg(not(any(target_os = "linux", target_os = "windows", target_os = "macos")))]
const FILE_NAMES: &[&str] = &["libonnxruntime.so"];

/// Where the library was looked for and what was found.
#[derive(Debug, Clone)]
pub struct LibrarySearch {
    /// Every candidate path in search order, with why it was considered.
    pub candidates: Vec<(PathBuf, &'static str)>,
    /// The first candidate that exists.
    pub found: Option<PathBuf>,
}

/// Why the library could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LibraryError {
    /// No candidate path exists.
    #[error(
        "ONNX Runtime {EXPECTED_VERSION} not found; looked in:\n{searched}\n\
         Run scripts/setup-onnxruntime, set {DYLIB_ENV}, or set `onnxruntime_library` in the config file"
    )]
    NotFound {
        /// The candidates, one per line.
        searched: String,
    },
    /// The file exists but could not be loaded or has an incompatible version.
    #[error("cannot use ONNX Runtime at {path}: {reason} (expected version {EXPECTED_VERSION})")]
    Load {
        /// The library file.
        path: PathBuf,
        /// The loader's reason.
        reason: String,
    },
}

/// A loaded ONNX Runtime and its process-wide environment.
#[derive(Debug, Clone)]
pub struct OrtRuntime {
    /// The library file that was loaded.
    pub path: PathBuf,
    /// The version the library reports in its build information.
    pub version: String,
    /// The environment every session is created in.
    pub environment: ort::environment::Environment,
}

/// Lists the candidate library paths in search order:
/// the configured path, `$ORT_DYLIB_PATH`, next to the executable (and its `lib/`),
/// the project's `third_party/onnxruntime/lib` above the executable (a build under
/// `target/`), and the project folder this binary was built from.
pub fn search(configured: Option<&Path>) -> LibrarySearch {
    let mut candidates: Vec<(PathBuf, &'static str)> = Vec::new();
    if let Some(path) = configured {
        candidates.push((path.to_owned(), "config onnxruntime_library"));
    }
    if let Some(path) = std::env::var_os(DYLIB_ENV) {
        candidates.push((PathBuf::from(path), "$ORT_DYLIB_PATH"));
    }
    let mut dirs: Vec<(PathBuf, &'static str)> = Vec::new();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_owned))
    {
        dirs.push((exe_dir.clone(), "next to the executable"));
        dirs.push((exe_dir.join("lib"), "next to the executable"));
        for ancestor in exe_dir.ancestors().skip(1).take(4) {
            dirs.push((
                ancestor.join("third_party/onnxruntime/lib"),
                "project folder above the executable",
            ));
        }
    }
    dirs.push((
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../third_party/onnxruntime/lib"),
        "project folder of this build",
    ));
    for (dir, why) in dirs {
        for name in FILE_NAMES {
            candidates.push((dir.join(name), why));
        }
    }
    let found = candidates
        .iter()
        .map(|(path, _)| path)
        .find(|path| path.is_file())
        .map(|path| path.canonicalize().unwrap_or_else(|_| path.clone()));
    LibrarySearch { candidates, found }
}

static LOADED: OnceLock<Result<OrtRuntime, LibraryError>> = OnceLock::new();

/// Loads ONNX Runtime once per process (later calls return the first result, whatever
/// path they pass).
///
/// Must run before any other `ort` call: `ort` would otherwise try its own default
/// path and panic when the library is missing.
pub fn load(configured: Option<&Path>) -> Result<&'static OrtRuntime, LibraryError> {
    LOADED
        .get_or_init(|| load_uncached(configured))
        .as_ref()
        .map_err(Clone::clone)
}

fn load_uncached(configured: Option<&Path>) -> Result<OrtRuntime, LibraryError> {
    load_from(search(configured))
}

fn load_from(search: LibrarySearch) -> Result<OrtRuntime, LibraryError> {
    let Some(path) = search.found else {
        let searched = search
            .candidates
            .iter()
            .map(|(p, why)| format!("  {} ({why})", p.display()))
            .collect::<Vec<_>>()
            .join("\n");
        return Err(LibraryError::NotFound { searched });
    };
    let load_error = |reason: String| LibraryError::Load {
        path: path.clone(),
        reason,
    };
    let builder = ort::init_from(&path).map_err(|e| load_error(e.to_string()))?;
    // One global intra-op thread pool shared by every session: separate pools per
    // session (vision, decoder) roughly double the step latency on two cores.
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let pool = ort::environment::GlobalThreadPoolOptions::default()
        .with_intra_threads(threads)
        .and_then(|p| p.with_inter_threads(1))
        .map_err(|e| load_error(e.to_string()))?;
    let environment = builder
        .with_name("lumine")
        .with_telemetry(false)
        .with_global_thread_pool(pool)
        .build()
        .map_err(|e| load_error(e.to_string()))?;
    let version = version_from_build_info(ort::info()).unwrap_or_else(|| version_from_path(&path));
    Ok(OrtRuntime {
        path,
        version,
        environment,
    })
}

/// The release in ONNX Runtime's build information (`git-branch=rel-1.31.1`).
fn version_from_build_info(info: &str) -> Option<String> {
    let branch = info.split("git-branch=").nth(1)?;
    let release = branch.split([',', ' ']).next()?.strip_prefix("rel-")?;
    Some(release.to_owned())
}

/// The version in the library's file name (`libonnxruntime.so.1.31.1`), following a
/// symlink; "unknown" when the name carries none.
fn version_from_path(path: &Path) -> String {
    let real = std::fs::read_link(path)
        .map(|target| path.with_file_name(target))
        .unwrap_or_else(|_| path.to_owned());
    real.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split(".so.").nth(1))
        .unwrap_or("unknown")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_path_is_searched_first() {
        let search = search(Some(Path::new("/nonexistent/libonnxruntime.so")));
        assert_eq!(
            search.candidates[0].0,
            PathBuf::from("/nonexistent/libonnxruntime.so")
        );
        assert!(
            search
                .candidates
                .iter()
                .any(|(p, _)| p.ends_with(FILE_NAMES[0]))
        );
    }

    #[test]
    fn nothing_found_lists_where_it_looked() {
        let search = LibrarySearch {
            candidates: vec![(PathBuf::from("/opt/x/libonnxruntime.so"), "test")],
            found: None,
        };
        let message = load_from(search).unwrap_err().to_string();
        assert!(
            message.contains("/opt/x/libonnxruntime.so (test)"),
            "{message}"
        );
        assert!(message.contains(EXPECTED_VERSION), "{message}");
        assert!(message.contains("scripts/setup-onnxruntime"), "{message}");
    }

    #[test]
    fn version_is_read_from_a_versioned_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("libonnxruntime.so.1.31.1");
        std::fs::write(&real, b"").unwrap();
        assert_eq!(version_from_path(&real), "1.31.1");
    }

    #[test]
    fn version_is_read_from_build_info() {
        let info = "ORT Build Info: git-branch=rel-1.31.1, git-commit-id=abc, build type=Release";
        assert_eq!(version_from_build_info(info).as_deref(), Some("1.31.1"));
        assert_eq!(version_from_build_info("no branch here"), None);
    }
}
