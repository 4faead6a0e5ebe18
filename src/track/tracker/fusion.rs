//! The fusion tracker: per object FRTM's target model and the memory, both scoring every
//! computed frame; the decoder reads their fused score. Matching is precise where the object
//! looks like what memory holds and fails on fast motion out of its window; the target model
//! is coarse but holds on to appearance anywhere in the frame.

use super::frtm::{Frtm, FrtmObject};
use super::memory::{MemoryConfig, MemoryObject};
use super::{DeepFeatures, ObjectModel, Prior, Tracker, TrackerKind};
use crate::engine::BackboneEngine;
use crate::error::Result;
use crate::io::Frame;
use crate::model::FeatureMap;
use crate::model::backbone::{HighFeatures, LowFeatures};
use crate::model::tensor::resize_bilinear;
use serde::{Deserialize, Serialize};

/// How the two scores are combined (at stride 8).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct FusionConfig {
    /// Give the decoder both scores as two channels (a decoder trained on them fuses); else
    /// one channel, w · P_memory + (1 − w) · S_target.
    pub stacked: bool,
    /// The memory's weight in the one-channel fusion.
    pub memory_weight: f32,
}

impl Default for FusionConfig {
    fn default() -> Self {
        FusionConfig {
            stacked: false,
            memory_weight: 0.5,
        }
    }
}

pub struct Fusion {
    frtm: Frtm,
    memory: MemoryConfig,
    config: FusionConfig,
}

impl Fusion {
    pub fn new(frtm: Frtm, memory: MemoryConfig, config: FusionConfig) -> Fusion {
        Fusion {
            frtm,
            memory,
            config,
        }
    }
}

impl Tracker for Fusion {
    fn kind(&self) -> TrackerKind {
        TrackerKind::Fusion
    }

    fn frame_input(&self, low: &LowFeatures, high: &HighFeatures) -> FeatureMap {
        self.frtm.frame_input(low, high)
    }

    fn start(
        &self,
        backbone: &mut dyn BackboneEngine,
        frame: &Frame,
        low: &LowFeatures,
        deep: &DeepFeatures,
        mask: &[u8],
    ) -> Result<Box<dyn ObjectModel>> {
        let target = self.frtm.fit(backbone, frame, deep, mask)?;
        Ok(Box::new(FusionObject {
            target,
            memory: MemoryObject::start(
                self.memory,
                (frame.width as usize, frame.height as usize),
                deep.match_keys(low),
                mask,
            ),
            config: self.config,
        }))
    }

    fn score_channels(&self) -> usize {
        if self.config.stacked { 2 } else { 1 }
    }

    fn score_macs(&self, input: (usize, usize, usize), keys: (usize, usize, usize)) -> u64 {
        let memory = super::memory::Memory::new(self.memory).score_macs(keys, keys);
        self.frtm.score_macs(input, keys) + memory
    }
}

struct FusionObject {
    target: FrtmObject,
    memory: MemoryObject,
    config: FusionConfig,
}

impl ObjectModel for FusionObject {
    fn score(
        &mut self,
        low: &LowFeatures,
        deep: &DeepFeatures,
        prior: Option<Prior>,
    ) -> FeatureMap {
        let s = self.target.score(low, deep, None);
        let (h, w) = (low.s8.height, low.s8.width);
        // The memory's own score: its probability (or stale reading) at stride 8.
        let p = self.memory.score(low, deep, prior);
        let s8 = resize_bilinear(&s.data, s.height, s.width, h, w);
        if self.config.stacked {
            // As training stacks them (`jobs::train::propagate::score_map`).
            let mut data = s8;
            data.extend_from_slice(&p.data);
            return FeatureMap::new(2, p.height, p.width, data);
        }
        let w = self.config.memory_weight;
        let fused = p.data.iter().zip(&s8).map(|(p, s)| w * p + (1.0 - w) * s);
        FeatureMap::new(1, p.height, p.width, fused.collect())
    }

    fn learn(&mut self, soft: &[f32], size: (usize, usize), area: usize) -> bool {
        let wrote = self.memory.remember(soft, size);
        self.target.learn(soft, size, area) || wrote
    }

    fn skipped(&mut self) {
        self.memory.skipped();
    }

    fn memory_bytes(&self) -> usize {
        self.target.memory_bytes() + self.memory.bytes()
    }
}
