//! The project's cache folder and the one way things get into it: a pinned package from the
//! Python package index, installed with `pip` into a temporary folder that is renamed only when
//! complete (an interrupted install is never used). `REUSE_VOS_NO_FETCH=1` turns fetching off.

use std::path::{Path, PathBuf};

/// `$REUSE_VOS_CACHE`, else `$XDG_CACHE_HOME/reuse-vos`, else `~/.cache/reuse-vos`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("REUSE_VOS_CACHE") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("reuse-vos"))
}

/// Whether the user turned fetching off.
pub fn fetch_disabled() -> bool {
    std::env::var("REUSE_VOS_NO_FETCH").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `python3 -m pip install --no-deps --only-binary=:all: --target <target> <requirement>`,
/// through a temporary sibling of `target`. Another process finishing first is fine: theirs is
/// as good as ours.
pub fn pip_install(requirement: &str, target: &Path) -> Result<(), String> {
    if fetch_disabled() {
        return Err("REUSE_VOS_NO_FETCH is set".into());
    }
    // Unique per process and call: two installs at once never share a folder.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let partial = target.with_extension(format!("partial-{}-{nanos}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let status = std::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-deps", "--only-binary=:all:", "--target"])
        .arg(&partial)
        .arg(requirement)
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run python3 -m pip: {e}"))?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(format!("pip install {requirement} failed ({status})"));
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    if std::fs::rename(&partial, target).is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    Ok(())
}
