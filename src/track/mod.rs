//! The streaming tracker: a session a program drives frame by frame. Masks can be given on any
//! frame (new objects start, existing ones restart from the given mask); every pushed frame
//! returns the merged label map, each object's probability and the time of each stage.

pub mod batch;
pub mod flops;
pub mod gate;
pub mod merge;
pub mod video;

use crate::engine::{self, BackboneEngine, DecoderEngine, EngineKind, ReuseEngine};
use crate::error::{Error, Result};
use crate::io::{Frame, Mask};
use crate::model::backbone::{BackboneSpec, HighFeatures, normalize};
use crate::model::decoder::{Decoder, DecoderConfig};
use crate::model::reuse::{ReuseConfig, ReuseNet};
use crate::model::target::{
    Sample, TargetConfig, TargetModel, area_downsample, as_matrix, augment, hinge_weights,
};
use crate::model::tensor::resize_bilinear;
use crate::model::{FeatureMap, Weights};
use flops::StageMacs;
use gate::{GateDecision, GatePolicy, GateSettings, Path};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// The trained decoder embedded in the binary (see `weights/MANIFEST.md`).
static DECODER_SAFETENSORS: &[u8] = include_bytes!("../../weights/decoder.safetensors");
/// The trained reuse path (see `weights/MANIFEST.md`); empty until one is trained.
static REUSE_SAFETENSORS: &[u8] = include_bytes!("../../weights/reuse.safetensors");
/// Its channels at strides 32, 16, 8, 4.
pub const DECODER_CHANNELS: [usize; 4] = [32, 32, 32, 16];

/// The networks a session runs: the backbone, the trained decoder and reuse path.
#[derive(Clone, Debug)]
pub struct Model {
    pub backbone: BackboneSpec,
    pub decoder: Decoder,
    pub feature_channels: [usize; 4],
    /// None: only the full path (`--gate never`).
    pub reuse: Option<ReuseNet>,
}

/// Loads reuse-path weights (safetensors bytes).
pub fn load_reuse(bytes: &[u8], origin: &str) -> Result<ReuseNet> {
    use burn::store::{ModuleSnapshot, SafetensorsStore};
    let mut net = ReuseConfig::new().init(&engine::burn::device());
    let mut store = SafetensorsStore::from_bytes(Some(bytes.to_vec()));
    net.load_from(&mut store).map_err(|e| Error::Format {
        path: origin.into(),
        reason: format!("not reuse-path weights: {e}"),
    })?;
    Ok(net)
}

impl Model {
    /// The embedded backbone, decoder and (once trained) reuse path.
    pub fn embedded() -> Result<Model> {
        let model = Self::from_parts(
            BackboneSpec::embedded()?,
            DECODER_SAFETENSORS,
            "embedded decoder.safetensors",
        )?;
        if REUSE_SAFETENSORS.is_empty() {
            return Ok(model);
        }
        model.with_reuse_bytes(REUSE_SAFETENSORS, "embedded reuse.safetensors")
    }

    /// With reuse-path weights from safetensors bytes.
    pub fn with_reuse_bytes(mut self, bytes: &[u8], origin: &str) -> Result<Model> {
        self.reuse = Some(load_reuse(bytes, origin)?);
        Ok(self)
    }

    /// With reuse-path weights from a safetensors file.
    pub fn with_reuse_file(self, path: &std::path::Path) -> Result<Model> {
        let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
        self.with_reuse_bytes(&bytes, &path.display().to_string())
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
            reuse: None,
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
                reuse: None,
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
    /// When a frame reuses the last computed one.
    pub gate: GateSettings,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            target: TargetConfig::default(),
            augment: 4,
            engine: None,
            threads: 2,
            gate: GateSettings::default(),
        }
    }
}

/// Milliseconds spent in each stage of one frame.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct StageTimes {
    /// Reading the frame (image decoding, or ffmpeg's pipe) and resizing it.
    pub decode_ms: f64,
    /// Writing the frame's outputs (masks, mattes, overlay frame).
    #[serde(default)]
    pub output_ms: f64,
    pub backbone_ms: f64,
    /// Fitting target models on given masks (augmentation included).
    pub init_ms: f64,
    pub target_ms: f64,
    /// Template matching, gate, Δ and refine-translator of all objects.
    pub gate_ms: f64,
    pub decoder_ms: f64,
    pub merge_ms: f64,
    pub update_ms: f64,
    pub total_ms: f64,
}

/// What an object keeps of its last computed frame, for the reuse path.
struct ReuseMemory {
    /// K×K, from the frame where the object's mask was given.
    template: Vec<f32>,
    /// The target model's raw score (stride 16).
    score: FeatureMap,
    /// The decoder state after the deep stages (stride 16).
    state: FeatureMap,
    /// The backbone's stride-8 features.
    s8: FeatureMap,
    /// The ground truth of that frame (oracle policy only).
    truth: Option<Vec<bool>>,
}

/// One object's state between frames.
pub struct ObjectState {
    pub id: u8,
    target: TargetModel,
    /// Computed frames since the object was (re)initialised.
    pub frames: usize,
    memory: Option<ReuseMemory>,
    /// The object's probability on the previous frame (what `copy` reuses; kept only by
    /// policies that copy).
    previous: Vec<f32>,
}

/// What happened to one object on one frame.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ObjectFrame {
    pub id: u8,
    pub area: usize,
    /// The object's mask was given on this frame (first frame or a correction).
    pub given: bool,
    /// The target model's filter was refined after this frame.
    pub refined: bool,
    pub decision: GateDecision,
    /// Time of this object's path (gate included), milliseconds.
    pub path_ms: f64,
}

/// The result of one frame.
pub struct FrameOutput {
    pub index: usize,
    pub mask: Mask,
    /// Per object (id order): its probability map, full resolution (given masks: 0/1).
    pub probabilities: Vec<(u8, Vec<f32>)>,
    pub objects: Vec<ObjectFrame>,
    pub times: StageTimes,
    /// Multiply-accumulates of the paths taken (analytic, see `flops`).
    pub macs: u64,
}

/// A tracking session over one video.
pub struct Session {
    backbone: Box<dyn BackboneEngine>,
    decoder: Box<dyn DecoderEngine>,
    reuse: Option<Box<dyn ReuseEngine>>,
    kind: EngineKind,
    config: TrackerConfig,
    model: Model,
    objects: Vec<ObjectState>,
    masks: BTreeMap<usize, Mask>,
    truths: BTreeMap<usize, Mask>,
    next: usize,
    size: Option<(u32, u32)>,
    macs: Option<StageMacs>,
}

impl Session {
    pub fn new(model: &Model, config: TrackerConfig) -> Result<Session> {
        let kind = engine::resolve(config.engine)?;
        let reuse = match (&model.reuse, config.gate.policy) {
            (_, GatePolicy::Never) => None,
            (_, _) if !config.gate.can_reuse() => None,
            (Some(net), _) => Some(engine::reuse(
                net,
                model.feature_channels[2],
                kind,
                config.threads,
            )?),
            (None, policy) => {
                return Err(Error::Invalid(format!(
                    "--gate {policy} needs reuse-path weights, and this model has none (train them with `reuse-vos train --stage gate`, pass them with --reuse)"
                )));
            }
        };
        Ok(Session {
            backbone: engine::backbone(&model.backbone, Some(kind), config.threads)?,
            decoder: engine::decoder(&model.decoder, model.feature_channels, kind, config.threads)?,
            reuse,
            kind,
            config,
            model: model.clone(),
            objects: Vec::new(),
            masks: BTreeMap::new(),
            truths: BTreeMap::new(),
            next: 0,
            size: None,
            macs: None,
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

    /// Gives the ground truth of frame `frame`, which the `oracle` policy compares with the
    /// object's last computed frame. Not used by any other policy.
    pub fn add_truth(&mut self, frame: usize, mask: Mask) {
        self.truths.insert(frame, mask);
    }

    /// The index the next pushed frame gets (masks for it go to `add_mask` with this index).
    pub fn next_index(&self) -> usize {
        self.next
    }

    /// Object ids being tracked.
    pub fn object_ids(&self) -> Vec<u8> {
        self.objects.iter().map(|o| o.id).collect()
    }

    /// Tracks one frame.
    pub fn push(&mut self, frame: &Frame) -> Result<FrameOutput> {
        let start = Instant::now();
        let index = self.next;
        let (w, h) = (frame.width as usize, frame.height as usize);
        match self.size {
            None if w < 32 || h < 32 => {
                return Err(Error::Invalid(format!(
                    "frame {index} is {w}x{h}: frames must be at least 32x32 pixels"
                )));
            }
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
        let truth = self.truths.remove(&index);
        if self.objects.is_empty() && given.is_none() {
            return Err(Error::Invalid(format!(
                "frame {index}: no object to track yet (give a mask first)"
            )));
        }
        if let Some(mask) = &given {
            mask.check_size(
                frame.width,
                frame.height,
                std::path::Path::new(&format!("mask of frame {index}")),
            )?;
        }
        let oracle = self.config.gate.policy == GatePolicy::Oracle && self.reuse.is_some();
        if oracle && truth.is_none() {
            return Err(Error::Invalid(format!(
                "--gate oracle needs the ground truth of every frame; frame {index} has none"
            )));
        }
        let mut times = StageTimes::default();
        let t = Instant::now();
        let low = self.backbone.low(&normalize(frame))?;
        times.backbone_ms = ms(t);
        let given_ids = given.as_ref().map(|m| m.object_ids()).unwrap_or_default();

        // Objects whose mask is given (re)start first; they need the deep stages.
        let mut deep = None;
        if given.is_some() {
            deep = Some(self.deep_features(&low.s8, &mut times)?);
        }
        if let (Some(mask), Some((hf, x))) = (&given, &deep) {
            let t = Instant::now();
            for &id in &given_ids {
                let binary: Vec<u8> = mask.ids.iter().map(|&v| u8::from(v == id)).collect();
                let target = fit_target(
                    self.backbone.as_mut(),
                    frame,
                    &binary,
                    x,
                    &self.config.target,
                    self.config.augment,
                )?;
                let memory = match self.reuse.as_mut() {
                    Some(reuse) => {
                        let full: Vec<f32> = binary.iter().map(|&b| f32::from(b)).collect();
                        let (h8, w8) = (low.s8.height, low.s8.width);
                        let mask8 =
                            FeatureMap::new(1, h8, w8, area_downsample(&full, w, h, w8, h8));
                        let template = reuse.template(&low.s8, &mask8)?;
                        let score = target.score(x);
                        let state = self.decoder.deep(&hf.s32, &hf.s16, &score)?;
                        Some(ReuseMemory {
                            template,
                            score,
                            state,
                            s8: low.s8.clone(),
                            truth: oracle.then(|| binary.iter().map(|&b| b > 0).collect()),
                        })
                    }
                    None => None,
                };
                let previous = binary.iter().map(|&b| f32::from(b)).collect();
                match self.objects.iter_mut().find(|o| o.id == id) {
                    Some(o) => {
                        o.target = target;
                        o.frames = 0;
                        o.memory = memory;
                        o.previous = previous;
                    }
                    None => self.objects.push(ObjectState {
                        id,
                        target,
                        frames: 0,
                        memory,
                        previous,
                    }),
                }
            }
            self.objects.sort_by_key(|o| o.id);
            times.init_ms = ms(t);
        }

        // Decisions: the deep backbone stages run once, only if some object needs them.
        let t = Instant::now();
        let mut decisions = Vec::with_capacity(self.objects.len());
        let mut deltas = Vec::with_capacity(self.objects.len());
        let mut path_ms = vec![0.0; self.objects.len()];
        for (k, o) in self.objects.iter().enumerate() {
            let tk = Instant::now();
            if given_ids.contains(&o.id) {
                decisions.push(GateDecision {
                    p_reuse: None,
                    oracle_iou: None,
                    path: Path::Given,
                });
                deltas.push(None);
                continue;
            }
            let (mut p_reuse, mut delta, mut oracle_iou) = (None, None, None);
            if let (Some(reuse), Some(mem)) = (self.reuse.as_mut(), &o.memory) {
                let s = &mem.score;
                let (h8, w8) = (low.s8.height, low.s8.width);
                let score8 = FeatureMap::new(
                    1,
                    h8,
                    w8,
                    resize_bilinear(&s.data, s.height, s.width, h8, w8),
                );
                let (logit, d) = reuse.gate(&low.s8, &mem.s8, &score8, &mem.template)?;
                p_reuse = Some(1.0 / (1.0 + (-logit).exp()));
                delta = Some(d);
                if let (Some(gt), Some(last)) = (&truth, &mem.truth) {
                    let now: Vec<bool> = gt.ids.iter().map(|&v| v == o.id).collect();
                    oracle_iou = Some(gate::iou(&now, last));
                }
            }
            let path = self.config.gate.decide(p_reuse, oracle_iou);
            decisions.push(GateDecision {
                p_reuse,
                oracle_iou,
                path,
            });
            deltas.push(delta);
            path_ms[k] += ms(tk);
        }
        times.gate_ms += ms(t);

        if deep.is_none() && decisions.iter().any(|d| d.path == Path::Computed) {
            deep = Some(self.deep_features(&low.s8, &mut times)?);
        }
        let (high, target_input) = match deep {
            Some((h, x)) => (Some(h), Some(x)),
            None => (None, None),
        };

        let size = (low.s8.height, low.s8.width);
        if self.macs.is_none() {
            let (s16, s32) = match &high {
                Some(hf) => ((hf.s16.height, hf.s16.width), (hf.s32.height, hf.s32.width)),
                None => deep_sizes(size),
            };
            self.macs = Some(StageMacs::new(
                &self.model.backbone,
                &self.model.decoder,
                self.model.reuse.as_ref().filter(|_| self.reuse.is_some()),
                (
                    target_input.as_ref().map_or(0, |x| x.channels),
                    self.config.target.channels,
                ),
                (h, w),
                [(low.s4.height, low.s4.width), size, s16, s32],
            ));
        }
        let stage = self.macs.unwrap_or_default();
        let mut macs = stage.backbone_low
            + if high.is_some() {
                stage.backbone_high
            } else {
                0
            };

        let mut probs = Vec::with_capacity(self.objects.len());
        // Each computed object's projected features, kept for its target-model update below.
        let mut projected = vec![None; self.objects.len()];
        for k in 0..self.objects.len() {
            let id = self.objects[k].id;
            let tk = Instant::now();
            let decision = decisions[k];
            if decision.p_reuse.is_some() {
                macs += stage.gate;
            }
            match decision.path {
                Path::Given => {
                    let mask = given.as_ref().expect("given objects have a mask");
                    probs.push(mask.ids.iter().map(|&v| f32::from(v == id)).collect());
                }
                Path::Copied => probs.push(std::mem::take(&mut self.objects[k].previous)),
                Path::Computed => {
                    let (hf, x) = match (&high, &target_input) {
                        (Some(hf), Some(x)) => (hf, x),
                        _ => unreachable!("the deep stages run when an object is computed"),
                    };
                    let t = Instant::now();
                    let o = &mut self.objects[k];
                    let z = o.target.project(x);
                    let score = o.target.score_projected(&z, x.height, x.width);
                    projected[k] = Some(z);
                    times.target_ms += ms(t);
                    let t = Instant::now();
                    let state = self.decoder.deep(&hf.s32, &hf.s16, &score)?;
                    let logits = self.decoder.shallow(&state, &low.s8, &low.s4, &score)?;
                    probs.push(to_probability(&logits, w, h));
                    times.decoder_ms += ms(t);
                    macs += stage.target + stage.decoder_deep + stage.decoder_shallow;
                    if let Some(mem) = &mut self.objects[k].memory {
                        mem.score = score;
                        mem.state = state;
                        mem.s8 = low.s8.clone();
                        if let Some(gt) = &truth {
                            mem.truth = Some(gt.ids.iter().map(|&v| v == id).collect());
                        }
                    }
                }
                Path::Reused => {
                    let (reuse, mem, delta) =
                        match (self.reuse.as_mut(), &self.objects[k].memory, &deltas[k]) {
                            (Some(r), Some(m), Some(d)) => (r, m, d),
                            _ => unreachable!("reuse is decided only with a memory and a Δ"),
                        };
                    let mode = self.config.gate.mode;
                    let t = Instant::now();
                    let translated = if mode.translates() {
                        Some(reuse.translate(&mem.state, delta)?)
                    } else {
                        None
                    };
                    times.gate_ms += ms(t);
                    let moved = mode.adds_delta().then(|| {
                        FeatureMap::new(
                            1,
                            mem.score.height,
                            mem.score.width,
                            mem.score
                                .data
                                .iter()
                                .zip(&delta.data)
                                .map(|(a, b)| a + b)
                                .collect(),
                        )
                    });
                    let state = translated.as_ref().unwrap_or(&mem.state);
                    let score = moved.as_ref().unwrap_or(&mem.score);
                    let t = Instant::now();
                    let logits = self.decoder.shallow(state, &low.s8, &low.s4, score)?;
                    probs.push(to_probability(&logits, w, h));
                    times.decoder_ms += ms(t);
                    if mode.translates() {
                        macs += stage.translate;
                    }
                    macs += stage.decoder_shallow;
                }
            }
            path_ms[k] += ms(tk);
        }
        let t = Instant::now();
        let ids = self.object_ids();
        let (labels, soft) = merge::merge(&ids, &probs, w * h);
        times.merge_ms = ms(t);

        let t = Instant::now();
        let (sh, sw) = target_input
            .as_ref()
            .map_or((0, 0), |x| (x.height, x.width));
        // Only a policy that copies needs last frame's probabilities (a full-resolution map).
        let keep_previous = self.config.gate.copies();
        let mut objects = Vec::with_capacity(ids.len());
        for (k, o) in self.objects.iter_mut().enumerate() {
            let area = labels.iter().filter(|&&l| l == o.id).count();
            let mut refined = false;
            // Only computed frames teach the target model (reused ones are its own echo).
            if let Some(z) = projected[k].take() {
                o.frames += 1;
                let label = area_downsample(&soft[k], w, h, sw, sh);
                refined = o.target.update(z, label, (sh, sw), area, w * h, 16.0);
            }
            if keep_previous {
                o.previous = probs[k].clone();
            }
            objects.push(ObjectFrame {
                id: o.id,
                area,
                given: decisions[k].path == Path::Given,
                refined,
                decision: decisions[k],
                path_ms: path_ms[k],
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
            macs,
        })
    }
}

impl Session {
    /// The deep backbone stages from the stride-8 tap, and the target models' input from them.
    fn deep_features(
        &mut self,
        s8: &FeatureMap,
        times: &mut StageTimes,
    ) -> Result<(HighFeatures, FeatureMap)> {
        let t = Instant::now();
        let high = self.backbone.high(s8)?;
        times.backbone_ms += ms(t);
        let t = Instant::now();
        let x = self.config.target.input.map(&high.s16, &high.s32);
        times.target_ms += ms(t);
        Ok((high, x))
    }
}

/// Stride-4 logits → probabilities at the image size.
fn to_probability(logits: &FeatureMap, w: usize, h: usize) -> Vec<f32> {
    let up = resize_bilinear(&logits.data, logits.height, logits.width, h, w);
    up.into_iter().map(|l| 1.0 / (1.0 + (-l).exp())).collect()
}

/// s16 and s32 sizes from s8 (each level halves, rounding up). Only needed if the first frame
/// skipped the deep stages, which it cannot (it has a mask).
fn deep_sizes((h8, w8): (usize, usize)) -> ((usize, usize), (usize, usize)) {
    let s16 = (h8.div_ceil(2), w8.div_ceil(2));
    (s16, (s16.0.div_ceil(2), s16.1.div_ceil(2)))
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
