//! ONNX Runtime on a fresh machine: when no `libonnxruntime` is found, the library of the pinned
//! Python wheel (`onnxruntime==1.31.1`) is installed once into a cache folder with `pip` — no
//! system-wide change, a one-line message — so the README's first command runs at full speed.
//! `REUSE_VOS_NO_FETCH=1` turns this off (the Burn engine then runs, about 6× slower).

use std::path::PathBuf;

/// The wheel the engine is built and tested against.
pub const VERSION: &str = "1.31.1";

pub use crate::io::cache::cache_dir;

/// Where the cached wheel's library lives (`<cache>/onnxruntime-<version>/onnxruntime/capi`).
pub fn cached_capi() -> Option<PathBuf> {
    Some(
        cache_dir()?
            .join(format!("onnxruntime-{VERSION}"))
            .join("onnxruntime")
            .join("capi"),
    )
}

/// Installs the wheel into the cache (`io::cache::pip_install`). Returns the capi folder, or
/// why it could not.
pub fn install() -> Result<PathBuf, String> {
    if crate::io::cache::fetch_disabled() {
        return Err("REUSE_VOS_NO_FETCH is set".into());
    }
    let capi = cached_capi().ok_or("no cache folder (set REUSE_VOS_CACHE or HOME)")?;
    let target = capi
        .parent()
        .and_then(|p| p.parent())
        .ok_or("bad cache path")?
        .to_path_buf();
    eprintln!(
        "note: ONNX Runtime not found; installing onnxruntime=={VERSION} (pip, about 20 MB) into {} — once",
        target.display()
    );
    crate::io::cache::pip_install(&format!("onnxruntime=={VERSION}"), &target)?;
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
