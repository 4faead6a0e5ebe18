//! The seam between the session and what turns a frame's features and one object's state into
//! that object's score: a [`Tracker`] makes per-object [`ObjectModel`]s from given masks; each
//! scores the object on computed frames and learns from the merged result. The gate, the reuse
//! paths, the merge and the outputs work the same for every tracker.

pub mod frtm;
pub mod fusion;
pub mod memory;

use crate::engine::BackboneEngine;
use crate::error::Result;
use crate::io::Frame;
use crate::model::FeatureMap;
use crate::model::backbone::{HighFeatures, LowFeatures};
use crate::track::gate::GateSettings;
use serde::{Deserialize, Serialize};

/// Which tracker a session runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TrackerKind {
    /// FRTM's online target model (a projection and filter fitted by Gauss-Newton on the given
    /// mask, refined on tracked frames) + the refinement decoder.
    #[default]
    Frtm,
    /// Matching against a memory of frames (the given ones and recent tracked ones, REMN's
    /// local attention and adaptive update) + the refinement decoder.
    Memory,
    /// Both: the target model's score and the memory's propagated probability, fused.
    Fusion,
}

impl std::fmt::Display for TrackerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrackerKind::Frtm => "frtm",
            TrackerKind::Memory => "memory",
            TrackerKind::Fusion => "fusion",
        })
    }
}

impl TrackerKind {
    /// The gate's defaults for this tracker. The memory tracker's mask is its readout alone
    /// (no decoder), so its computed masks jitter from frame to frame and the copy audit reads
    /// that jitter as what a copy loses; and a copy costs it twice, in the copied frame and in
    /// the next computed ones, which read an older memory. Chosen on the 30 DAVIS-2016 train
    /// sequences (session 25, 16 settings; every fold within 0.10 J&F of never reusing, no
    /// sequence below −4.9, 47.9 % reused): τ 0.75, a copy-loss bound of 0.25, 5 copies in a
    /// row. At the shared defaults (τ 0.7, 0.12, 6) it lost 0.69 on a fold and 7.5 on
    /// drift-turn at 39.7 % reused. The command line applies these, and so does
    /// `TrackerConfig::for_tracker`; `TrackerConfig::default()` carries the shared ones.
    pub fn gate_defaults(self) -> GateSettings {
        let mut gate = GateSettings::default();
        if self == TrackerKind::Memory {
            gate.tau = 0.75;
            gate.safety.max_copy_loss = Some(0.25);
            gate.safety.max_streak = 5;
        }
        gate
    }
}

/// A frame's backbone features as far as they were computed: the low levels always, the deep
/// ones (and the tracker's input made from them) only when some object needs them.
pub struct FrameFeatures {
    pub low: LowFeatures,
    pub deep: Option<DeepFeatures>,
}

/// The deep backbone levels and the tracker's per-frame input derived from them.
pub struct DeepFeatures {
    pub high: HighFeatures,
    /// What the tracker's object models read (FRTM: the target model's input map, stride 16).
    pub input: FeatureMap,
    /// The matching backbone's keys (DINOv2 tokens), when the session has one and the frame
    /// computed them (not when every computed object read stale keys); the memory matches the
    /// stride-8 features when the session has none.
    pub keys: Option<FeatureMap>,
}

impl DeepFeatures {
    /// What the memory matches: DINOv2's tokens, or MobileNetV2's stride-8 features.
    pub fn match_keys<'a>(&'a self, low: &'a LowFeatures) -> &'a FeatureMap {
        self.keys.as_ref().unwrap_or(&low.s8)
    }
}

/// Makes object models; holds what its objects share.
pub trait Tracker: Send {
    fn kind(&self) -> TrackerKind;

    /// The per-frame input every object model reads, from the deep features (once per frame).
    fn frame_input(&self, low: &LowFeatures, high: &HighFeatures) -> FeatureMap;

    /// An object's model, started from its binary mask (0/1 per pixel) on `frame`.
    fn start(
        &self,
        backbone: &mut dyn BackboneEngine,
        frame: &Frame,
        low: &LowFeatures,
        deep: &DeepFeatures,
        mask: &[u8],
    ) -> Result<Box<dyn ObjectModel>>;

    /// Multiply-accumulates of one object's [`ObjectModel::score`] on an input of shape
    /// `input` (channels, height, width) with matching keys of shape `keys`.
    fn score_macs(&self, input: (usize, usize, usize), keys: (usize, usize, usize)) -> u64;

    /// Channels of the score it gives the decoder.
    fn score_channels(&self) -> usize {
        1
    }
}

/// On a frame whose matching keys were not computed (a stale-keys frame), how the object
/// moved since its last computed frame (the gate's measure, at the image size `(w, h)`): the
/// memory reads its last readout moved that way instead of matching.
#[derive(Clone, Copy)]
pub struct Prior<'a> {
    pub follow: &'a crate::track::flow::Followed,
    pub size: (usize, usize),
}

/// One object's part of a tracker: its target model (or memory).
pub trait ObjectModel: Send {
    /// The object's score on a frame for the decoder (FRTM: the target model's raw score at
    /// stride 16; memory: the propagated probability at stride 8, or `prior` as its memory
    /// would store it). Keeps what [`ObjectModel::learn`] needs of this frame.
    fn score(&mut self, low: &LowFeatures, deep: &DeepFeatures, prior: Option<Prior>)
    -> FeatureMap;

    /// Learns from the merged result of the last scored frame: the object's soft mask at the
    /// image size `(w, h)` and its area in pixels. Returns whether the model was refined.
    fn learn(&mut self, soft: &[f32], size: (usize, usize), area: usize) -> bool;

    /// A frame of the video went by without this object being scored (its mask was reused).
    /// Write rules that count frames count it too, so reusing does not thin them out in time.
    fn skipped(&mut self) {}

    /// Bytes the model holds.
    fn memory_bytes(&self) -> usize;
}

/// The tracker of a kind.
pub fn build(kind: TrackerKind, config: &crate::track::TrackerConfig) -> Box<dyn Tracker> {
    let frtm = || frtm::Frtm::new(config.target.clone(), config.augment);
    match kind {
        TrackerKind::Frtm => Box::new(frtm()),
        TrackerKind::Memory => Box::new(memory::Memory::new(config.memory)),
        TrackerKind::Fusion => Box::new(fusion::Fusion::new(frtm(), config.memory, config.fusion)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::TrackerConfig;

    #[test]
    fn a_config_for_a_tracker_carries_its_gate_defaults() {
        let bounds = |c: &TrackerConfig| {
            let g = &c.gate;
            (g.tau, g.safety.max_copy_loss, g.safety.max_streak)
        };
        let memory = TrackerConfig::for_tracker(TrackerKind::Memory);
        assert_eq!(memory.tracker, TrackerKind::Memory);
        assert_eq!(bounds(&memory), (0.75, Some(0.25), 5));
        for kind in [TrackerKind::Fusion, TrackerKind::Frtm] {
            let c = TrackerConfig::for_tracker(kind);
            assert_eq!(
                (c.tracker, bounds(&c)),
                (kind, bounds(&TrackerConfig::default()))
            );
        }
        assert_ne!(bounds(&memory), bounds(&TrackerConfig::default()));
    }
}
