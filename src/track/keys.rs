//! What the memory matches on: by default MobileNetV2's stride-8 features (already computed for
//! the decoder); in the quality mode the tokens of a middle layer of DINOv2 ViT-S/14, computed
//! on the frame resized to a multiple of 14 — only on computed frames, so a reused frame skips
//! the heavy network entirely.

use crate::engine::{EngineKind, VitEngine};
use crate::error::{Error, Result};
use crate::io::Frame;
use crate::model::FeatureMap;
use crate::model::projection::KeyProjection;
use crate::model::vit::{VitShape, VitWeights, input, source};
use crate::track::gate::StaleKeys;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The backbone whose features the memory matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MatchBackbone {
    /// MobileNetV2 stride-8 features (32 channels), shared with the decoder: no extra cost.
    #[default]
    Mobilenetv2,
    /// DINOv2 ViT-S/14 tokens (384 channels, stride 14 of the resized frame).
    Dinov2s,
}

impl MatchBackbone {
    /// The memory's window radius in cells of this backbone's grid: ±96 px on MobileNetV2's
    /// stride 8 (chosen on the 30 sequences), ±84 px of DINOv2's input at stride 14.
    pub fn default_radius(self) -> usize {
        match self {
            MatchBackbone::Mobilenetv2 => 12,
            MatchBackbone::Dinov2s => 6,
        }
    }

    /// The window radius on a frame scored after reused ones: `asked` (0: none), else this
    /// backbone's. DINOv2's coarse grid and its decoder's reliance on the memory make a stale
    /// memory cost most: hike lost 5.9 J&F with the default gate at 6 cells, 2.0 at 9
    /// (session 21; without reuse 93.9 and 94.0). MobileNetV2's computed frames after copies
    /// score as well as without reuse: none.
    pub fn reuse_radius(self, asked: Option<usize>) -> Option<usize> {
        match (asked, self) {
            (Some(0), _) | (None, MatchBackbone::Mobilenetv2) => None,
            (Some(r), _) => Some(r),
            (None, MatchBackbone::Dinov2s) => Some(9),
        }
    }

    /// When a computed frame may skip this backbone's keys: at `tau` (≥ 1: never), else
    /// this backbone's default; none on MobileNetV2, whose keys cost nothing extra. DINOv2:
    /// 0.7, the copy threshold — only frames whose copy the safety net refused; gate refusals
    /// (P ≤ 0.7) are motion the luma cells do not explain (at 0.4, fold 2 lost 1.9 J&F,
    /// dog-agility 4.8).
    pub fn stale_keys(self, tau: Option<f32>, max_age: usize) -> Option<StaleKeys> {
        let tau = match (tau, self) {
            (_, MatchBackbone::Mobilenetv2) => return None,
            (Some(t), _) => t,
            (None, MatchBackbone::Dinov2s) => 0.7,
        };
        (tau < 1.0).then_some(StaleKeys { tau, max_age })
    }
}

impl std::fmt::Display for MatchBackbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MatchBackbone::Mobilenetv2 => "mobilenetv2",
            MatchBackbone::Dinov2s => "dinov2s",
        })
    }
}

/// The matching backbone and, for DINOv2, where it runs.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct MatchingConfig {
    pub backbone: MatchBackbone,
    /// DINOv2: the blocks run; the tokens after the last are the keys.
    pub layers: usize,
    /// DINOv2: the input's shorter side (rounded to a multiple of 14; the other side keeps
    /// the aspect).
    pub short_side: usize,
    /// MobileNetV2: the key channels (None: all 32; 16: the embedded projection).
    #[serde(default)]
    pub key_channels: Option<usize>,
}

impl Default for MatchingConfig {
    fn default() -> Self {
        MatchingConfig {
            backbone: MatchBackbone::Mobilenetv2,
            layers: 8,
            short_side: 420,
            key_channels: None,
        }
    }
}

/// The nearest multiple of 14, at least 14.
fn patches(v: f32) -> usize {
    ((v / 14.0).round() as usize).max(1) * 14
}

impl MatchingConfig {
    /// The projection of MobileNetV2's keys this asks for (None: the features as they are).
    pub fn projection(&self) -> Result<Option<KeyProjection>> {
        match (self.backbone, self.key_channels) {
            (MatchBackbone::Mobilenetv2, _) | (_, None) => {}
            (backbone, Some(n)) => {
                return Err(Error::Invalid(format!(
                    "--key-channels {n}: only MobileNetV2's keys are projected; {backbone}'s are matched as they are"
                )));
            }
        }
        match self.key_channels {
            None | Some(32) => Ok(None),
            Some(16) => Ok(Some(KeyProjection::embedded()?)),
            Some(n) => Err(Error::Invalid(format!(
                "--key-channels {n}: MobileNetV2's keys have 32 channels, or 16 through the embedded projection"
            ))),
        }
    }

    /// The ViT's input on frames of `(width, height)`.
    pub fn vit_shape(&self, (w, h): (usize, usize)) -> VitShape {
        let short = patches(self.short_side as f32);
        let long = |a: usize, b: usize| patches(a as f32 * short as f32 / b.max(1) as f32);
        let (height, width) = if h <= w {
            (short, long(w, h))
        } else {
            (long(h, w), short)
        };
        VitShape {
            height,
            width,
            layers: self.layers,
        }
    }
}

/// The DINOv2 keys of computed frames.
pub struct KeySource {
    engine: Box<dyn VitEngine>,
    weights: Arc<VitWeights>,
    config: MatchingConfig,
}

impl KeySource {
    /// The source `config` asks for: None for MobileNetV2 (the session's own features).
    pub fn new(
        config: MatchingConfig,
        weights: Option<&Arc<VitWeights>>,
        kind: EngineKind,
        threads: usize,
    ) -> Result<Option<KeySource>> {
        if config.backbone == MatchBackbone::Mobilenetv2 {
            return Ok(None);
        }
        let weights = weights.ok_or_else(|| {
            Error::Invalid(format!(
                "--backbone dinov2s: the DINOv2 weights are not loaded; {}",
                source::how_to_get()
            ))
        })?;
        let depth = weights.config.depth;
        if !(1..=depth).contains(&config.layers) {
            return Err(Error::Invalid(format!(
                "--vit-layers {}: DINOv2 ViT-S/14 has layers 1 to {depth}",
                config.layers
            )));
        }
        Ok(Some(KeySource {
            engine: crate::engine::vit(weights.clone(), kind, threads)?,
            weights: weights.clone(),
            config,
        }))
    }

    /// The frame's keys: `[384, rows, cols]`.
    pub fn keys(&mut self, frame: &Frame) -> Result<FeatureMap> {
        let shape = self.shape((frame.width as usize, frame.height as usize));
        self.engine
            .tokens(&input(frame, (shape.height, shape.width)), shape)
    }

    pub fn shape(&self, size: (usize, usize)) -> VitShape {
        self.config.vit_shape(size)
    }

    /// Multiply-accumulates of one frame's keys.
    pub fn macs(&self, size: (usize, usize)) -> u64 {
        self.weights.macs(self.shape(size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_keeps_the_aspect_in_multiples_of_14() {
        let c = MatchingConfig::default();
        let s = c.vit_shape((854, 480));
        assert_eq!((s.height, s.width, s.layers), (420, 742, 8));
        let p = c.vit_shape((480, 854));
        assert_eq!((p.height, p.width), (742, 420));
    }
}
