//! `train`: the refinement decoder (one split or every fold) and the reuse path.

use crate::shared::*;
use reuse_vos::io::{Dataset, DatasetKind};
use reuse_vos::jobs::train::Engines;
use reuse_vos::jobs::train::key_cache::KeyCache;
use reuse_vos::model::Model;
use reuse_vos::track::TrackerKind;
use reuse_vos::track::keys::{KeySource, MatchBackbone};
use reuse_vos::track::tracker::memory::MemoryConfig;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub(crate) struct TrainArgs {
    /// The training sequences (DAVIS 2016), e.g. `--set splits/fit.txt`.
    #[command(flatten)]
    pub(crate) data: DavisArgs,
    /// The tracker whose score the decoder learns to read: FRTM's target model, the memory's
    /// propagated probability (propagated from every reference frame over the cached
    /// features, its own errors included), or both (fusion: two channels).
    #[arg(long, value_enum, default_value = "frtm")]
    pub(crate) tracker: TrackerKind,
    /// What the memory and fusion decoders' memory matches (DINOv2's tokens are cached for
    /// every frame first).
    #[command(flatten)]
    pub(crate) matching: MatchingArgs,
    /// Output folder: checkpoints, loss.csv, decoder.safetensors.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    pub(crate) resume: bool,
    /// Cross-validation: a folder of `fit-<k>.txt` lists (e.g. splits/folds). One decoder per
    /// fold, trained on its list, into `<out>/fold-<k>/`, from one cache of the data (which must
    /// hold every fold's sequences). Score each on its `dev-<k>.txt` with `run --set`.
    #[arg(long)]
    pub(crate) folds: Option<PathBuf>,
    /// With --folds: only these folds (e.g. 1,2,3,4).
    #[arg(long, value_delimiter = ',', requires = "folds")]
    pub(crate) fold_ids: Option<Vec<usize>>,
    #[arg(long, default_value_t = 3000)]
    pub(crate) iterations: usize,
    #[arg(long, default_value_t = 4)]
    pub(crate) batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub(crate) lr: f64,
    /// Decoder channels at strides 32,16,8,4.
    #[arg(long, value_delimiter = ',', default_value = "32,32,32,16")]
    pub(crate) channels: Vec<usize>,
    /// Share of training crops centred on the object (the rest anywhere in the frame).
    #[arg(long, default_value_t = 0.5)]
    pub(crate) object_crops: f64,
    /// The learning rate drops ×0.1 after this fraction of the iterations (1 = never).
    #[arg(long, default_value_t = 0.75)]
    pub(crate) decay_at: f64,
    /// Keep the weights every this many iterations (decoder-<iteration>.safetensors); 0 = never.
    #[arg(long, default_value_t = 1000)]
    pub(crate) snapshot_every: usize,
    /// Train at the size the tracker sees videos: frames and masks scaled to this longest side
    /// (0: their own size). Default: the tracker's (640).
    #[arg(long, value_parser = tracking_side)]
    pub(crate) max_side: Option<u32>,
    /// Close the loop (memory and fusion decoders): the memory's training propagation writes
    /// this decoder's masks, as the tracker writes its memory, and training fine-tunes it —
    /// so the decoder learns to read the memory it is fed at run time, not the memory's own
    /// propagation. With --folds, `{fold}` in the path stands for the fold's name, e.g.
    /// `weights/folds/fusion-640-{fold}.safetensors`.
    #[arg(long)]
    pub(crate) closed_loop: Option<PathBuf>,
    /// With --closed-loop: rounds of propagating and fine-tuning, each from the previous
    /// round's decoder (`<out>/round-<r>/`; the last one's weights also in `<out>`).
    #[arg(long, default_value_t = 1, requires = "closed_loop", value_parser = clap::value_parser!(u16).range(1..=20))]
    pub(crate) rounds: u16,
    /// DINOv2 matching: the folder where the keys of every training frame are kept between
    /// runs (~1.2 MB a frame at 640; an interrupted run keeps the sequences it finished).
    /// Default: `train-keys` in the project's cache folder (`REUSE_VOS_CACHE`).
    #[arg(long)]
    pub(crate) keys_cache: Option<PathBuf>,
    /// What to train: the refinement decoder, or the reuse path over a frozen decoder.
    #[arg(long, value_enum, default_value = "decoder")]
    pub(crate) stage: Stage,
    /// `--stage gate`: the frozen decoder (default: the embedded one).
    #[arg(long)]
    pub(crate) decoder: Option<PathBuf>,
    /// `--stage gate`: margin m1 (P_target = max(m, IoU), m rises to m1 at iteration --ep-t).
    #[arg(long, default_value_t = 0.5)]
    pub(crate) m1: f64,
    /// `--stage gate`: margin m2 (no loss while |P_gate − P_target| < m2).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) m2: f64,
    /// `--stage gate`: the iteration at which m reaches m1 (the paper's ep_T, in iterations).
    #[arg(long)]
    pub(crate) ep_t: Option<usize>,
    /// `--stage gate`: frames after the reference in each clip.
    #[arg(long, default_value_t = 4)]
    pub(crate) clip: usize,
    /// `--stage gate`: weight of an extra loss pulling the translated decoder state towards
    /// the deep stages' state (0 = the paper's loss).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) state_loss: f64,
    /// `--stage gate`: largest gap between consecutive clip frames.
    #[arg(long, default_value_t = 10)]
    pub(crate) max_step: usize,
    /// `--stage gate`: smallest gap (0 lets a clip repeat a frame: nothing changed).
    #[arg(long, default_value_t = 1)]
    pub(crate) min_step: usize,
    /// `--stage gate`: weight each sample's Δ, BCE and state losses by its (detached)
    /// P(reuse), so the reuse path learns on the frames it will be used on (not in the paper).
    #[arg(long)]
    pub(crate) weight_by_gate: bool,
    #[command(flatten)]
    pub(crate) engine: EngineArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Stage {
    Decoder,
    Gate,
}

pub(crate) fn run_train(args: TrainArgs) -> anyhow::Result<()> {
    if args.data.kind()? != DatasetKind::Davis2016 {
        anyhow::bail!(
            "{}: training reads DAVIS 2016 (grey annotations, one object per sequence)",
            args.data.davis.display()
        );
    }
    let dataset = args.data.open()?;
    let spec = backbone_spec(&args.engine)?;
    let mut engine =
        reuse_vos::engine::backbone(&spec, args.engine.engine, None, args.engine.threads)?;
    if args.stage == Stage::Gate {
        anyhow::ensure!(
            args.max_side.is_none(),
            "--max-side: the reuse path trains at the frames' own size (--stage gate takes no tracking size)"
        );
        return run_train_gate(&args, &dataset, engine.as_mut());
    }
    let channels: [usize; 4] = args
        .channels
        .clone()
        .try_into()
        .map_err(|_| anyhow::anyhow!("--channels needs 4 values"))?;
    let matching = args.matching.config(args.matching.backbone);
    let mut memory = MemoryConfig::default();
    memory.readout.radius = args.matching.radius(matching.backbone);
    memory.readout.given_radius = args.matching.mem_given_radius;
    let cfg = reuse_vos::jobs::train::TrainConfig {
        iterations: args.iterations,
        batch: args.batch,
        learning_rate: args.lr,
        decoder: reuse_vos::jobs::train::DecoderChannels { channels },
        object_crops: args.object_crops.clamp(0.0, 1.0),
        decay_at: args.decay_at,
        snapshot_every: args.snapshot_every,
        score: reuse_vos::jobs::train::propagate::ScoreSource {
            tracker: args.tracker,
            memory,
            matching,
        },
        // The tracker's size (`TrackingSize`).
        max_side: tracking_size(args.max_side).max_side(),
        closed_loop: match &args.closed_loop {
            Some(decoder) => Some(reuse_vos::jobs::train::closed_loop::ClosedLoop {
                decoder: decoder.clone(),
                engine: reuse_vos::engine::resolve(args.engine.engine)?,
                threads: args.engine.threads,
                rounds: args.rounds.into(),
            }),
            None => None,
        },
        ..Default::default()
    };
    let mut keys = match matching.backbone {
        MatchBackbone::Mobilenetv2 => None,
        MatchBackbone::Dinov2s => {
            let kind = reuse_vos::engine::resolve(args.engine.engine)?;
            let weights = args.matching.vit()?;
            KeySource::new(matching, Some(&weights), kind, args.engine.threads)?
        }
    };
    let key_cache = match (&keys, args.keys_cache.clone().or_else(default_keys_cache)) {
        (Some(_), Some(root)) => {
            let cache = KeyCache::new(&root, &matching, cfg.max_side);
            eprintln!("DINOv2 keys kept in {}", cache.dir().display());
            Some(cache)
        }
        _ => None,
    };
    let bar = progress_bar(0, "train");
    let start = std::time::Instant::now();
    if let Some(dir) = &args.folds {
        let folds = read_folds(dir, args.fold_ids.as_deref())?;
        for fold in &folds {
            check_closed_loop(&cfg, Some(&fold.name))?;
        }
        let states = reuse_vos::jobs::train::train_folds(
            &dataset,
            Engines {
                backbone: engine.as_mut(),
                keys: keys.as_mut(),
                key_cache: key_cache.as_ref(),
            },
            &args.out,
            &cfg,
            &folds,
            args.resume,
            &bar,
        )?;
        bar.finish();
        for (fold, state) in folds.iter().zip(&states) {
            let weights = args.out.join(&fold.name).join("decoder.safetensors");
            report_trained(state, start, &weights);
        }
        return Ok(());
    }
    check_closed_loop(&cfg, None)?;
    let state = reuse_vos::jobs::train::train(
        &dataset,
        Engines {
            backbone: engine.as_mut(),
            keys: keys.as_mut(),
            key_cache: key_cache.as_ref(),
        },
        &args.out,
        &cfg,
        args.resume,
        &bar,
    )?;
    bar.finish();
    report_trained(&state, start, &args.out.join("decoder.safetensors"));
    Ok(())
}

/// `train-keys` in the project's cache folder, when there is one.
fn default_keys_cache() -> Option<PathBuf> {
    reuse_vos::io::cache::cache_dir().map(|d| d.join("train-keys"))
}

/// Refuses a `--closed-loop` decoder that cannot be read before minutes of caching start.
fn check_closed_loop(
    cfg: &reuse_vos::jobs::train::TrainConfig,
    fold: Option<&str>,
) -> anyhow::Result<()> {
    let Some(closed) = &cfg.closed_loop else {
        return Ok(());
    };
    anyhow::ensure!(
        cfg.score.tracker != TrackerKind::Frtm,
        "--closed-loop: the FRTM decoder reads no memory (train --tracker memory or fusion)"
    );
    let path = closed.path(fold);
    anyhow::ensure!(
        path.is_file(),
        "{}: --closed-loop decoder not found{}",
        path.display(),
        fold.map(|f| format!(" (for {f})")).unwrap_or_default()
    );
    reuse_vos::model::load::read_config::<reuse_vos::model::decoder::DecoderConfig>(&path)?;
    Ok(())
}

/// The folds of a folder of `fit-<k>.txt` lists, in order of k (only `ids`, when given).
pub(crate) fn read_folds(
    dir: &Path,
    ids: Option<&[usize]>,
) -> anyhow::Result<Vec<reuse_vos::jobs::train::Fold>> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let k = name
            .strip_prefix("fit-")
            .and_then(|r| r.strip_suffix(".txt"))
            .and_then(|k| k.parse::<usize>().ok());
        if let Some(k) = k.filter(|k| ids.is_none_or(|ids| ids.contains(k))) {
            found.push((k, entry.path()));
        }
    }
    found.sort();
    if let Some(missing) =
        ids.and_then(|ids| ids.iter().find(|i| !found.iter().any(|f| f.0 == **i)))
    {
        anyhow::bail!("{}: no fit-{missing}.txt", dir.display());
    }
    if found.is_empty() {
        anyhow::bail!("{}: no fit-<k>.txt fold lists", dir.display());
    }
    let mut folds = Vec::new();
    for (k, path) in found {
        let fit = reuse_vos::io::dataset::read_set_file(&path)?;
        folds.push(reuse_vos::jobs::train::Fold {
            name: format!("fold-{k}"),
            fit,
        });
    }
    Ok(folds)
}

pub(crate) fn report_trained(
    state: &reuse_vos::jobs::train::TrainState,
    start: std::time::Instant,
    weights: &Path,
) {
    println!(
        "trained {} iterations ({:.0} s of training, {:.0} s this run); weights in {}",
        state.iteration,
        state.seconds,
        start.elapsed().as_secs_f64(),
        weights.display()
    );
}

pub(crate) fn run_train_gate(
    args: &TrainArgs,
    dataset: &Dataset,
    engine: &mut dyn reuse_vos::engine::BackboneEngine,
) -> anyhow::Result<()> {
    let mut model = Model::embedded()?;
    if let Some(p) = &args.decoder {
        model = model.with_decoder_file(p)?;
    }
    let cfg = reuse_vos::jobs::train::gate::GateTrainConfig {
        iterations: args.iterations,
        batch: args.batch,
        learning_rate: args.lr,
        m1: args.m1,
        m2: args.m2,
        ep_t: args.ep_t.unwrap_or(args.iterations),
        clip: args.clip.max(1),
        max_step: args.max_step.max(1),
        min_step: args.min_step.min(args.max_step.max(1)),
        weight_by_gate: args.weight_by_gate,
        snapshot_every: args.snapshot_every,
        state_loss: args.state_loss.max(0.0),
        ..Default::default()
    };
    let bar = progress_bar(0, "train");
    let start = std::time::Instant::now();
    let state = reuse_vos::jobs::train::gate::train_gate(
        dataset,
        engine,
        &model.decoder,
        &model.decoder_config,
        &args.out,
        &cfg,
        args.resume,
        &bar,
    )?;
    bar.finish();
    report_trained(&state, start, &args.out.join("reuse.safetensors"));
    Ok(())
}
