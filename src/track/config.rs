//! A session's settings: which tracker, its models' settings, the gate, the engine, and the
//! size videos are tracked at.

use super::gate::GateSettings;
use super::keys::MatchingConfig;
use super::tracker::TrackerKind;
use super::tracker::fusion::FusionConfig;
use super::tracker::memory::MemoryConfig;
use crate::engine::{EngineKind, Precision};
use crate::model::online::TargetConfig;

/// Session settings.
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    pub tracker: TrackerKind,
    pub target: TargetConfig,
    /// The memory tracker's settings (memory and fusion trackers).
    pub memory: MemoryConfig,
    /// How the fusion tracker combines its two scores.
    pub fusion: FusionConfig,
    /// Run the refinement decoder on computed frames (false: the tracker's score, upsampled,
    /// is the probability — an ablation for the memory tracker).
    pub decoder: bool,
    /// Synthetic first-frame views for the target model.
    pub augment: usize,
    pub engine: Option<EngineKind>,
    /// The backbone's number format; None: int8 on ONNX Runtime when the backbone has an int8
    /// plan (the embedded one has), f32 otherwise.
    pub precision: Option<Precision>,
    pub threads: usize,
    /// When a frame reuses the last computed one.
    pub gate: GateSettings,
    /// What the memory matches on (memory and fusion trackers).
    pub matching: MatchingConfig,
    /// The size videos are tracked at (results come out at the original size). Only `track`
    /// (whole videos) scales; a `Session` tracks the frames it is given.
    pub size: TrackingSize,
    /// Region reuse in the backbone's first blocks (SpVOS): tiles whose mean change is below
    /// this many grey levels keep their activations (0: only unchanged tiles). None: dense.
    pub sparse: Option<f32>,
}

/// The default tracking size's longest side (both matching backbones): 854×480 video is
/// tracked at 640×360 — 12.7 FPS without reuse on 2 cores, where 854×480 gives 8.1;
/// cross-validated J&F on DAVIS-2016 train 81.1 with decoders trained at 640 (80.0 at
/// 854×480 with the full-size ones).
pub const DEFAULT_MAX_SIDE: u32 = 640;

/// The size a video is tracked at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrackingSize {
    /// [`DEFAULT_MAX_SIDE`] on the longest side, with either matching backbone (both embedded
    /// fusion decoders are trained at that size).
    #[default]
    Default,
    /// The frames' own size.
    Own,
    /// Scaled down to this longest side (never up).
    MaxSide(u32),
}

impl TrackingSize {
    /// The longest side to scale to (None: no scaling).
    pub fn max_side(self) -> Option<u32> {
        match self {
            TrackingSize::Default => Some(DEFAULT_MAX_SIDE),
            TrackingSize::Own => None,
            TrackingSize::MaxSide(m) => Some(m),
        }
    }
}

impl TrackerConfig {
    /// The defaults for `tracker`, its own gate defaults included (the memory tracker's differ
    /// from the others'; `TrackerConfig::default()` is FRTM's).
    pub fn for_tracker(tracker: TrackerKind) -> TrackerConfig {
        TrackerConfig {
            tracker,
            gate: tracker.gate_defaults(),
            ..TrackerConfig::default()
        }
    }

    /// The longest side this configuration tracks videos at (None: their own size).
    pub fn max_side(&self) -> Option<u32> {
        self.size.max_side()
    }
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            tracker: TrackerKind::default(),
            target: TargetConfig::default(),
            memory: MemoryConfig::default(),
            fusion: FusionConfig::default(),
            decoder: true,
            augment: 4,
            engine: None,
            precision: None,
            threads: 2,
            gate: GateSettings::default(),
            matching: MatchingConfig::default(),
            size: TrackingSize::Default,
            sparse: None,
        }
    }
}
