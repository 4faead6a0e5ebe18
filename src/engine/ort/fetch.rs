//! ONNX Runtime on a fresh machine: when no `libonnxruntime` is found, the library of the pinned
//! Python wheel (`onnxruntime==1.31.1`) is installed once into a cache folder with `pip` — no
//! system-wide change, a one-line message — so the README's first command runs at full speed.
//! `REUSE_VOS_NO_FETCH=1` turns this off (the Burn engine then runs, about 6× slower).

use std::path::PathBuf;

/// The wheel the engine is built and tested against.
pub const VERSION: &str = "1.31.1";

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

/// Where the cached wheel's library lives (`<cache>/onnxruntime-<version>/onnxruntime/capi`).
pub fn cached_capi() -> Option<PathBuf> {
    Some(
        cache_dir()?
            .join(format!("onnxruntime-{VERSION}"))
            .join("onnxruntime")
            .join("capi"),
    )
}

fn disabled() -> bool {
    std::env::var("REUSE_VOS_NO_FETCH").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Installs the wheel into the cache with `python3 -m pip install --target` (into a temporary
/// folder, renamed when complete, so an interrupted install is never used). Returns the capi
/// folder, or why it could not.
pub fn install() -> Result<PathBuf, String> {
    if disabled() {
        return Err("REUSE_VOS_NO_FETCH is set".into());
    }
    let capi = cached_capi().ok_or("no cache folder (set REUSE_VOS_CACHE or HOME)")?;
    let target = capi
        .parent()
        .and_then(|p| p.parent())
        .ok_or("bad cache path")?
        .to_path_buf();
    let partial = target.with_extension(format!("partial-{}", std::process::id()));
    eprintln!(
        "note: ONNX Runtime not found; installing onnxruntime=={VERSION} (pip, about 20 MB) into {} — once",
        target.display()
    );
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
        .arg(format!("onnxruntime=={VERSION}"))
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run python3 -m pip: {e}"))?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(format!(
            "pip install onnxruntime=={VERSION} failed ({status})"
        ));
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    // Another process may have finished first: theirs is as good as ours.
    if std::fs::rename(&partial, &target).is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    Ok(capi)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cache_is_under_the_chosen_folder() {
        // Read-only check of the layout (nothing is installed by tests).
        if let Some(capi) = super::cached_capi() {
            let s = capi.display().to_string();
            assert!(
                s.contains("onnxruntime-1.31.1") && s.ends_with("capi"),
                "{s}"
            );
        }
    }
}
