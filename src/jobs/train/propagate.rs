//! Decoder inputs for the memory and fusion trackers, made the way the tracker makes them: from
//! every reference frame, the memory tracker (started on the reference's true mask) propagates
//! forward over the cached stride-8 features, its own errors included — each frame is written
//! back with the mask it predicted, never the ground truth: the memory's own (open loop), or,
//! with the loop closed, the mask a given decoder makes of the memory's score, as the tracker
//! writes the memory by default (`MemoryWrites::Decoder`).

use super::data::{HalfMap, SequenceData};
use crate::engine::DecoderEngine;
use crate::error::Result;
use crate::model::FeatureMap;
use crate::model::tensor::resize_bilinear;
use crate::track::TrackerKind;
use crate::track::keys::MatchingConfig;
use crate::track::tracker::memory::{MemoryConfig, MemoryObject, MemoryWrites, on_grid};
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
        let maps: Vec<Vec<HalfMap>> = (0..seq.references.len())
            .map(|k| propagate(seq, k, memory, span, None))
            .collect::<Result<_>>()
            .unwrap_or_default(); // Infallible without a decoder.
        for (r, m) in seq.references.iter_mut().zip(maps) {
            r.propagated = m;
        }
    });
}

/// As [`propagate_all`] with the loop closed: each frame is written into memory with the mask
/// `decoder` makes of `source`'s score (one sequence after another: the decoder engine runs
/// its own threads).
pub fn propagate_closed(
    seqs: &mut [&mut SequenceData],
    source: &ScoreSource,
    span: usize,
    decoder: &mut dyn DecoderEngine,
) -> Result<()> {
    for seq in seqs.iter_mut() {
        let mut maps = Vec::with_capacity(seq.references.len());
        for k in 0..seq.references.len() {
            maps.push(propagate(
                seq,
                k,
                source.memory,
                span,
                Some((source, &mut *decoder)),
            )?);
        }
        for (r, m) in seq.references.iter_mut().zip(maps) {
            r.propagated = m;
        }
    }
    Ok(())
}

/// The memory's probability on frames `start + 1 ..= start + span` after reference `k` (as far
/// as the sequence goes), on the stride-8 grid whatever grid the keys have (as the tracker
/// gives it). Each frame is written back with the memory's own prediction, or with the
/// decoder's mask when one is given.
fn propagate(
    seq: &SequenceData,
    k: usize,
    config: MemoryConfig,
    span: usize,
    mut decoder: Option<(&ScoreSource, &mut dyn DecoderEngine)>,
) -> Result<Vec<HalfMap>> {
    let start = seq.references[k].frame;
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
    // Open loop: the memory writes its own prediction (`MemoryWrites::Memory`).
    let config = MemoryConfig {
        writes: match decoder {
            Some(_) => MemoryWrites::Decoder,
            None => MemoryWrites::Memory,
        },
        ..config
    };
    let mut object = MemoryObject::start(config, size, &first, &seq.masks[start]);
    let last = (start + span).min(seq.features.len() - 1);
    let mut out = Vec::new();
    for t in start + 1..=last {
        let p = object.propagate(&keys(t));
        let p8 = on_grid(p, h8, w8);
        match decoder.as_mut() {
            Some((source, engine)) => {
                let score = stacked(seq, k, t, p8.clone(), source);
                let hard = decoder_mask(seq, t, &score, &mut **engine)?;
                object.remember(&hard, size);
            }
            None => {
                object.remember(&[], size);
            }
        }
        out.push(HalfMap::from_map(&p8));
    }
    Ok(out)
}

/// The object's mask on frame `t` (full size, 0/1) as the tracker makes it from `score`:
/// the decoder's probability above one half.
fn decoder_mask(
    seq: &SequenceData,
    t: usize,
    score: &FeatureMap,
    decoder: &mut dyn DecoderEngine,
) -> Result<Vec<f32>> {
    let [s32, s16, s8, s4] = seq.features[t].taps.each_ref().map(HalfMap::to_map);
    let state = decoder.deep(&s32, &s16, score)?;
    let logits = decoder.shallow(&state, &s8, &s4, score)?;
    let up = resize_bilinear(
        &logits.data,
        logits.height,
        logits.width,
        seq.height,
        seq.width,
    );
    Ok(up.into_iter().map(|l| f32::from(l > 0.0)).collect())
}

/// The decoder's score for reference `k` on frame `t` given the memory's probability `p8`
/// (stride 8): FRTM's score resized and stacked under it for fusion, `p8` for the memory.
fn stacked(
    seq: &SequenceData,
    k: usize,
    t: usize,
    p8: FeatureMap,
    source: &ScoreSource,
) -> FeatureMap {
    if source.tracker != TrackerKind::Fusion {
        return p8;
    }
    let (h16, w16) = seq.s16;
    let s = &seq.references[k].scores[t];
    let mut data = resize_bilinear(s, h16, w16, p8.height, p8.width);
    data.extend_from_slice(&p8.data);
    FeatureMap::new(2, p8.height, p8.width, data)
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
            HalfMap::from_map(&stacked(seq, reference, t, p, source))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::train::data::{FrameFeatures, Reference};

    /// A decoder that calls every pixel object.
    struct Everything;

    impl DecoderEngine for Everything {
        fn deep(&mut self, _: &FeatureMap, s16: &FeatureMap, _: &FeatureMap) -> Result<FeatureMap> {
            Ok(FeatureMap::new(
                1,
                s16.height,
                s16.width,
                vec![0.0; s16.height * s16.width],
            ))
        }
        fn shallow(
            &mut self,
            _: &FeatureMap,
            _: &FeatureMap,
            s4: &FeatureMap,
            _: &FeatureMap,
        ) -> Result<FeatureMap> {
            Ok(FeatureMap::new(
                1,
                s4.height,
                s4.width,
                vec![10.0; s4.height * s4.width],
            ))
        }
    }

    /// A still 64×32 clip of four frames: distinct stride-8 features per cell, the object
    /// the left half.
    fn still_clip() -> SequenceData {
        let tap = |c: usize, h: usize, w: usize| {
            let data = (0..c * h * w)
                .map(|i| ((i * 7919) % 13) as f32 - 6.0)
                .collect();
            HalfMap::from_map(&FeatureMap::new(c, h, w, data))
        };
        // Stride 8: every cell its own channel, so each matches only itself.
        let one_hot = (0..32 * 32)
            .map(|i| f32::from(u8::from(i / 32 == i % 32)))
            .collect();
        let s8 = HalfMap::from_map(&FeatureMap::new(32, 4, 8, one_hot));
        let features = FrameFeatures {
            taps: [tap(4, 1, 2), tap(4, 2, 4), s8, tap(4, 8, 16)],
        };
        let mask: Vec<u8> = (0..64 * 32).map(|i| u8::from(i % 64 < 32)).collect();
        SequenceData {
            name: "still".into(),
            width: 64,
            height: 32,
            features: vec![features; 4],
            masks: vec![mask; 4],
            references: vec![Reference {
                frame: 0,
                scores: vec![vec![0.0; 8]; 4],
                propagated: Vec::new(),
            }],
            s16: (2, 4),
            keys: Vec::new(),
        }
    }

    fn right_half_mean(m: &HalfMap) -> f32 {
        let p = m.to_map();
        let (h, w) = (p.height, p.width);
        let cells = (0..h).flat_map(|y| (w / 2..w).map(move |x| y * w + x));
        cells.map(|i| p.data[i]).sum::<f32>() / (h * w / 2) as f32
    }

    #[test]
    fn the_closed_loop_writes_the_decoders_masks_into_memory() {
        let source = ScoreSource {
            tracker: TrackerKind::Fusion,
            memory: MemoryConfig {
                write_change: 0.0,
                ..Default::default()
            },
            matching: Default::default(),
        };
        let mut open = still_clip();
        propagate_all(std::slice::from_mut(&mut open), source.memory, 3);
        let mut closed = still_clip();
        propagate_closed(&mut [&mut closed], &source, 3, &mut Everything).unwrap();
        let (open, closed) = (
            &open.references[0].propagated,
            &closed.references[0].propagated,
        );
        assert_eq!((open.len(), closed.len()), (3, 3));
        // Frame 1 reads only the given frame in both.
        assert_eq!(open[0].data, closed[0].data);
        assert!(right_half_mean(&open[0]) < 0.01);
        // From frame 2 the memory holds frame 1 as written: the memory's own mask (the left
        // half) in the open loop, the decoder's (everything) in the closed one.
        assert!(right_half_mean(&open[2]) < 0.01);
        assert!(
            right_half_mean(&closed[2]) > 0.3,
            "{}",
            right_half_mean(&closed[2])
        );
    }
}
