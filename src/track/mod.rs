//! The streaming tracker: a session a program drives frame by frame. Masks can be given on any
//! frame (new objects start, existing ones restart from the given mask); every pushed frame
//! returns the merged label map, each object's probability and the time of each stage.

pub mod merge;
pub mod video;

use crate::engine::{self, BackboneEngine, DecoderEngine, EngineKind};
use crate::error::{Error, Result};
use crate::io::{Frame, Mask};
use crate::model::backbone::{BackboneSpec, Pyramid, normalize};
use crate::model::decoder::{Decoder, DecoderConfig};
use crate::model::target::{
    Sample, TargetConfig, TargetModel, area_downsample, as_matrix, augment, hinge_weights,
};
use crate::model::tensor::resize_bilinear;
use crate::model::{FeatureMap, Weights};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// The trained decoder embedded in the binary (see `weights/MANIFEST.md`).
static DECODER_SAFETENSORS: &[u8] = include_bytes!("../../weights/decoder.safetensors");
/// Its channels at strides 32, 16, 8, 4.
pub const DECODER_CHANNELS: [usize; 4] = [32, 32, 32, 16];

/// The networks a session runs: the backbone and the trained decoder.
#[derive(Clone, Debug)]
pub struct Model {
    pub backbone: BackboneSpec,
    pub decoder: Decoder,
    pub feature_channels: [usize; 4],
}

impl Model {
    /// The embedded backbone and decoder.
    pub fn embedded() -> Result<Model> {
        Self::from_parts(
            BackboneSpec::embedded()?,
            DECODER_SAFETENSORS,
            "embedded decoder.safetensors",
        )
    }

    /// A backbone and decoder weights (safetensors bytes).
    pub fn from_parts(backbone: BackboneSpec, decoder: &[u8], origin: &str) -> Result<Model> {
        if decoder.is_empty() {
            return Err(Error::Format {
                path: origin.into(),
                reason: "no trained decoder weights (train one with `reuse-vos train`, pass it with --decoder)".into(),
            });
        }
        let dev = engine::burn::device();
        let channels = decoder_channels(decoder).unwrap_or(DECODER_CHANNELS);
        let decoder = crate::train::load_decoder(decoder, channels, &dev, origin)?;
        Ok(Model {
            backbone,
            decoder,
            feature_channels: DecoderConfig::new().feature_channels,
        })
    }

    /// A backbone and a decoder read from a file: safetensors (shipped weights) or a training
    /// checkpoint (`checkpoint-model.bpk`).
    pub fn from_decoder_file(backbone: BackboneSpec, path: &std::path::Path) -> Result<Model> {
        if path.extension().is_some_and(|e| e == "bpk") {
            use burn::module::Module;
            let dev = engine::burn::device();
            let decoder = DecoderConfig::new()
                .with_channels(DECODER_CHANNELS)
                .init(&dev)
                .try_load_file(path)
                .map_err(|e| Error::format(path, format!("not a decoder checkpoint: {e}")))?;
            return Ok(Model {
                backbone,
                decoder,
                feature_channels: DecoderConfig::new().feature_channels,
            });
        }
        let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
        Self::from_parts(backbone, &bytes, &path.display().to_string())
    }

    /// With backbone weights from a safetensors file instead of the embedded ones.
    pub fn with_backbone_weights(mut self, path: &std::path::Path) -> Result<Model> {
        self.backbone = BackboneSpec::from_weights(&Weights::load(path)?)?;
        Ok(self)
    }
}

/// The channels of decoder weights, read from their level shapes (None if not decoder weights).
pub fn decoder_channels(bytes: &[u8]) -> Option<[usize; 4]> {
    let st = safetensors::SafeTensors::deserialize(bytes).ok()?;
    let mut out = [0usize; 4];
    for (i, c) in out.iter_mut().enumerate() {
        *c = *st
            .tensor(&format!("levels.{i}.rrb.inner.weight"))
            .ok()?
            .shape()
            .first()?;
    }
    Some(out)
}

/// Session settings.
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    pub target: TargetConfig,
    /// Synthetic first-frame views for the target model.
    pub augment: usize,
    pub engine: Option<EngineKind>,
    pub threads: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            target: TargetConfig::default(),
            augment: 4,
            engine: None,
            threads: 2,
        }
    }
}

/// Milliseconds spent in each stage of one frame.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StageTimes {
    pub decode_ms: f64,
    pub backbone_ms: f64,
    /// Fitting target models on given masks (augmentation included).
    pub init_ms: f64,
    pub target_ms: f64,
    pub decoder_ms: f64,
    pub merge_ms: f64,
    pub update_ms: f64,
    pub total_ms: f64,
}

/// One object's state between frames.
pub struct ObjectState {
    pub id: u8,
    target: TargetModel,
    /// Frames since the object was (re)initialised.
    pub frames: usize,
}

/// What happened to one object on one frame.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectFrame {
    pub id: u8,
    pub area: usize,
    /// The object's mask was given on this frame (first frame or a correction).
    pub given: bool,
    /// The target model's filter was refined after this frame.
    pub refined: bool,
}

/// The result of one frame.
pub struct FrameOutput {
    pub index: usize,
    pub mask: Mask,
    /// Per object (id order): its probability map, full resolution (given masks: 0/1).
    pub probabilities: Vec<(u8, Vec<f32>)>,
    pub objects: Vec<ObjectFrame>,
    pub times: StageTimes,
}

/// A tracking session over one video.
pub struct Session {
    backbone: Box<dyn BackboneEngine>,
    decoder: Box<dyn DecoderEngine>,
    kind: EngineKind,
    config: TrackerConfig,
    objects: Vec<ObjectState>,
    masks: BTreeMap<usize, Mask>,
    next: usize,
    size: Option<(u32, u32)>,
}

impl Session {
    pub fn new(model: &Model, config: TrackerConfig) -> Result<Session> {
        let kind = engine::resolve(config.engine)?;
        Ok(Session {
            backbone: engine::backbone(&model.backbone, Some(kind), config.threads)?,
            decoder: engine::decoder(&model.decoder, model.feature_channels, kind, config.threads)?,
            kind,
            config,
            objects: Vec::new(),
            masks: BTreeMap::new(),
            next: 0,
            size: None,
        })
    }

    pub fn engine(&self) -> EngineKind {
        self.kind
    }

    /// Gives the mask of frame `frame` (this frame index or a later one). Its objects that are
    /// new start there; those that exist restart from it. Void (255) counts as background.
    pub fn add_mask(&mut self, frame: usize, mask: Mask) -> Result<()> {
        if frame < self.next {
            return Err(Error::Invalid(format!(
                "a mask for frame {frame} arrived after that frame was processed"
            )));
        }
        if mask.object_ids().is_empty() {
            return Err(Error::Invalid(format!(
                "the mask for frame {frame} holds no object"
            )));
        }
        self.masks.insert(frame, mask);
        Ok(())
    }

    /// Object ids being tracked.
    pub fn object_ids(&self) -> Vec<u8> {
        self.objects.iter().map(|o| o.id).collect()
    }

    /// Runs the decoder for one object: probability at full resolution.
    fn predict(&mut self, p: &Pyramid, score: &FeatureMap, w: usize, h: usize) -> Result<Vec<f32>> {
        let state = self.decoder.deep(&p.s32, &p.s16, score)?;
        let logits = self.decoder.shallow(&state, &p.s8, &p.s4, score)?;
        let up = resize_bilinear(&logits.data, logits.height, logits.width, h, w);
        Ok(up.into_iter().map(|l| 1.0 / (1.0 + (-l).exp())).collect())
    }

    /// Tracks one frame.
    pub fn push(&mut self, frame: &Frame) -> Result<FrameOutput> {
        let start = Instant::now();
        let index = self.next;
        let (w, h) = (frame.width as usize, frame.height as usize);
        match self.size {
            None => self.size = Some((frame.width, frame.height)),
            Some(s) if s != (frame.width, frame.height) => {
                return Err(Error::Invalid(format!(
                    "frame {index} is {}x{}, earlier frames are {}x{}",
                    frame.width, frame.height, s.0, s.1
                )));
            }
            _ => {}
        }
        let given = self.masks.remove(&index);
        if self.objects.is_empty() && given.is_none() {
            return Err(Error::Invalid(format!(
                "frame {index}: no object to track yet (give a mask first)"
            )));
        }
        let mut times = StageTimes::default();
        let t = Instant::now();
        let pyramid = self.backbone.pyramid(&normalize(frame))?;
        times.backbone_ms = ms(t);
        let t = Instant::now();
        let target_input = self.config.target.input.map(&pyramid.s16, &pyramid.s32);
        times.target_ms += ms(t);

        let mut given_ids = Vec::new();
        if let Some(mask) = &given {
            mask.check_size(
                frame.width,
                frame.height,
                std::path::Path::new(&format!("mask of frame {index}")),
            )?;
            let t = Instant::now();
            for id in mask.object_ids() {
                let binary: Vec<u8> = mask.ids.iter().map(|&v| u8::from(v == id)).collect();
                let target = fit_target(
                    self.backbone.as_mut(),
                    frame,
                    &binary,
                    &target_input,
                    &self.config.target,
                    self.config.augment,
                )?;
                match self.objects.iter_mut().find(|o| o.id == id) {
                    Some(o) => {
                        o.target = target;
                        o.frames = 0;
                    }
                    None => self.objects.push(ObjectState {
                        id,
                        target,
                        frames: 0,
                    }),
                }
                given_ids.push(id);
            }
            self.objects.sort_by_key(|o| o.id);
            times.init_ms = ms(t);
        }

        let mut probs = Vec::with_capacity(self.objects.len());
        // Each object's projected s16 features, kept for its target-model update below.
        let mut projected = vec![None; self.objects.len()];
        let (sh, sw) = (pyramid.s16.height, pyramid.s16.width);
        for (k, slot) in projected.iter_mut().enumerate() {
            let id = self.objects[k].id;
            if let (Some(mask), true) = (&given, given_ids.contains(&id)) {
                probs.push(mask.ids.iter().map(|&v| f32::from(v == id)).collect());
                continue;
            }
            let t = Instant::now();
            let z = self.objects[k].target.project(&target_input);
            let score = self.objects[k].target.score_projected(&z, sh, sw);
            *slot = Some(z);
            times.target_ms += ms(t);
            let t = Instant::now();
            probs.push(self.predict(&pyramid, &score, w, h)?);
            times.decoder_ms += ms(t);
        }
        let t = Instant::now();
        let ids = self.object_ids();
        let (labels, soft) = merge::merge(&ids, &probs, w * h);
        times.merge_ms = ms(t);

        let t = Instant::now();
        let mut objects = Vec::with_capacity(ids.len());
        for (k, o) in self.objects.iter_mut().enumerate() {
            let area = labels.iter().filter(|&&l| l == o.id).count();
            let is_given = given_ids.contains(&o.id);
            let mut refined = false;
            if let (false, Some(z)) = (is_given, projected[k].take()) {
                o.frames += 1;
                let label = area_downsample(&soft[k], w, h, sw, sh);
                refined = o.target.update(z, label, (sh, sw), area, w * h, 16.0);
            }
            objects.push(ObjectFrame {
                id: o.id,
                area,
                given: is_given,
                refined,
            });
        }
        times.update_ms = ms(t);
        times.total_ms = ms(start);
        self.next += 1;
        Ok(FrameOutput {
            index,
            mask: Mask {
                width: frame.width,
                height: frame.height,
                ids: labels,
            },
            probabilities: ids.into_iter().zip(probs).collect(),
            objects,
            times,
        })
    }
}

/// Fits an object's target model on a frame (`input`: its target-model input features) and its binary
/// mask, with `augment` synthetic views whose features come from `backbone`. Training fits
/// its reference models with this same function, so scores look alike in both.
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
    Ok(TargetModel::init(&samples, cfg, 16.0).0)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
