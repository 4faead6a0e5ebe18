//! Training of the reuse path (`train --stage gate`): template, matching, gate, Δ-generator and
//! refine-translator, with the backbone, the target models and the decoder frozen.
//!
//! Each example is a clip in temporal order: a reference frame r (where the mask is given and
//! the target model was fitted) and `clip` later frames with random gaps. The clip is played
//! as the tracker plays it: the stored state (score, decoder state, mask) is the last
//! *computed* frame's, starting at r; at each frame the gate decides (hard, P > 0.5, no
//! gradient through the decision) and a computed frame refreshes the state. Every frame adds
//! the paper's loss (Eq. 3–6):
//!
//! * L_gp = max(m2, |P_gate − P_target|)², P_target = max(m, IoU(GT_t, GT_last computed)),
//!   m = m1 · min(1, iteration / ep_T) — live, unlike the reference code's clamp;
//! * L_Δ = mean((S_last + Δ − S_t)²): Δ learns the change of the target model's score (the
//!   score the full path would compute), not of the label as in the reference;
//! * BCE of the reuse path's mask (translator + shallow decoder) against GT_t.

use super::data::SequenceData;
use super::harness::{LoopSpec, Run, Smoothed, Step, train_loop};
use super::{TrainState, batch_tensor, crop_frame, crop_score, crop_window};
use crate::engine::BackboneEngine;
use crate::error::{Error, Result};
use crate::io::Dataset;
use crate::metrics::region::iou_of;
use crate::model::decoder::{Decoder, DecoderConfig, resize};
use crate::model::load::{load_decoder_on, save_with_config};
use crate::model::reuse::{ReuseConfig, ReuseNet};
use burn::nn::pool::AvgPool2dConfig;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// Settings of a gate-training run (saved with its checkpoint).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GateTrainConfig {
    pub iterations: usize,
    pub batch: usize,
    pub learning_rate: f64,
    pub crop: (usize, usize),
    /// Frames after the reference in each clip.
    pub clip: usize,
    /// Largest gap between consecutive clip frames (each gap is uniform in
    /// min_step..=max_step).
    pub max_step: usize,
    /// Smallest gap; 0 lets a clip repeat a frame.
    #[serde(default = "one")]
    pub min_step: usize,
    /// Weight each sample's reuse-path losses (Δ, BCE, state) by its detached P(reuse).
    #[serde(default)]
    pub weight_by_gate: bool,
    /// The paper's margins: m rises linearly to m1 at iteration ep_t; m2 is the dead zone.
    pub m1: f64,
    pub m2: f64,
    pub ep_t: usize,
    pub ref_every: usize,
    pub augment: usize,
    pub seed: u64,
    pub checkpoint_minutes: f64,
    pub snapshot_every: usize,
    /// Weight of an extra loss (not in the paper): mean squared error between the translated
    /// decoder state and the state the deep stages give on the frame. 0 = the paper's loss.
    #[serde(default)]
    pub state_loss: f64,
}

fn one() -> usize {
    1
}

impl Default for GateTrainConfig {
    fn default() -> Self {
        GateTrainConfig {
            iterations: 1000,
            batch: 2,
            learning_rate: 5e-4,
            crop: (256, 448),
            clip: 4,
            max_step: 10,
            min_step: 1,
            weight_by_gate: false,
            m1: 0.5,
            m2: 0.0,
            ep_t: 1000,
            ref_every: 10,
            augment: 4,
            seed: 2,
            checkpoint_minutes: 5.0,
            snapshot_every: 250,
            state_loss: 0.0,
        }
    }
}

/// One frame's crops: taps (s32, s16, s8, s4), label, score of the reference's target model.
type CropFrame = ([Vec<f32>; 4], Vec<f32>, Vec<f32>);

/// One clip's crops: the reference frame first, then the clip frames.
struct Clip {
    frames: Vec<CropFrame>,
}

/// Errors unless some reference frame has room after it for a clip at the smallest steps
/// (`sample_clip` would otherwise search forever).
fn check_clips(seqs: &[SequenceData], cfg: &GateTrainConfig) -> Result<()> {
    super::check_references(seqs)?;
    let shortest = cfg.clip * cfg.min_step.min(cfg.max_step);
    let longest = seqs.iter().map(|s| s.features.len()).max().unwrap_or(0);
    if !seqs.iter().any(|s| {
        s.references
            .iter()
            .any(|r| r.frame + shortest < s.features.len())
    }) {
        return Err(Error::Invalid(format!(
            "--clip {} with steps of at least {} spans {shortest} frames after a reference, and no reference frame has that many after it (the longest sequence has {longest} frames): use a shorter --clip or smaller steps",
            cfg.clip,
            cfg.min_step.min(cfg.max_step)
        )));
    }
    Ok(())
}

/// Samples a clip after a reference frame. Steps are drawn at random, so a long clip may not
/// fit: after many draws that do not, an error says so instead of drawing forever.
fn sample_clip(seqs: &[SequenceData], cfg: &GateTrainConfig, rng: &mut impl Rng) -> Result<Clip> {
    for _ in 0..100_000 {
        let seq = &seqs[rng.random_range(0..seqs.len())];
        if seq.references.is_empty() {
            continue;
        }
        let gaps: Vec<usize> = (0..cfg.clip)
            .map(|_| rng.random_range(cfg.min_step.min(cfg.max_step)..=cfg.max_step.max(1)))
            .collect();
        let span: usize = gaps.iter().sum();
        let n = seq.features.len();
        let fits: Vec<_> = seq
            .references
            .iter()
            .filter(|r| r.frame + span < n)
            .collect();
        if fits.is_empty() {
            continue;
        }
        let reference = fits[rng.random_range(0..fits.len())];
        let window = crop_window(seq, reference.frame, cfg.crop, 1.0, rng);
        let mut t = reference.frame;
        let mut frames = Vec::with_capacity(cfg.clip + 1);
        for step in std::iter::once(0).chain(gaps) {
            t += step;
            let (taps, label) = crop_frame(seq, t, window, cfg.crop);
            let score = crop_score(seq, &reference.scores[t], window, cfg.crop);
            frames.push((taps, label, score));
        }
        return Ok(Clip { frames });
    }
    Err(Error::Invalid(format!(
        "no clip of {} frames with steps {}..={} fits after a reference frame in 100 000 draws: use a shorter --clip or smaller steps",
        cfg.clip, cfg.min_step, cfg.max_step
    )))
}

/// Trains the reuse path on `dataset` over a frozen `decoder`, into `out` (resumable).
#[allow(clippy::too_many_arguments)]
pub fn train_gate(
    dataset: &Dataset,
    engine: &mut dyn BackboneEngine,
    decoder: &Decoder,
    decoder_config: &DecoderConfig,
    out: &Path,
    cfg: &GateTrainConfig,
    resume: bool,
    progress: &indicatif::ProgressBar,
) -> Result<TrainState> {
    let started = Instant::now();
    // The learned gate trains at the frames' own size (as it was trained before tracking
    // sizes existed).
    let seqs = super::cache_sequences(dataset, engine, cfg.ref_every, cfg.augment, None, progress)?;
    check_clips(&seqs, cfg)?;
    let run = Run::start(out, started, resume, progress)?;
    let device = Device::flex().autodiff();
    device.seed(cfg.seed);
    // The decoder is frozen: gradients flow through it to the translator, never into it. It
    // is kept in the run folder (the record of what the gate was trained over) and loaded from
    // there as leaf parameters on the autodiff device.
    let frozen = run.files.dir.join("frozen-decoder.safetensors");
    save_with_config(decoder, decoder_config, &frozen)?;
    let bytes = std::fs::read(&frozen).map_err(|e| Error::read(&frozen, e))?;
    let origin = frozen.display().to_string();
    let decoder = load_decoder_on(&bytes, decoder_config, &device, &origin)?.no_grad();
    let reuse_config = ReuseConfig::new();
    let spec = LoopSpec {
        iterations: cfg.iterations,
        seed: cfg.seed,
        checkpoint_minutes: cfg.checkpoint_minutes,
        snapshot_every: cfg.snapshot_every,
        name: "reuse",
        log_columns: "loss,gp,delta,bce,reuse_rate,margin",
    };
    progress.set_message("training the reuse path");
    let mut smooth = Smoothed::default();
    let unroll = Unroll {
        decoder: &decoder,
        fc: decoder_config.feature_channels,
        cfg,
        device: &device,
    };
    train_loop(
        &run,
        &spec,
        &reuse_config,
        reuse_config.init(&device),
        |net, rng, state| {
            let clips: Vec<Clip> = (0..cfg.batch)
                .map(|_| sample_clip(&seqs, cfg, rng))
                .collect::<Result<_>>()?;
            let margin = cfg.m1 * (state.iteration as f64 / cfg.ep_t.max(1) as f64).min(1.0);
            let l = unroll.clip_loss(net, &clips, margin)?;
            let n = cfg.clip as f64;
            let now = [
                f64::from(l.total.clone().into_scalar::<f32>()) / n,
                l.gp / n,
                l.delta / n,
                l.bce / n,
                l.reused as f64 / (n * clips.len() as f64),
            ];
            let avg = smooth.add(&now);
            Ok(Step {
                loss: l.total,
                lr: cfg.learning_rate,
                log: format!(
                    "{:.5},{:.5},{:.5},{:.5},{:.3},{margin:.3}",
                    now[0], now[1], now[2], now[3], now[4]
                ),
                message: format!(
                    "loss {:.3} (gp {:.3} Δ {:.3} bce {:.3}) reuse {:.0} % m {margin:.2}",
                    avg[0],
                    avg[1],
                    avg[2],
                    avg[3],
                    100.0 * avg[4]
                ),
            })
        },
    )
}

/// One batch of clips unrolled in temporal order through the gate and the reuse path.
struct Unroll<'a> {
    decoder: &'a Decoder,
    fc: [usize; 4],
    cfg: &'a GateTrainConfig,
    device: &'a Device,
}

/// The summed loss over a clip and its parts.
struct ClipLoss {
    total: Tensor<1>,
    gp: f64,
    delta: f64,
    bce: f64,
    reused: usize,
}

/// Clip position `j` of every clip in the batch: the four taps, the label and the score.
type ClipFrame = ([Tensor<4>; 4], Tensor<4>, Tensor<4>);

/// The stored state of the last computed frame of every clip, as the tracker keeps it.
struct Stored {
    s8: Tensor<4>,
    score: Tensor<4>,
    state: Tensor<4>,
    label: Vec<Vec<f32>>,
}

impl Unroll<'_> {
    fn sizes(&self, s: usize) -> (usize, usize) {
        let (ch, cw) = self.cfg.crop;
        (ch.div_ceil(s), cw.div_ceil(s))
    }

    /// Position `j` of every clip as batched tensors.
    fn frame(&self, clips: &[Clip], j: usize) -> ClipFrame {
        let (ch, cw) = self.cfg.crop;
        let take = |f: &dyn Fn(&Clip) -> Vec<f32>| clips.iter().map(f).collect::<Vec<_>>();
        let tap = |i: usize, c: usize, s: usize| {
            let (h, w) = self.sizes(s);
            batch_tensor(take(&|cl| cl.frames[j].0[i].clone()), c, h, w, self.device)
        };
        let fc = self.fc;
        (
            [
                tap(0, fc[0], 32),
                tap(1, fc[1], 16),
                tap(2, fc[2], 8),
                tap(3, fc[3], 4),
            ],
            batch_tensor(take(&|cl| cl.frames[j].1.clone()), 1, ch, cw, self.device),
            batch_tensor(
                take(&|cl| cl.frames[j].2.clone()),
                1,
                ch / 16,
                cw / 16,
                self.device,
            ),
        )
    }

    /// The loss of a batch of clips: at each step the gate's L_gp against the IoU with the
    /// last computed frame, the Δ and BCE losses of the reuse path; the hard decision then
    /// keeps or refreshes each clip's stored state.
    fn clip_loss(&self, net: &ReuseNet, clips: &[Clip], margin: f64) -> Result<ClipLoss> {
        let pool8 = AvgPool2dConfig::new([8, 8]).init();
        let ([s32, s16, s8, _], label0, score0) = self.frame(clips, 0);
        let template = net.template(s8.clone(), pool8.forward(label0));
        let mut stored = Stored {
            s8,
            score: score0.clone(),
            state: self.decoder.forward_deep(s32, s16, score0).detach(),
            label: clips.iter().map(|c| c.frames[0].1.clone()).collect(),
        };
        let mut out: Option<ClipLoss> = None;
        for j in 1..=self.cfg.clip {
            let step = self.step(net, clips, j, &template, &mut stored, margin)?;
            out = Some(match out {
                Some(o) => ClipLoss {
                    total: o.total + step.total,
                    gp: o.gp + step.gp,
                    delta: o.delta + step.delta,
                    bce: o.bce + step.bce,
                    reused: o.reused + step.reused,
                },
                None => step,
            });
        }
        out.ok_or_else(|| Error::Invalid("empty clip".into()))
    }

    /// Clip position `j`: its losses, and the stored state moved on by the hard decision.
    fn step(
        &self,
        net: &ReuseNet,
        clips: &[Clip],
        j: usize,
        template: &Tensor<3>,
        stored: &mut Stored,
        margin: f64,
    ) -> Result<ClipLoss> {
        let cfg = self.cfg;
        let (ch, cw) = cfg.crop;
        let (h8, w8) = self.sizes(8);
        let b = clips.len();
        let ([s32, s16, s8, s4], label, score) = self.frame(clips, j);
        let out = net.gate(
            s8.clone(),
            stored.s8.clone(),
            resize(stored.score.clone(), h8, w8),
            template.clone(),
        );
        let p = sigmoid(out.logit);
        let targets: Vec<f32> = clips
            .iter()
            .zip(&stored.label)
            .map(|(c, l)| iou_of(&c.frames[j].1, l, |&x| x > 0.5, |&y| y > 0.5).max(margin) as f32)
            .collect();
        let target = Tensor::<1>::from_data(TensorData::new(targets, [b]), self.device);
        let gp = (p.clone() - target)
            .abs()
            .clamp_min(cfg.m2)
            .powi_scalar(2)
            .mean();
        // The reuse path's losses per sample, weighted by P(reuse) when asked (the gate
        // itself learns only from L_gp).
        let weights = if cfg.weight_by_gate {
            p.clone().detach()
        } else {
            Tensor::<1>::ones([b], self.device)
        };
        let weighted = |per_element: Tensor<4>| -> Tensor<1> {
            let per_sample = per_element.mean_dim(3).mean_dim(2).mean_dim(1).reshape([b]);
            (per_sample * weights.clone()).sum() / (weights.clone().sum() + 1e-6)
        };
        let moved = stored.score.clone() + out.delta.clone();
        let l_delta = weighted((moved.clone() - score.clone()).powi_scalar(2));
        let fresh_state = self.decoder.forward_deep(s32, s16, score.clone()).detach();
        let state_t = net.translate(stored.state.clone(), out.delta);
        let l_state = weighted((state_t.clone() - fresh_state.clone()).powi_scalar(2))
            .mul_scalar(cfg.state_loss);
        let logits = resize(
            self.decoder.forward_shallow(state_t, s8.clone(), s4, moved),
            ch,
            cw,
        );
        let bce = weighted(super::bce_elements(logits, label));
        let total = gp.clone() + l_delta.clone() + bce.clone() + l_state;
        let parts = (
            f64::from(gp.into_scalar::<f32>()),
            f64::from(l_delta.into_scalar::<f32>()),
            f64::from(bce.into_scalar::<f32>()),
        );
        let reused = keep_or_refresh(clips, j, p, (score, fresh_state, s8), stored, self.device)?;
        Ok(ClipLoss {
            total,
            gp: parts.0,
            delta: parts.1,
            bce: parts.2,
            reused,
        })
    }
}

/// The hard decision: reused samples keep the stored state, computed ones refresh it with this
/// frame's score, decoder state and features. Returns how many were reused.
fn keep_or_refresh(
    clips: &[Clip],
    j: usize,
    p: Tensor<1>,
    (score, fresh_state, s8): (Tensor<4>, Tensor<4>, Tensor<4>),
    stored: &mut Stored,
    device: &Device,
) -> Result<usize> {
    let b = clips.len();
    let p_values: Vec<f32> = p
        .detach()
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Invalid(format!("{e:?}")))?;
    let keep: Vec<f32> = p_values.iter().map(|&v| f32::from(v > 0.5)).collect();
    let reused = keep.iter().filter(|&&k| k > 0.0).count();
    for (i, (k, l)) in keep.iter().zip(stored.label.iter_mut()).enumerate() {
        if *k == 0.0 {
            *l = clips[i].frames[j].1.clone();
        }
    }
    let keep = Tensor::<1>::from_data(TensorData::new(keep, [b]), device).reshape([b, 1, 1, 1]);
    let inv = keep.clone().neg() + 1.0;
    stored.score = stored.score.clone() * keep.clone() + score * inv.clone();
    stored.state = stored.state.clone() * keep.clone() + fresh_state * inv.clone();
    stored.s8 = stored.s8.clone() * keep + s8 * inv;
    Ok(reused)
}
