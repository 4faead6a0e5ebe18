//! The matching backbone's keys of the training sequences, kept on disk between runs.
//!
//! DINOv2's keys cost ~1.35 s a frame on two cores (~50 minutes for the 30 DAVIS sequences),
//! and every training run — each fold, each closed-loop round — needs the same ones. One
//! safetensors file per sequence (f16, `[frames, channels, height, width]`), written
//! atomically as soon as the sequence is done, so an interrupted caching run keeps what it
//! finished and the next run goes on from there.

use super::data::HalfMap;
use crate::error::{Error, Result};
use crate::track::keys::MatchingConfig;
use half::f16;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::path::{Path, PathBuf};

/// Where one matching configuration's keys live: `<dir>/<backbone>-l<layers>-s<short side>-<max side>/`.
pub struct KeyCache {
    dir: PathBuf,
}

impl KeyCache {
    /// The folder under `root` for keys computed with `matching` on frames scaled to `max_side`.
    pub fn new(root: &Path, matching: &MatchingConfig, max_side: Option<u32>) -> KeyCache {
        let side = max_side.map_or("full".to_string(), |s| format!("m{s}"));
        let tag = format!(
            "{}-l{}-s{}-{side}",
            matching.backbone, matching.layers, matching.short_side
        );
        KeyCache {
            dir: root.join(tag),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, sequence: &str) -> PathBuf {
        self.dir.join(format!("{sequence}.safetensors"))
    }

    /// The cached keys of `sequence`, if a complete file with `frames` frames is there. A file
    /// that cannot be read or holds another number of frames is reported and recomputed.
    pub fn load(&self, sequence: &str, frames: usize) -> Option<Vec<HalfMap>> {
        let path = self.path(sequence);
        if !path.is_file() {
            return None;
        }
        match read(&path, frames) {
            Ok(keys) => Some(keys),
            Err(e) => {
                eprintln!("{e}; computing the keys again");
                None
            }
        }
    }

    /// Writes `keys` of `sequence` (atomically).
    pub fn store(&self, sequence: &str, keys: &[HalfMap]) -> Result<()> {
        let path = self.path(sequence);
        let first = keys
            .first()
            .ok_or_else(|| Error::Invalid(format!("{sequence}: no keys to cache")))?;
        let (c, h, w) = (first.channels, first.height, first.width);
        let mut bytes = Vec::with_capacity(keys.len() * c * h * w * 2);
        for k in keys {
            if (k.channels, k.height, k.width) != (c, h, w) {
                return Err(Error::Invalid(format!(
                    "{sequence}: key maps of different shapes cannot be cached together"
                )));
            }
            bytes.extend(k.data.iter().flat_map(|v| v.to_le_bytes()));
        }
        let view = TensorView::new(Dtype::F16, vec![keys.len(), c, h, w], &bytes)
            .map_err(|e| Error::Invalid(format!("{sequence}: {e}")))?;
        let data = safetensors::serialize([("keys", view)], None)
            .map_err(|e| Error::Invalid(format!("{sequence}: cannot serialise the keys: {e}")))?;
        crate::io::atomic::write_bytes(&path, &data)
    }
}

fn read(path: &Path, frames: usize) -> Result<Vec<HalfMap>> {
    let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| Error::format(path, e.to_string()))?;
    let t = st
        .tensor("keys")
        .map_err(|e| Error::format(path, e.to_string()))?;
    let &[n, channels, height, width] = t.shape() else {
        return Err(Error::format(
            path,
            format!("keys of shape {:?}", t.shape()),
        ));
    };
    if t.dtype() != Dtype::F16 || n != frames {
        return Err(Error::format(
            path,
            format!("{n} frames of {:?}, the sequence has {frames}", t.dtype()),
        ));
    }
    let per = channels * height * width;
    let values: Vec<f16> = t
        .data()
        .chunks_exact(2)
        .map(|b| f16::from_le_bytes([b[0], b[1]]))
        .collect();
    Ok(values
        .chunks_exact(per)
        .map(|d| HalfMap {
            channels,
            height,
            width,
            data: d.to_vec(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(seed: f32) -> HalfMap {
        HalfMap {
            channels: 2,
            height: 3,
            width: 4,
            data: (0..24)
                .map(|i| f16::from_f32(seed + i as f32 * 0.5))
                .collect(),
        }
    }

    #[test]
    fn keys_come_back_as_written_and_a_wrong_frame_count_is_recomputed() {
        let root = std::env::temp_dir().join(format!("key-cache-{}", std::process::id()));
        let cache = KeyCache::new(&root, &MatchingConfig::default(), Some(640));
        assert!(cache.load("bear", 2).is_none(), "nothing cached yet");
        cache.store("bear", &[map(0.0), map(1.0)]).unwrap();
        let back = cache.load("bear", 2).expect("cached");
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].data, map(1.0).data);
        assert_eq!((back[0].channels, back[0].height, back[0].width), (2, 3, 4));
        assert!(cache.load("bear", 3).is_none(), "another frame count");
        std::fs::write(cache.path("bear"), b"not safetensors").unwrap();
        assert!(cache.load("bear", 2).is_none(), "a damaged file");
        let _ = std::fs::remove_dir_all(&root);
    }
}
