//! Offline training of the refinement decoder (backbone frozen, target models fitted on
//! reference frames and frozen), with Adam on BCE, resumable from checkpoints.

pub mod closed_loop;
pub mod data;
pub mod gate;
pub mod harness;
pub mod key_cache;
pub mod propagate;

use crate::engine::BackboneEngine;
use crate::error::{Error, Result};
use crate::io::Dataset;
use crate::model::decoder::{DecoderConfig, DecoderInput, resize};
use crate::model::online::TargetConfig;
use crate::track::keys::KeySource;
use crate::track::video::processing_size;
use burn::optim::AdamConfig;
use burn::prelude::*;
use data::{HalfMap, SequenceData};
use harness::{LoopSpec, Run, Smoothed, Step, train_loop};
use propagate::ScoreSource;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Training settings (saved with the checkpoint).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainConfig {
    pub iterations: usize,
    pub batch: usize,
    pub learning_rate: f64,
    /// The learning rate drops ×0.1 after this fraction of the iterations.
    pub decay_at: f64,
    /// Crop size in image pixels (multiples of 32).
    pub crop: (usize, usize),
    /// Largest distance between the reference frame and the trained frame.
    pub max_gap: usize,
    /// A reference frame every this many frames.
    pub ref_every: usize,
    /// Synthetic first-frame views per reference (as the tracker).
    pub augment: usize,
    pub seed: u64,
    /// Minutes between checkpoints.
    pub checkpoint_minutes: f64,
    /// Share of crops centred on the object (the rest are placed anywhere).
    pub object_crops: f64,
    /// Also keep the weights every this many iterations (decoder-<iteration>.safetensors), to
    /// choose on dev; 0 = only at the end.
    pub snapshot_every: usize,
    pub decoder: DecoderChannels,
    /// What the decoder reads as the tracker's score.
    #[serde(default = "frtm_scores")]
    pub score: ScoreSource,
    /// Frames (and masks) are scaled to this longest side before anything is cached, as the
    /// tracker scales a video (None: their own size — the library's default and runs saved
    /// before the field; the command line's default is the tracker's).
    #[serde(default)]
    pub max_side: Option<u32>,
    /// Close the loop: the memory's propagation writes this decoder's masks (`{fold}` stands
    /// for the fold's name), and training starts from its weights.
    #[serde(default)]
    pub closed_loop: Option<closed_loop::ClosedLoop>,
}

fn frtm_scores() -> ScoreSource {
    ScoreSource {
        tracker: crate::track::TrackerKind::Frtm,
        memory: Default::default(),
        matching: Default::default(),
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DecoderChannels {
    pub channels: [usize; 4],
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            iterations: 3000,
            batch: 4,
            learning_rate: 1e-3,
            decay_at: 0.75,
            crop: (256, 448),
            max_gap: 30,
            ref_every: 10,
            augment: 4,
            seed: 1,
            checkpoint_minutes: 5.0,
            object_crops: 0.5,
            snapshot_every: 1000,
            decoder: DecoderChannels {
                channels: [32, 32, 32, 16],
            },
            score: frtm_scores(),
            max_side: None,
            closed_loop: None,
        }
    }
}

/// Where the run is, saved beside the checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainState {
    pub iteration: usize,
    pub seconds: f64,
}

/// One training example: crops of the four taps, the score, and the label.
struct Example {
    taps: [Vec<f32>; 4],
    score: Vec<f32>,
    label: Vec<f32>,
}

/// Errors unless some sequence has a reference frame (one whose object covers 100 pixels):
/// the samplers draw only around references and would otherwise search forever.
pub(crate) fn check_references<S: Borrow<SequenceData>>(seqs: &[S]) -> Result<()> {
    if seqs.iter().all(|s| s.borrow().references.is_empty()) {
        return Err(Error::Invalid(format!(
            "none of the {} training sequences has a reference frame (an annotated frame whose object covers at least 100 pixels): nothing to train on",
            seqs.len()
        )));
    }
    Ok(())
}

/// Samples a crop around the object of frame `t`, scored by the model of a reference (some
/// sequence has one: [`check_references`]). The FRTM decoder sees frames up to `max_gap`
/// before or after the reference; the memory and fusion decoders the frames the memory
/// propagated to, after it.
fn sample_example(seqs: &[&SequenceData], cfg: &TrainConfig, rng: &mut impl Rng) -> Example {
    let frtm = cfg.score.tracker == crate::track::TrackerKind::Frtm;
    let usable = |r: &data::Reference| frtm || !r.propagated.is_empty();
    let seq = loop {
        let s = seqs[rng.random_range(0..seqs.len())];
        if s.references.iter().any(usable) {
            break s;
        }
    };
    let n = seq.features.len();
    let (k, t) = if frtm {
        let k = rng.random_range(0..seq.references.len());
        let r = seq.references[k].frame;
        let t = rng.random_range(r.saturating_sub(cfg.max_gap)..=(r + cfg.max_gap).min(n - 1));
        let t = match t == r {
            true if t + 1 < n => t + 1,
            true => t.saturating_sub(1),
            false => t,
        };
        (k, t)
    } else {
        // A reference on the last frame has nothing propagated: draw another.
        let k = loop {
            let k = rng.random_range(0..seq.references.len());
            if usable(&seq.references[k]) {
                break k;
            }
        };
        let r = &seq.references[k];
        (k, r.frame + rng.random_range(1..=r.propagated.len().max(1)))
    };
    let (y0, x0, flip) = crop_window(seq, t, cfg.crop, cfg.object_crops, rng);
    let (taps, label) = crop_frame(seq, t, (y0, x0, flip), cfg.crop);
    let map = propagate::score_map(seq, k, t, &cfg.score);
    let s = cfg.score.stride();
    let (ch, cw) = cfg.crop;
    let score = map.crop(y0 / s, x0 / s, ch / s, cw / s, flip);
    Example { taps, score, label }
}

/// A crop window `(y0, x0, flip)` of `crop` image pixels (corner on the stride-32 grid): with
/// probability `object_crops` near the centre of the object of frame `t`, else anywhere — the
/// decoder must also learn that far-away background with a low score is background
/// (object-centred crops only made it paint dark water as object on dev).
pub fn crop_window(
    seq: &SequenceData,
    t: usize,
    (ch, cw): (usize, usize),
    object_crops: f64,
    rng: &mut impl Rng,
) -> (usize, usize, bool) {
    let (w, h) = (seq.width, seq.height);
    let mask = &seq.masks[t];
    let (mut sx, mut sy, mut k) = (0usize, 0usize, 0usize);
    for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m > 0).step_by(7) {
        sx += i % w;
        sy += i / w;
        k += 1;
    }
    let centred = rng.random_bool(object_crops);
    let (cx, cy) = match (sx.checked_div(k), sy.checked_div(k), centred) {
        (Some(x), Some(y), true) => (x, y),
        _ => (rng.random_range(0..w), rng.random_range(0..h)),
    };
    let jitter = |c: usize, size: usize, limit: usize, rng: &mut dyn rand::RngCore| -> usize {
        let max0 = limit.saturating_sub(size);
        let j = rng.random_range(0..=size / 2) as i64 - (size / 4) as i64;
        let start = (c as i64 - size as i64 / 2 + j).clamp(0, max0 as i64) as usize;
        (start / 32) * 32
    };
    let y0 = jitter(cy, ch, h, rng);
    let x0 = jitter(cx, cw, w, rng);
    (y0, x0, rng.random_bool(0.5))
}

/// The four taps (strides 32, 16, 8, 4) and the 0/1 label of frame `t` in a crop window.
pub fn crop_frame(
    seq: &SequenceData,
    t: usize,
    (y0, x0, flip): (usize, usize, bool),
    (ch, cw): (usize, usize),
) -> ([Vec<f32>; 4], Vec<f32>) {
    let (w, h) = (seq.width, seq.height);
    let f = &seq.features[t];
    let taps = std::array::from_fn(|i| {
        let s = [32, 16, 8, 4][i];
        f.taps[i].crop(y0 / s, x0 / s, ch.div_ceil(s), cw.div_ceil(s), flip)
    });
    let mask = &seq.masks[t];
    let mut label = Vec::with_capacity(ch * cw);
    for y in 0..ch {
        let yy = (y0 + y).min(h - 1);
        for x in 0..cw {
            let xx = x0 + if flip { cw - 1 - x } else { x };
            label.push(f32::from(mask[yy * w + xx.min(w - 1)] > 0));
        }
    }
    (taps, label)
}

/// A stride-16 score map (full frame) in a crop window.
pub fn crop_score(
    seq: &SequenceData,
    scores: &[f32],
    (y0, x0, flip): (usize, usize, bool),
    (ch, cw): (usize, usize),
) -> Vec<f32> {
    let (h16, w16) = seq.s16;
    let map = data::HalfMap::from_map(&crate::model::FeatureMap::new(1, h16, w16, scores.to_vec()));
    map.crop(y0 / 16, x0 / 16, ch / 16, cw / 16, flip)
}

pub fn batch_tensor(
    parts: Vec<Vec<f32>>,
    c: usize,
    h: usize,
    w: usize,
    device: &Device,
) -> Tensor<4> {
    let b = parts.len();
    let data: Vec<f32> = parts.into_iter().flatten().collect();
    Tensor::from_data(TensorData::new(data, [b, c, h, w]), device)
}

/// Mean binary cross-entropy of logits against 0/1 targets, computed stably.
pub fn bce_with_logits(logits: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    bce_elements(logits, target).mean()
}

/// Binary cross-entropy of each element (logits in, numerically stable).
pub fn bce_elements(logits: Tensor<4>, target: Tensor<4>) -> Tensor<4> {
    let softplus = logits.clone().clamp_min(0.0) + (logits.clone().abs().neg().exp() + 1.0).log();
    softplus - logits * target
}

/// Paths of a run's files.
pub struct RunFiles {
    pub dir: PathBuf,
}

impl RunFiles {
    pub fn model(&self) -> PathBuf {
        self.dir.join("checkpoint-model.bpk")
    }
    pub fn optim(&self) -> PathBuf {
        self.dir.join("checkpoint-optim.bpk")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("checkpoint.json")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("loss.csv")
    }
    pub fn weights(&self) -> PathBuf {
        self.dir.join("decoder.safetensors")
    }
}

/// Caches every sequence's backbone taps (f16) and its reference target models' scores.
pub(crate) fn cache_sequences(
    dataset: &Dataset,
    engine: &mut dyn BackboneEngine,
    ref_every: usize,
    augment: usize,
    max_side: Option<u32>,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<SequenceData>> {
    let target_cfg = TargetConfig::default();
    let mut seqs = Vec::new();
    progress.set_length(dataset.sequences.len() as u64);
    progress.set_message("caching features and target scores");
    for name in &dataset.sequences {
        seqs.push(data::load_sequence(
            dataset,
            name,
            engine,
            &target_cfg,
            ref_every,
            augment,
            max_side,
        )?);
        progress.inc(1);
    }
    Ok(seqs)
}

/// A fresh Adam optimiser and state for `model`, or, with `resume` and a checkpoint in the
/// run folder, the model, optimiser and state saved there.
pub(crate) fn start_or_resume<M: burn::module::Module>(
    files: &RunFiles,
    model: M,
    resume: bool,
) -> Result<(M, burn::optim::ModuleOptimizer, TrainState)> {
    let optim = AdamConfig::new().with_epsilon(1e-8).init();
    if !(resume && files.state().is_file()) {
        return Ok((model, optim, TrainState::default()));
    }
    let text = std::fs::read_to_string(files.state()).map_err(|e| Error::read(files.state(), e))?;
    let state: TrainState =
        serde_json::from_str(&text).map_err(|e| Error::format(files.state(), e.to_string()))?;
    let model = model
        .try_load_file(files.model())
        .map_err(|e| Error::format(files.model(), e.to_string()))?;
    let optim = optim
        .load(files.optim())
        .map_err(|e| Error::format(files.optim(), e.to_string()))?;
    Ok((model, optim, state))
}

/// The run's `loss.csv`, appended to; a fresh run writes `header` first.
pub(crate) fn open_log(files: &RunFiles, header: &str, fresh: bool) -> Result<std::fs::File> {
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(files.log())
        .map_err(|e| Error::write(files.log(), e))?;
    if fresh {
        let _ = writeln!(log, "{header}");
    }
    Ok(log)
}

/// The training data of `dataset`: every sequence's cached features and target scores, and for
/// the memory and fusion decoders the memory propagated from every reference. Each sequence's
/// data depends on that sequence alone, so one cache serves every fold.
pub fn prepare(
    dataset: &Dataset,
    engines: Engines,
    cfg: &TrainConfig,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<SequenceData>> {
    let Engines {
        backbone,
        keys,
        key_cache,
    } = engines;
    let projection = cfg.score.matching.projection()?;
    let mut seqs = cache_sequences(
        dataset,
        backbone,
        cfg.ref_every,
        cfg.augment,
        cfg.max_side,
        progress,
    )?;
    if cfg.score.tracker != crate::track::TrackerKind::Frtm {
        if let Some(keys) = keys {
            cache_keys(dataset, &mut seqs, keys, key_cache, cfg.max_side, progress)?;
        } else if let Some(p) = projection {
            // Projected stride-8 keys, as the tracker matches with `--key-channels` (projected
            // from the f16 cache: within f16 rounding of the tracker's f32 projection).
            for seq in seqs.iter_mut() {
                seq.keys = seq
                    .features
                    .iter()
                    .map(|f| Ok(HalfMap::from_map(&p.apply(&f.taps[2].to_map())?)))
                    .collect::<Result<Vec<_>>>()?;
            }
        }
        if cfg.closed_loop.is_none() {
            progress.set_message("propagating the memory from every reference");
            propagate::propagate_all(&mut seqs, cfg.score.memory, cfg.max_gap);
        }
    }
    Ok(seqs)
}

/// The networks training caches features with: the backbone and, when the memory matches
/// another backbone's features (`ScoreSource::matching`), that one, with the folder its keys
/// are kept in between runs.
pub struct Engines<'a> {
    pub backbone: &'a mut dyn BackboneEngine,
    pub keys: Option<&'a mut KeySource>,
    pub key_cache: Option<&'a key_cache::KeyCache>,
}

/// The matching backbone's keys of every frame of every sequence (f16), for the memory's
/// propagation: read from `disk` where a run already computed them, else computed and kept
/// there.
fn cache_keys(
    dataset: &Dataset,
    seqs: &mut [SequenceData],
    keys: &mut KeySource,
    disk: Option<&key_cache::KeyCache>,
    max_side: Option<u32>,
    progress: &indicatif::ProgressBar,
) -> Result<()> {
    let frames: usize = seqs.iter().map(|s| s.features.len()).sum();
    progress.set_length(frames as u64);
    progress.set_position(0);
    progress.set_message("caching the matching backbone's keys");
    for seq in seqs.iter_mut() {
        let n = seq.features.len();
        if let Some(cached) = disk.and_then(|d| d.load(&seq.name, n)) {
            seq.keys = cached;
            progress.inc(n as u64);
            continue;
        }
        let info = dataset.sequence(&seq.name)?;
        seq.keys = info
            .frames
            .iter()
            .map(|path| {
                let mut frame = crate::io::Frame::load(path)?;
                let (w, h) = processing_size(frame.width, frame.height, max_side);
                if (w, h) != (frame.width, frame.height) {
                    frame = frame.resized(w, h)?;
                }
                let k = keys.keys(&frame)?;
                progress.inc(1);
                Ok(HalfMap::from_map(&k))
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(d) = disk {
            d.store(&seq.name, &seq.keys)?;
        }
    }
    Ok(())
}

/// Trains the decoder on the sequences of `dataset` and writes checkpoints and the weights into
/// `out`. With `resume`, continues from the checkpoint there.
pub fn train(
    dataset: &Dataset,
    engines: Engines,
    out: &Path,
    cfg: &TrainConfig,
    resume: bool,
    progress: &indicatif::ProgressBar,
) -> Result<TrainState> {
    let started = Instant::now();
    let mut seqs = prepare(dataset, engines, cfg, progress)?;
    let fit = dataset.sequences.clone();
    train_fit(&mut seqs, &fit, out, cfg, None, resume, started, progress)
}

/// One fold of a cross-validation: its name (the run's sub-folder) and its training sequences.
pub struct Fold {
    pub name: String,
    pub fit: Vec<String>,
}

/// Trains one decoder per fold, each on its own sequences, from one cache of `dataset` (which
/// holds every fold's sequences), into `out/<fold name>/`. The same draws as a separate
/// `train` on the fold's sequences in the same order.
pub fn train_folds(
    dataset: &Dataset,
    engines: Engines,
    out: &Path,
    cfg: &TrainConfig,
    folds: &[Fold],
    resume: bool,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<TrainState>> {
    for fold in folds {
        if let Some(missing) = fold.fit.iter().find(|n| !dataset.sequences.contains(n)) {
            return Err(Error::Invalid(format!(
                "fold {}: sequence {missing} is not in the training data",
                fold.name
            )));
        }
    }
    let mut seqs = prepare(dataset, engines, cfg, progress)?;
    let mut states = Vec::new();
    for fold in folds {
        let started = Instant::now();
        let dir = out.join(&fold.name);
        progress.println(format!("fold {}: {} sequences", fold.name, fold.fit.len()));
        states.push(train_fit(
            &mut seqs,
            &fold.fit,
            &dir,
            cfg,
            Some(&fold.name),
            resume,
            started,
            progress,
        )?);
    }
    Ok(states)
}

/// Trains one decoder on the sequences named `fit` (in that order) of the prepared `seqs`
/// into `out`. With the loop closed, each round first propagates the memory of those
/// sequences with its starting decoder; with several rounds, round r trains in
/// `out/round-<r>/` and the last one's weights are also written into `out`. A resumed run
/// skips the propagation of a round that finished.
#[allow(clippy::too_many_arguments)]
fn train_fit(
    seqs: &mut [SequenceData],
    fit: &[String],
    out: &Path,
    cfg: &TrainConfig,
    fold: Option<&str>,
    resume: bool,
    started: Instant,
    progress: &indicatif::ProgressBar,
) -> Result<TrainState> {
    let rounds = cfg.closed_loop.as_ref().map_or(1, |c| c.rounds.max(1));
    let mut state = TrainState::default();
    for round in 1..=rounds {
        let dir = match rounds {
            1 => out.to_path_buf(),
            _ => closed_loop::round_dir(out, round),
        };
        let finished = resume && dir.join("decoder.safetensors").is_file();
        let init = match &cfg.closed_loop {
            Some(closed) if !finished => {
                let mut mine: Vec<&mut SequenceData> =
                    seqs.iter_mut().filter(|s| fit.contains(&s.name)).collect();
                let start = closed.start_of(round, fold, out);
                Some(closed_loop::close_loop(
                    &mut mine, cfg, closed, &start, progress,
                )?)
            }
            _ => None,
        };
        let subset: Vec<&SequenceData> = fit
            .iter()
            .filter_map(|n| seqs.iter().find(|s| &s.name == n))
            .collect();
        state = train_on(
            &subset,
            &dir,
            cfg,
            init.as_deref(),
            resume,
            started,
            progress,
        )?;
        if rounds > 1 {
            progress.println(format!("round {round} of {rounds} done: {}", dir.display()));
        }
    }
    if rounds > 1 {
        let last = closed_loop::round_dir(out, rounds).join("decoder.safetensors");
        let files = RunFiles {
            dir: out.to_path_buf(),
        };
        for (from, to) in [
            (last.clone(), files.weights()),
            (
                last.with_extension("json"),
                files.weights().with_extension("json"),
            ),
        ] {
            let bytes = std::fs::read(&from).map_err(|e| Error::read(&from, e))?;
            crate::io::atomic::write_bytes(&to, &bytes)?;
        }
    }
    Ok(state)
}

/// Trains the decoder on prepared sequences (see [`train`]), from the weights `init` (safetensors
/// bytes) when given; `started` is when preparing began.
fn train_on(
    seqs: &[&SequenceData],
    out: &Path,
    cfg: &TrainConfig,
    init: Option<&[u8]>,
    resume: bool,
    started: Instant,
    progress: &indicatif::ProgressBar,
) -> Result<TrainState> {
    check_references(seqs)?;
    let run = Run::start(out, started, resume, progress)?;
    let device = Device::flex().autodiff();
    device.seed(cfg.seed);
    let dcfg = DecoderConfig::new()
        .with_channels(cfg.decoder.channels)
        .with_score_channels(cfg.score.channels())
        .with_trained_on(cfg.score.tracker.to_string())
        .with_matching(Some(cfg.score.matching.backbone.to_string()));
    let spec = LoopSpec {
        iterations: cfg.iterations,
        seed: cfg.seed,
        checkpoint_minutes: cfg.checkpoint_minutes,
        snapshot_every: cfg.snapshot_every,
        name: "decoder",
        log_columns: "loss,iou,lr",
    };
    progress.set_message("training");
    let mut smooth = Smoothed::default();
    let model = match init {
        Some(bytes) => crate::model::load::load_decoder_on(bytes, &dcfg, &device, "--closed-loop")?,
        None => dcfg.init(&device),
    };
    train_loop(&run, &spec, &dcfg, model, |model, rng, state| {
        let examples: Vec<Example> = (0..cfg.batch)
            .map(|_| sample_example(seqs, cfg, rng))
            .collect();
        let (input, score, label) = decoder_batch(examples, cfg, dcfg.feature_channels, &device);
        let (ch, cw) = cfg.crop;
        let logits = resize(model.forward(input, score), ch, cw);
        let loss = bce_with_logits(logits.clone(), label.clone());
        let loss_value: f64 = loss.clone().into_scalar::<f32>() as f64;
        let pred = logits.detach().greater_elem(0.0).float();
        let inter: f32 = (pred.clone() * label.clone().detach()).sum().into_scalar();
        let union: f32 = (pred + label.detach()).clamp_max(1.0).sum().into_scalar();
        let iou = if union > 0.0 {
            (inter / union) as f64
        } else {
            1.0
        };
        let lr = if (state.iteration as f64) < cfg.decay_at * cfg.iterations as f64 {
            cfg.learning_rate
        } else {
            cfg.learning_rate * 0.1
        };
        let avg = smooth.add(&[loss_value, iou]);
        Ok(Step {
            loss,
            lr,
            log: format!("{loss_value:.5},{iou:.4},{lr:e}"),
            message: format!("loss {:.4} IoU {:.3}", avg[0], avg[1]),
        })
    })
}

/// A batch of examples as the decoder's input, score and label tensors.
fn decoder_batch(
    examples: Vec<Example>,
    cfg: &TrainConfig,
    fc: [usize; 4],
    device: &Device,
) -> (DecoderInput<Tensor<4>>, Tensor<4>, Tensor<4>) {
    let (ch, cw) = cfg.crop;
    let mut taps: [Vec<Vec<f32>>; 4] = Default::default();
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    for e in examples {
        for (i, t) in e.taps.into_iter().enumerate() {
            taps[i].push(t);
        }
        scores.push(e.score);
        labels.push(e.label);
    }
    let [t32, t16, t8, t4] = taps;
    let input = DecoderInput {
        s32: batch_tensor(t32, fc[0], ch.div_ceil(32), cw.div_ceil(32), device),
        s16: batch_tensor(t16, fc[1], ch.div_ceil(16), cw.div_ceil(16), device),
        s8: batch_tensor(t8, fc[2], ch.div_ceil(8), cw.div_ceil(8), device),
        s4: batch_tensor(t4, fc[3], ch.div_ceil(4), cw.div_ceil(4), device),
    };
    let s = cfg.score.stride();
    let score = batch_tensor(scores, cfg.score.channels(), ch / s, cw / s, device);
    let label = batch_tensor(labels, 1, ch, cw, device);
    (input, score, label)
}

/// Saves a module, its optimiser and the run state (each written beside, then renamed).
pub(crate) fn checkpoint<M: burn::module::Module + Clone>(
    model: &M,
    optim: &burn::optim::ModuleOptimizer,
    state: &TrainState,
    files: &RunFiles,
) -> Result<()> {
    // Written beside, then renamed, so a killed run never leaves a broken checkpoint.
    let tmp_model = files.dir.join("checkpoint-model.bpk.tmp");
    let tmp_optim = files.dir.join("checkpoint-optim.bpk.tmp");
    model
        .clone()
        .save_file(&tmp_model)
        .map_err(|e| Error::Invalid(format!("{}: {e}", tmp_model.display())))?;
    optim
        .save(&tmp_optim)
        .map_err(|e| Error::Invalid(format!("{}: {e}", tmp_optim.display())))?;
    std::fs::rename(&tmp_model, files.model()).map_err(|e| Error::write(files.model(), e))?;
    std::fs::rename(&tmp_optim, files.optim()).map_err(|e| Error::write(files.optim(), e))?;
    let text = serde_json::to_string_pretty(state).map_err(|e| Error::Invalid(e.to_string()))?;
    crate::io::atomic::write_bytes(&files.state(), text.as_bytes())?;
    Ok(())
}
