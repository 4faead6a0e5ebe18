//! FRTM's tracker: per object an online target model (projection + 3×3 filter, fitted by
//! Gauss-Newton on the given mask and synthetic views of it, refined on computed frames).

use super::{DeepFeatures, ObjectModel, Tracker, TrackerKind};
use crate::engine::BackboneEngine;
use crate::error::Result;
use crate::io::Frame;
use crate::model::FeatureMap;
use crate::model::backbone::{HighFeatures, LowFeatures, normalize};
use crate::model::online::{
    Sample, TargetConfig, TargetModel, area_downsample, as_matrix, augment, hinge_weights,
};
use ndarray::Array2;

/// The target models' data scale (FRTM's, for stride-16 features).
const DATA_SCALE: f32 = 16.0;

pub struct Frtm {
    config: TargetConfig,
    /// Synthetic first-frame views for the fit.
    augment: usize,
}

impl Frtm {
    pub fn new(config: TargetConfig, augment: usize) -> Frtm {
        Frtm { config, augment }
    }
}

impl Frtm {
    /// An object's target model fitted on its mask.
    pub fn fit(
        &self,
        backbone: &mut dyn BackboneEngine,
        frame: &Frame,
        deep: &DeepFeatures,
        mask: &[u8],
    ) -> Result<FrtmObject> {
        let model = fit_target(
            backbone,
            frame,
            mask,
            &deep.input,
            &self.config,
            self.augment,
        )?;
        Ok(FrtmObject {
            model,
            pending: None,
        })
    }
}

impl Tracker for Frtm {
    fn kind(&self) -> TrackerKind {
        TrackerKind::Frtm
    }

    fn frame_input(&self, _low: &LowFeatures, high: &HighFeatures) -> FeatureMap {
        self.config.input.map(&high.s16, &high.s32)
    }

    fn start(
        &self,
        backbone: &mut dyn BackboneEngine,
        frame: &Frame,
        _low: &LowFeatures,
        deep: &DeepFeatures,
        mask: &[u8],
    ) -> Result<Box<dyn ObjectModel>> {
        Ok(Box::new(self.fit(backbone, frame, deep, mask)?))
    }

    fn score_macs(&self, (cin, h, w): (usize, usize, usize), _keys: (usize, usize, usize)) -> u64 {
        let c = self.config.channels;
        (h * w * (cin * c + c * 9)) as u64
    }
}

/// One object's target model and the projected features of its last scored frame.
pub struct FrtmObject {
    model: TargetModel,
    /// Projected features and their size, kept from `score` for `learn`.
    pending: Option<(Array2<f32>, (usize, usize))>,
}

impl ObjectModel for FrtmObject {
    fn score(
        &mut self,
        _low: &LowFeatures,
        deep: &DeepFeatures,
        _prior: Option<super::Prior>,
    ) -> FeatureMap {
        let input = &deep.input;
        let z = self.model.project(input);
        let score = self.model.score_projected(&z, input.height, input.width);
        self.pending = Some((z, (input.height, input.width)));
        score
    }

    fn learn(&mut self, soft: &[f32], (w, h): (usize, usize), area: usize) -> bool {
        let Some((z, (sh, sw))) = self.pending.take() else {
            return false;
        };
        if !self.model.config().updates() {
            // Never refined: the samples would only take memory.
            return false;
        }
        let label = area_downsample(soft, w, h, sw, sh);
        self.model
            .update(z, label, (sh, sw), area, w * h, DATA_SCALE)
    }

    fn memory_bytes(&self) -> usize {
        self.model.memory_bytes()
    }
}

/// Fits an object's target model on a frame (`input`: its target-model input features) and its
/// binary mask, with `augment` synthetic views whose features come from `backbone`. Training
/// fits its reference models with this same function, so scores look alike in both.
pub fn fit_target(
    backbone: &mut dyn BackboneEngine,
    frame: &Frame,
    mask: &[u8],
    input: &FeatureMap,
    cfg: &TargetConfig,
    augment: usize,
) -> Result<TargetModel> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let mut samples = Vec::new();
    for (i, v) in augment::views(frame, mask, augment).into_iter().enumerate() {
        let f16 = if i == 0 {
            input.clone()
        } else {
            let p = backbone.pyramid(&normalize(&v.frame))?;
            cfg.input.map(&p.s16, &p.s32)
        };
        let full: Vec<f32> = v.mask.iter().map(|&m| f32::from(m > 0)).collect();
        let label = area_downsample(&full, w, h, f16.width, f16.height);
        let area = v.mask.iter().filter(|&&m| m > 0).count();
        let binary: Vec<f32> = label
            .iter()
            .map(|&l| if l > 0.5 { 1.0 } else { 0.0 })
            .collect();
        samples.push(Sample {
            features: as_matrix(&f16).to_owned(),
            weight: hinge_weights(&binary, area as f32 / (w * h) as f32, cfg.hinge),
            label,
            height: f16.height,
            width: f16.width,
        });
    }
    Ok(TargetModel::init(&samples, cfg, DATA_SCALE).0)
}
