//! Training data: backbone features of every frame computed once with the fast engine and kept
//! in memory as f16, ground-truth masks, and target-model scores from models fitted on
//! reference frames (with the same first-frame augmentation the tracker uses).

use crate::engine::BackboneEngine;
use crate::error::Result;
use crate::io::{Dataset, Frame};
use crate::model::FeatureMap;
use crate::model::backbone::normalize;
use crate::model::online::TargetConfig;
use crate::track::video::processing_size;
use half::f16;

/// A feature map stored as f16.
#[derive(Clone, Debug)]
pub struct HalfMap {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f16>,
}

impl HalfMap {
    pub fn from_map(m: &FeatureMap) -> HalfMap {
        HalfMap {
            channels: m.channels,
            height: m.height,
            width: m.width,
            data: m.data.iter().map(|&v| f16::from_f32(v)).collect(),
        }
    }

    pub fn to_map(&self) -> FeatureMap {
        FeatureMap::new(
            self.channels,
            self.height,
            self.width,
            self.data.iter().map(|v| v.to_f32()).collect(),
        )
    }

    /// Rows `y0..y0+h`, columns `x0..x0+w` (clamped: missing cells repeat the border), as f32,
    /// optionally mirrored left–right.
    pub fn crop(&self, y0: usize, x0: usize, h: usize, w: usize, flip: bool) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.channels * h * w);
        for c in 0..self.channels {
            for y in 0..h {
                let sy = (y0 + y).min(self.height - 1);
                let row = &self.data
                    [(c * self.height + sy) * self.width..(c * self.height + sy + 1) * self.width];
                for x in 0..w {
                    let xx = if flip { w - 1 - x } else { x };
                    out.push(row[(x0 + xx).min(self.width - 1)].to_f32());
                }
            }
        }
        out
    }
}

/// One frame's four taps.
#[derive(Clone, Debug)]
pub struct FrameFeatures {
    /// Strides 32, 16, 8, 4 (the decoder's order).
    pub taps: [HalfMap; 4],
}

/// A reference frame's fitted target model: the scores it gives every frame of its sequence.
#[derive(Clone, Debug)]
pub struct Reference {
    pub frame: usize,
    /// Score at stride 16 for each frame of the sequence.
    pub scores: Vec<Vec<f32>>,
    /// The memory tracker's probability (stride 8) on the frames after this one, when the
    /// decoder is trained for the memory or fusion tracker (see `propagate`).
    pub propagated: Vec<HalfMap>,
}

/// Everything training needs of one sequence.
#[derive(Clone, Debug)]
pub struct SequenceData {
    pub name: String,
    pub width: usize,
    pub height: usize,
    pub features: Vec<FrameFeatures>,
    /// Binary object masks (0/1), full resolution.
    pub masks: Vec<Vec<u8>>,
    pub references: Vec<Reference>,
    /// s16 size.
    pub s16: (usize, usize),
    /// The matching keys of every frame (DINOv2 tokens, or the stride-8 features projected),
    /// when the memory does not match the stride-8 features as they are; empty otherwise.
    pub keys: Vec<HalfMap>,
}

/// Builds one sequence's data: features of every frame, masks, and references every
/// `ref_every` frames (where the object has at least 100 pixels).
pub fn load_sequence(
    dataset: &Dataset,
    name: &str,
    engine: &mut dyn BackboneEngine,
    cfg: &TargetConfig,
    ref_every: usize,
    augment: usize,
    max_side: Option<u32>,
) -> Result<SequenceData> {
    let info = dataset.sequence(name)?;
    let mut features = Vec::with_capacity(info.frames.len());
    let mut masks = Vec::with_capacity(info.frames.len());
    let mut frames = Vec::with_capacity(info.frames.len());
    let mut s16s = Vec::with_capacity(info.frames.len());
    let (mut width, mut height) = (0, 0);
    for ((_, ann), path) in info.annotations.iter().zip(&info.frames) {
        let frame = Frame::load(path)?;
        let mask = dataset.kind.read_annotation(ann)?;
        mask.check_size(frame.width, frame.height, ann)?;
        // At the size the tracker sees the video (`TrackerConfig::max_side`).
        let (w, h) = processing_size(frame.width, frame.height, max_side);
        let (frame, mask) = if (w, h) == (frame.width, frame.height) {
            (frame, mask)
        } else {
            (frame.resized(w, h)?, mask.resized_nearest(w, h))
        };
        (width, height) = (frame.width as usize, frame.height as usize);
        let p = engine.pyramid(&normalize(&frame))?;
        features.push(FrameFeatures {
            taps: [
                HalfMap::from_map(&p.s32),
                HalfMap::from_map(&p.s16),
                HalfMap::from_map(&p.s8),
                HalfMap::from_map(&p.s4),
            ],
        });
        s16s.push(cfg.input.map(&p.s16, &p.s32));
        masks.push(mask.ids);
        frames.push(frame);
    }
    let s16 = (s16s[0].height, s16s[0].width);
    let mut references = Vec::new();
    for r in (0..frames.len()).step_by(ref_every.max(1)) {
        if masks[r].iter().filter(|&&m| m > 0).count() < 100 {
            continue;
        }
        let model = crate::track::tracker::frtm::fit_target(
            engine, &frames[r], &masks[r], &s16s[r], cfg, augment,
        )?;
        let scores = s16s.iter().map(|f| model.score(f).data).collect();
        references.push(Reference {
            frame: r,
            scores,
            propagated: Vec::new(),
        });
    }
    Ok(SequenceData {
        name: name.to_string(),
        width,
        height,
        features,
        masks,
        references,
        s16,
        keys: Vec::new(),
    })
}
