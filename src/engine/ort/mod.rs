//! The ONNX Runtime engine: networks built as ONNX graphs in Rust (ort's model editor) from the
//! project's own weights, run by `libonnxruntime` loaded at run time.
//!
//! The library is looked for, in order: `$ORT_DYLIB_PATH`; `libonnxruntime.so*` beside the
//! executable; `/usr/local/lib`, `/usr/lib`, `/usr/lib/x86_64-linux-gnu`; the `onnxruntime` Python
//! package of `python3` (`pip install onnxruntime==1.31.1` puts it under
//! `site-packages/onnxruntime/capi/`); the project's cache (see [`fetch`]), where, when all of
//! these fail, the pinned wheel is installed once.

pub mod backbone;
pub mod decoder;
pub mod fetch;
pub mod graph;
pub mod reuse;
pub mod vit;

pub use backbone::OrtBackbone;

use crate::error::{Error, Result};
use ::ort::environment::Environment;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The newest `libonnxruntime.so*` in `dir` (not the providers' helper libraries).
fn find_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// The directory of the `onnxruntime` Python package, asked of `python3`.
fn python_package_dir() -> Option<PathBuf> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import importlib.util as u, os; s = u.find_spec('onnxruntime'); print(os.path.dirname(s.origin) if s else '')",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!dir.is_empty()).then(|| PathBuf::from(dir).join("capi"))
}

/// Where the ONNX Runtime library is, following the documented search order.
pub fn find_library() -> std::result::Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("ORT_DYLIB_PATH={} is not a file", p.display()))
        };
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    let dirs = exe_dir.into_iter().chain(
        ["/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu"]
            .iter()
            .map(PathBuf::from),
    );
    for d in dirs {
        if let Some(p) = find_in(&d) {
            return Ok(p);
        }
    }
    let known = python_package_dir()
        .into_iter()
        .chain(fetch::cached_capi())
        .find_map(|d| find_in(&d));
    if let Some(p) = known {
        return Ok(p);
    }
    let why = match fetch::install() {
        Ok(capi) => match find_in(&capi) {
            Some(p) => return Ok(p),
            None => format!("{} holds no libonnxruntime", capi.display()),
        },
        Err(why) => why,
    };
    Err(format!(
        "libonnxruntime not found and not installed ({why}); set ORT_DYLIB_PATH, or pip install onnxruntime==1.31.1"
    ))
}

static ENV: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();

/// The process-wide ONNX Runtime environment, loading the library on first use. A library
/// that cannot be loaded is an error (never a panic), and no other ort call is made after it.
pub fn environment() -> Result<Environment> {
    ENV.get_or_init(|| {
        let path = find_library()?;
        let path = path
            .canonicalize()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let builder = ::ort::init_from(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        builder
            .with_name("reuse-vos")
            .build()
            .map_err(|e| format!("{}: {e}", path.display()))
    })
    .clone()
    .map_err(Error::Engine)
}

/// An ort error as ours.
pub(crate) fn err(e: impl std::fmt::Display) -> Error {
    Error::Engine(format!("ONNX Runtime: {e}"))
}
