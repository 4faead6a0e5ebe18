//! The two engines that run the networks: ONNX Runtime (fast, needs `libonnxruntime`) and Burn
//! (pure Rust, always available). Both are built from the same folded weights.

pub mod burn;
pub mod ort;
pub mod sparse;

use crate::error::Result;
use crate::model::FeatureMap;
use crate::model::backbone::{BackboneSpec, HighFeatures, LowFeatures, Pyramid};
use crate::model::int8::Int8Plan;
use serde::{Deserialize, Serialize};

/// Which engine runs the networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    /// ONNX Runtime, through graphs built from the project's weights.
    Ort,
    /// Burn with the pure-Rust `flex` CPU backend.
    Burn,
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineKind::Ort => "ort",
            EngineKind::Burn => "burn",
        })
    }
}

impl std::str::FromStr for EngineKind {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ort" | "onnxruntime" => Ok(EngineKind::Ort),
            "burn" => Ok(EngineKind::Burn),
            _ => Err(crate::Error::Invalid(format!(
                "unknown engine {s:?} (expected ort or burn)"
            ))),
        }
    }
}

/// The number format the backbone runs in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    /// Static int8 (ONNX Runtime only; the ranges calibrated on DAVIS frames).
    Int8,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Int8 => "int8",
        })
    }
}

/// The backbone on one engine: the low part (to stride 8) and the high part (from stride 8).
pub trait BackboneEngine: Send {
    fn kind(&self) -> EngineKind;
    /// Blocks 0–6 on a normalised image: the stride-4 and stride-8 taps.
    fn low(&mut self, image: &FeatureMap) -> Result<LowFeatures>;
    /// Blocks 7–17 from the stride-8 tap: the stride-16 and stride-32 taps.
    fn high(&mut self, s8: &FeatureMap) -> Result<HighFeatures>;
    /// The share of the frame's pixels the last `low` ran the network on (1 for a dense
    /// engine; less where [`sparse::SparseBackbone`] kept unchanged tiles).
    fn low_share(&self) -> f64 {
        1.0
    }
    /// All four taps.
    fn pyramid(&mut self, image: &FeatureMap) -> Result<Pyramid> {
        let low = self.low(image)?;
        let high = self.high(&low.s8)?;
        Ok(Pyramid::from_parts(low, high))
    }
}

/// The refinement decoder on one engine, split as the reuse path needs it.
pub trait DecoderEngine: Send {
    /// Levels s32 and s16 → the decoder state at stride 16.
    fn deep(
        &mut self,
        s32: &FeatureMap,
        s16: &FeatureMap,
        score: &FeatureMap,
    ) -> Result<FeatureMap>;
    /// The state with s8 and s4 → mask logits at stride 4.
    fn shallow(
        &mut self,
        state: &FeatureMap,
        s8: &FeatureMap,
        s4: &FeatureMap,
        score: &FeatureMap,
    ) -> Result<FeatureMap>;
}

/// The reuse path on one engine (template, matching + gate + Δ, refine-translator).
pub trait ReuseEngine: Send {
    /// An object's template (K×K, row-major) from stride-8 features and its mask at stride 8.
    fn template(&mut self, s8: &FeatureMap, mask8: &FeatureMap) -> Result<Vec<f32>>;
    /// The gate's logit (P(reuse) = sigmoid) and Δ at stride 16, from the current stride-8
    /// features, those of the last computed frame and its score map resized to stride 8.
    fn gate(
        &mut self,
        s8: &FeatureMap,
        last_s8: &FeatureMap,
        score8: &FeatureMap,
        template: &[f32],
    ) -> Result<(f32, FeatureMap)>;
    /// The stored decoder state and Δ → the state of the current frame.
    fn translate(&mut self, state: &FeatureMap, delta: &FeatureMap) -> Result<FeatureMap>;
}

/// The reuse path on the chosen engine.
pub fn reuse(
    net: &crate::model::reuse::ReuseNet,
    feature_channels: usize,
    kind: EngineKind,
    threads: usize,
) -> Result<Box<dyn ReuseEngine>> {
    Ok(match kind {
        EngineKind::Ort => Box::new(ort::reuse::OrtReuse::new(net, feature_channels, threads)?),
        EngineKind::Burn => Box::new(burn::BurnReuse::new(net.clone())),
    })
}

/// The decoder on the chosen engine.
pub fn decoder(
    dec: &crate::model::decoder::Decoder,
    feature_channels: [usize; 4],
    kind: EngineKind,
    threads: usize,
) -> Result<Box<dyn DecoderEngine>> {
    Ok(match kind {
        EngineKind::Ort => Box::new(ort::decoder::OrtDecoder::new(
            dec,
            feature_channels,
            threads,
        )?),
        EngineKind::Burn => Box::new(burn::BurnDecoder::new(dec.clone())),
    })
}

/// Picks the engine: the one asked for, or ONNX Runtime when its library loads and Burn
/// otherwise (saying so once on stderr).
pub fn resolve(choice: Option<EngineKind>) -> Result<EngineKind> {
    match choice {
        Some(EngineKind::Ort) => {
            ort::environment()?;
            Ok(EngineKind::Ort)
        }
        Some(EngineKind::Burn) => Ok(EngineKind::Burn),
        None => match ort::environment() {
            Ok(_) => Ok(EngineKind::Ort),
            Err(e) => {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    eprintln!(
                        "note: ONNX Runtime not available ({e}); using the Burn engine, about 6x slower"
                    )
                });
                Ok(EngineKind::Burn)
            }
        },
    }
}

/// The backbone on the chosen engine, with `threads` intra-op threads; in int8 when `int8`
/// is given (ONNX Runtime only).
pub fn backbone(
    spec: &BackboneSpec,
    choice: Option<EngineKind>,
    int8: Option<&Int8Plan>,
    threads: usize,
) -> Result<Box<dyn BackboneEngine>> {
    Ok(match (resolve(choice)?, int8) {
        (EngineKind::Ort, plan) => Box::new(ort::OrtBackbone::new(spec, plan, threads)?),
        (EngineKind::Burn, None) => Box::new(burn::BurnBackbone::new(spec)),
        (EngineKind::Burn, Some(_)) => {
            return Err(crate::Error::Invalid(
                "--precision int8 runs on ONNX Runtime only (the Burn engine is f32)".into(),
            ));
        }
    })
}

/// The matching backbone (DINOv2 ViT-S/14) on one engine.
pub trait VitEngine: Send {
    /// Tokens after `shape.layers` blocks of a normalised image of `shape`'s size, as a
    /// `[dim, rows, cols]` map.
    fn tokens(
        &mut self,
        image: &FeatureMap,
        shape: crate::model::vit::VitShape,
    ) -> Result<FeatureMap>;
}

impl VitEngine for ort::vit::OrtVit {
    fn tokens(
        &mut self,
        image: &FeatureMap,
        shape: crate::model::vit::VitShape,
    ) -> Result<FeatureMap> {
        ort::vit::OrtVit::tokens(self, image, shape)
    }
}

/// The ViT on the chosen engine.
pub fn vit(
    weights: std::sync::Arc<crate::model::vit::VitWeights>,
    kind: EngineKind,
    threads: usize,
) -> Result<Box<dyn VitEngine>> {
    Ok(match kind {
        EngineKind::Ort => Box::new(ort::vit::OrtVit::new(weights, threads)?),
        EngineKind::Burn => Box::new(burn::BurnVit::new(weights)),
    })
}
