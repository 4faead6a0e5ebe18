//! Where a frame's time goes: one record of milliseconds per stage, filled only through
//! [`StageTimes::time`] (and the video loop's decode/output), averaged in one place.

use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Milliseconds spent in each stage of one frame.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StageTimes {
    /// Waiting for the frame: it is read (image decoding, or ffmpeg's pipe) and resized on a
    /// reader thread ahead of the tracker, so this is the part the tracker did not hide.
    pub decode_ms: f64,
    /// Writing the frame's outputs (masks, mattes, overlay frame).
    #[serde(default)]
    pub output_ms: f64,
    pub backbone_ms: f64,
    /// The matching backbone (DINOv2) on computed frames, when it is on.
    #[serde(default)]
    pub keys_ms: f64,
    /// Starting objects on given masks (the tracker's fit, augmentation included).
    pub init_ms: f64,
    /// The tracker's scoring of computed objects (target model / memory readout).
    pub target_ms: f64,
    /// Template matching, gate, Δ and refine-translator of all objects.
    pub gate_ms: f64,
    pub decoder_ms: f64,
    pub merge_ms: f64,
    pub update_ms: f64,
    pub total_ms: f64,
}

/// A stage of [`StageTimes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Decode,
    Output,
    Backbone,
    Keys,
    Init,
    Target,
    Gate,
    Decoder,
    Merge,
    Update,
}

impl StageTimes {
    fn slot(&mut self, stage: Stage) -> &mut f64 {
        match stage {
            Stage::Decode => &mut self.decode_ms,
            Stage::Output => &mut self.output_ms,
            Stage::Backbone => &mut self.backbone_ms,
            Stage::Keys => &mut self.keys_ms,
            Stage::Init => &mut self.init_ms,
            Stage::Target => &mut self.target_ms,
            Stage::Gate => &mut self.gate_ms,
            Stage::Decoder => &mut self.decoder_ms,
            Stage::Merge => &mut self.merge_ms,
            Stage::Update => &mut self.update_ms,
        }
    }

    /// Runs `f`, adding its wall time to `stage`.
    pub fn time<T>(&mut self, stage: Stage, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.add(stage, since(t));
        out
    }

    /// Adds `ms` milliseconds to `stage`.
    pub fn add(&mut self, stage: Stage, ms: f64) {
        *self.slot(stage) += ms;
    }

    /// The mean of each stage over `frames`.
    pub fn mean<'a>(frames: impl ExactSizeIterator<Item = &'a StageTimes>) -> StageTimes {
        let n = frames.len().max(1) as f64;
        let mut m = StageTimes::default();
        for t in frames {
            for (sum, v) in m.fields_mut().into_iter().zip(t.fields()) {
                *sum += v / n;
            }
        }
        m
    }

    fn fields(&self) -> [f64; 11] {
        [
            self.decode_ms,
            self.output_ms,
            self.backbone_ms,
            self.keys_ms,
            self.init_ms,
            self.target_ms,
            self.gate_ms,
            self.decoder_ms,
            self.merge_ms,
            self.update_ms,
            self.total_ms,
        ]
    }

    fn fields_mut(&mut self) -> [&mut f64; 11] {
        [
            &mut self.decode_ms,
            &mut self.output_ms,
            &mut self.backbone_ms,
            &mut self.keys_ms,
            &mut self.init_ms,
            &mut self.target_ms,
            &mut self.gate_ms,
            &mut self.decoder_ms,
            &mut self.merge_ms,
            &mut self.update_ms,
            &mut self.total_ms,
        ]
    }
}

/// Milliseconds since `t`.
pub fn since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
