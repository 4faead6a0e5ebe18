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
use super::{
    RunFiles, TrainState, batch_tensor, checkpoint, crop_frame, crop_score, crop_window, open_log,
};
use crate::engine::BackboneEngine;
use crate::error::{Error, Result};
use crate::io::Dataset;
use crate::model::decoder::{Decoder, resize};
use crate::model::reuse::{ReuseConfig, ReuseNet};
use burn::nn::pool::AvgPool2dConfig;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::activation::sigmoid;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::io::Write;
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

fn sample_clip(seqs: &[SequenceData], cfg: &GateTrainConfig, rng: &mut impl Rng) -> Clip {
    loop {
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
        return Clip { frames };
    }
}

fn iou(a: &[f32], b: &[f32]) -> f32 {
    let (mut i, mut u) = (0.0f32, 0.0f32);
    for (&x, &y) in a.iter().zip(b) {
        i += x * y;
        u += (x + y).min(1.0);
    }
    if u == 0.0 { 1.0 } else { i / u }
}

/// Saves the reuse path's weights as safetensors.
pub fn save_reuse(net: &ReuseNet, path: &Path) -> Result<()> {
    let mut store = SafetensorsStore::from_file(path).overwrite(true);
    net.save_into(&mut store).map_err(|e| {
        Error::Invalid(format!(
            "{}: cannot save reuse weights: {e}",
            path.display()
        ))
    })
}

/// Trains the reuse path on `dataset` over a frozen `decoder`, into `out` (resumable).
pub fn train_gate(
    dataset: &Dataset,
    engine: &mut dyn BackboneEngine,
    decoder: &Decoder,
    out: &Path,
    cfg: &GateTrainConfig,
    resume: bool,
    progress: &indicatif::ProgressBar,
) -> Result<TrainState> {
    std::fs::create_dir_all(out).map_err(|e| Error::write(out, e))?;
    let files = RunFiles {
        dir: out.to_path_buf(),
    };
    let start = Instant::now();
    let seqs = super::cache_sequences(dataset, engine, cfg.ref_every, cfg.augment, progress)?;
    let prep = start.elapsed().as_secs_f64();
    let device = Device::flex().autodiff();
    device.seed(cfg.seed);
    // The decoder is frozen: gradients flow through it to the translator, never into it. It
    // is kept in the run folder (the record of what the gate was trained over) and loaded from
    // there as leaf parameters on the autodiff device.
    let frozen = files.dir.join("frozen-decoder.safetensors");
    super::save_decoder(decoder, &frozen)?;
    let bytes = std::fs::read(&frozen).map_err(|e| Error::read(&frozen, e))?;
    let channels = crate::track::decoder_channels(&bytes)
        .ok_or_else(|| Error::format(&frozen, "not decoder weights"))?;
    let decoder =
        super::load_decoder(&bytes, channels, &device, &frozen.display().to_string())?.no_grad();
    let (mut net, mut optim, mut state) =
        super::start_or_resume(&files, ReuseConfig::new().init(&device), resume)?;
    let mut log = open_log(
        &files,
        "iteration,loss,gp,delta,bce,reuse_rate,margin,seconds",
        state.iteration == 0,
    )?;
    progress.set_length(cfg.iterations as u64);
    progress.set_position(state.iteration as u64);
    progress.set_message("training the reuse path");
    let (ch, cw) = cfg.crop;
    let fc = crate::model::decoder::DecoderConfig::new().feature_channels;
    let sizes = |s: usize| (ch.div_ceil(s), cw.div_ceil(s));
    let (h8, w8) = sizes(8);
    let (h16, w16) = (ch / 16, cw / 16);
    let mut last_ckpt = Instant::now();
    let base_seconds = state.seconds;
    let mut avg = [0f64; 5];
    while state.iteration < cfg.iterations {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
            cfg.seed.wrapping_mul(1_000_003) ^ state.iteration as u64,
        );
        let clips: Vec<Clip> = (0..cfg.batch)
            .map(|_| sample_clip(&seqs, cfg, &mut rng))
            .collect();
        let b = clips.len();
        // Per clip position: batched tensors of every sample.
        let frame = |j: usize| {
            let take = |f: &dyn Fn(&Clip) -> Vec<f32>| clips.iter().map(f).collect::<Vec<_>>();
            let tap = |i: usize, c: usize, s: usize| {
                let (h, w) = sizes(s);
                batch_tensor(take(&|cl| cl.frames[j].0[i].clone()), c, h, w, &device)
            };
            (
                [
                    tap(0, fc[0], 32),
                    tap(1, fc[1], 16),
                    tap(2, fc[2], 8),
                    tap(3, fc[3], 4),
                ],
                batch_tensor(take(&|cl| cl.frames[j].1.clone()), 1, ch, cw, &device),
                batch_tensor(take(&|cl| cl.frames[j].2.clone()), 1, h16, w16, &device),
            )
        };
        let margin = cfg.m1 * (state.iteration as f64 / cfg.ep_t.max(1) as f64).min(1.0);
        let pool8 = AvgPool2dConfig::new([8, 8]).init();

        let ([s32, s16, s8, _], label0, score0) = frame(0);
        let template = net.template(s8.clone(), pool8.forward(label0.clone()));
        let mut last_s8 = s8;
        let mut last_score = score0.clone();
        let mut last_state = decoder.forward_deep(s32, s16, score0).detach();
        let mut last_label: Vec<Vec<f32>> = clips.iter().map(|c| c.frames[0].1.clone()).collect();
        let mut total: Option<Tensor<1>> = None;
        let (mut gp_sum, mut delta_sum, mut bce_sum, mut reused) = (0f64, 0f64, 0f64, 0usize);
        for j in 1..=cfg.clip {
            let ([s32, s16, s8, s4], label, score) = frame(j);
            let out = net.gate(
                s8.clone(),
                last_s8.clone(),
                resize(last_score.clone(), h8, w8),
                template.clone(),
            );
            let p = sigmoid(out.logit);
            let targets: Vec<f32> = clips
                .iter()
                .zip(&last_label)
                .map(|(c, l)| (iou(&c.frames[j].1, l) as f64).max(margin) as f32)
                .collect();
            let target = Tensor::<1>::from_data(TensorData::new(targets, [b]), &device);
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
                Tensor::<1>::ones([b], &device)
            };
            let weighted = |per_element: Tensor<4>| -> Tensor<1> {
                let per_sample = per_element.mean_dim(3).mean_dim(2).mean_dim(1).reshape([b]);
                (per_sample * weights.clone()).sum() / (weights.clone().sum() + 1e-6)
            };
            let moved = last_score.clone() + out.delta.clone();
            let l_delta = weighted((moved.clone() - score.clone()).powi_scalar(2));
            let fresh_state = decoder.forward_deep(s32, s16, score.clone()).detach();
            let state_t = net.translate(last_state.clone(), out.delta);
            let l_state = weighted((state_t.clone() - fresh_state.clone()).powi_scalar(2))
                .mul_scalar(cfg.state_loss);
            let logits = resize(
                decoder.forward_shallow(state_t, s8.clone(), s4, moved),
                ch,
                cw,
            );
            let bce = weighted(super::bce_elements(logits, label));
            let loss = gp.clone() + l_delta.clone() + bce.clone() + l_state;
            gp_sum += f64::from(gp.into_scalar::<f32>());
            delta_sum += f64::from(l_delta.into_scalar::<f32>());
            bce_sum += f64::from(bce.into_scalar::<f32>());
            total = Some(match total {
                Some(t) => t + loss,
                None => loss,
            });
            // The hard decision: reused samples keep the stored state, computed ones refresh it.
            let p_values: Vec<f32> = p
                .detach()
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| Error::Invalid(format!("{e:?}")))?;
            let keep: Vec<f32> = p_values.iter().map(|&v| f32::from(v > 0.5)).collect();
            reused += keep.iter().filter(|&&k| k > 0.0).count();
            for (i, (k, l)) in keep.iter().zip(last_label.iter_mut()).enumerate() {
                if *k == 0.0 {
                    *l = clips[i].frames[j].1.clone();
                }
            }
            let keep =
                Tensor::<1>::from_data(TensorData::new(keep, [b]), &device).reshape([b, 1, 1, 1]);
            let inv = keep.clone().neg() + 1.0;
            last_score = last_score * keep.clone() + score * inv.clone();
            last_state = last_state * keep.clone() + fresh_state * inv.clone();
            last_s8 = last_s8 * keep + s8 * inv;
        }
        let n = cfg.clip as f64;
        let total = total.ok_or_else(|| Error::Invalid("empty clip".into()))?;
        let loss_value = f64::from(total.clone().into_scalar::<f32>()) / n;
        let grads = GradientsParams::from_grads(total.backward(), &net);
        net = optim.step(cfg.learning_rate, net, grads);
        state.iteration += 1;
        state.seconds = base_seconds + start.elapsed().as_secs_f64() - prep;
        let now = [
            loss_value,
            gp_sum / n,
            delta_sum / n,
            bce_sum / n,
            reused as f64 / (n * b as f64),
        ];
        for (a, v) in avg.iter_mut().zip(now) {
            *a = if state.iteration == 1 {
                v
            } else {
                0.98 * *a + 0.02 * v
            };
        }
        let _ = writeln!(
            log,
            "{},{:.5},{:.5},{:.5},{:.5},{:.3},{margin:.3},{:.1}",
            state.iteration, now[0], now[1], now[2], now[3], now[4], state.seconds
        );
        progress.set_position(state.iteration as u64);
        progress.set_message(format!(
            "loss {:.3} (gp {:.3} Δ {:.3} bce {:.3}) reuse {:.0} % m {margin:.2}",
            avg[0],
            avg[1],
            avg[2],
            avg[3],
            100.0 * avg[4]
        ));
        if cfg.snapshot_every > 0 && state.iteration % cfg.snapshot_every == 0 {
            let snap = files
                .dir
                .join(format!("reuse-{:05}.safetensors", state.iteration));
            save_reuse(&net.valid(), &snap)?;
        }
        let done = state.iteration == cfg.iterations;
        if done || last_ckpt.elapsed().as_secs_f64() > 60.0 * cfg.checkpoint_minutes {
            checkpoint(&net, &optim, &state, &files)?;
            last_ckpt = Instant::now();
        }
    }
    save_reuse(&net.valid(), &files.dir.join("reuse.safetensors"))?;
    Ok(state)
}
