//! Decoder inputs for the memory and fusion trackers, made the way the tracker makes them: from
//! every reference frame, the memory tracker (started on the reference's true mask) propagates
//! forward over the cached stride-8 features, its own errors included — each frame is written
//! back with the mask it predicted, never the ground truth.

use super::data::{HalfMap, SequenceData};
use crate::model::FeatureMap;
use crate::model::tensor::resize_bilinear;
use crate::track::TrackerKind;
use crate::track::keys::MatchingConfig;
use crate::track::tracker::memory::{MemoryConfig, MemoryObject, on_grid};
use rayon::prelude::*;

/// What the decoder is trained to read.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct ScoreSource {
    pub tracker: TrackerKind,
    pub memory: MemoryConfig,
    /// What the memory matches (the keys cached per frame when it is DINOv2).
    #[serde(default)]
    pub matching: MatchingConfig,
}

impl ScoreSource {
    /// Channels of the score the decoder reads.
    pub fn channels(&self) -> usize {
        match self.tracker {
            TrackerKind::Fusion => 2,
            _ => 1,
        }
    }

    /// Whether the score lives on the stride-8 grid (memory, fusion) or stride 16 (FRTM).
    pub fn stride(&self) -> usize {
        match self.tracker {
            TrackerKind::Frtm => 16,
            _ => 8,
        }
    }
}

/// Propagates from every reference of every sequence over the next `span` frames, storing the
/// memory's probability (stride 8, f16) of each in the reference.
pub fn propagate_all(seqs: &mut [SequenceData], memory: MemoryConfig, span: usize) {
    seqs.par_iter_mut().for_each(|seq| {
        let maps: Vec<Vec<HalfMap>> = seq
            .references
            .iter()
            .map(|r| propagate(seq, r.frame, memory, span))
            .collect();
        for (r, m) in seq.references.iter_mut().zip(maps) {
            r.propagated = m;
        }
    });
}

/// The memory's probability on frames `start + 1 ..= start + span` (as far as the sequence
/// goes), on the stride-8 grid whatever grid the keys have (as the tracker gives it).
fn propagate(seq: &SequenceData, start: usize, config: MemoryConfig, span: usize) -> Vec<HalfMap> {
    let keys = |t: usize| match seq.keys.get(t) {
        Some(k) => k.to_map(),
        None => seq.features[t].taps[2].to_map(),
    };
    let (h8, w8) = (
        seq.features[0].taps[2].height,
        seq.features[0].taps[2].width,
    );
    let first = keys(start);
    let size = (seq.width, seq.height);
    let mut object = MemoryObject::start(config, size, &first, &seq.masks[start]);
    let last = (start + span).min(seq.features.len() - 1);
    let mut out = Vec::new();
    for t in start + 1..=last {
        let p = object.propagate(&keys(t));
        // Written back as the tracker writes it: the predicted mask, at the stride-8 grid.
        let hard: Vec<f32> = p
            .data
            .iter()
            .map(|&v| if v > 0.5 { 1.0 } else { 0.0 })
            .collect();
        object.remember(&hard, (p.width, p.height));
        out.push(HalfMap::from_map(&on_grid(p, h8, w8)));
    }
    out
}

/// A frame's decoder score for a reference: the FRTM score (stride 16), the memory's
/// probability (stride 8), or both stacked at stride 8 (FRTM's resized as the tracker does).
pub fn score_map(seq: &SequenceData, reference: usize, t: usize, source: &ScoreSource) -> HalfMap {
    let r = &seq.references[reference];
    let (h16, w16) = seq.s16;
    let frtm = || FeatureMap::new(1, h16, w16, r.scores[t].clone());
    match source.tracker {
        TrackerKind::Frtm => HalfMap::from_map(&frtm()),
        TrackerKind::Memory => r.propagated[t - r.frame - 1].clone(),
        TrackerKind::Fusion => {
            let p = r.propagated[t - r.frame - 1].to_map();
            let s = frtm();
            let mut data = resize_bilinear(&s.data, s.height, s.width, p.height, p.width);
            data.extend_from_slice(&p.data);
            HalfMap::from_map(&FeatureMap::new(2, p.height, p.width, data))
        }
    }
}
