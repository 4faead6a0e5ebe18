//! The `reuse-vos` command line: a thin layer over the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use reuse_vos::engine::EngineKind;
use reuse_vos::io::{Dataset, DatasetKind, Frame};
use reuse_vos::metrics::{EvalOptions, evaluate};
use reuse_vos::model::Model;
use reuse_vos::model::Weights;
use reuse_vos::model::backbone::{BackboneSpec, normalize};
use reuse_vos::model::online::TargetInput;
use reuse_vos::track::gate::{GatePolicy, GateSettings, ReuseMode};
use reuse_vos::track::safety::SafetyNet;
use reuse_vos::track::tracker::memory::{MemoryConfig, ReadoutSettings};
use reuse_vos::track::{TrackerConfig, TrackerKind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "reuse-vos",
    version,
    about = "Semi-supervised video object segmentation on the CPU with a learned reuse gate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate results with the DAVIS semi-supervised metrics (J, F), as the official toolkit.
    Eval(EvalArgs),
    /// Weight files: import PyTorch checkpoints.
    #[command(subcommand)]
    Weights(WeightsCommand),
    /// Look inside the networks.
    #[command(subcommand)]
    Inspect(InspectCommand),
    /// Segment the objects of a video file or a folder of frames from masks given on any frame.
    Segment(SegmentArgs),
    /// Segment every sequence of a DAVIS split into the DAVIS result layout.
    Run(RunArgs),
    /// Run a split at several reuse thresholds and policies: table (CSV, markdown) and plot.
    Sweep(SweepArgs),
    /// One self-contained HTML report of a segment, run or sweep output folder.
    Report(ReportArgs),
    /// Write one frame of a video as a PNG at its size: the picture to paint a first mask on.
    Frame(FrameArgs),
    /// Train the refinement decoder (backbone frozen) on a DAVIS-2016 split.
    Train(TrainArgs),
    /// Speed benchmarks (median of repeated runs after warm-up).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(clap::Args)]
struct SegmentArgs {
    /// A video file (anything ffmpeg reads: mp4, mov, webm, mkv...) or a folder of frames
    /// (JPEG/PNG, in name order).
    input: PathBuf,
    /// A mask: `<png>` for the first frame tracked, or `<frame>:<png>` for any frame (repeat
    /// the option). A later mask adds the objects it holds that are new and restarts those that
    /// exist from it. Palette PNG (ids 1..N) or grey PNG (0/255, one object).
    #[arg(long, required = true)]
    mask: Vec<reuse_vos::jobs::segment::MaskSpec>,
    /// Output folder: one palette PNG per frame (named like the frames; a video's frames are
    /// 00000.png, 00001.png, ... by frame index) and stats.json.
    #[arg(long)]
    out: PathBuf,
    /// First frame index of the range (default: the first mask, or 0 with --reverse).
    #[arg(long)]
    start: Option<usize>,
    /// Last frame index of the range, inclusive (default: the end of the video, or the last
    /// mask with --reverse).
    #[arg(long)]
    end: Option<usize>,
    /// Track at this size of the longest side; masks are written at the original size.
    #[arg(long)]
    max_side: Option<u32>,
    /// Propagate backwards, from the last annotated frame to --start.
    #[arg(long)]
    reverse: bool,
    /// Write a video of the frames with the masks drawn on them (.mp4, .mov, .mkv, .webm);
    /// objects reused rather than computed carry an "R" badge.
    #[arg(long)]
    overlay: Option<PathBuf>,
    /// Write soft alpha mattes: <dir>/<object id>/<frame>.png (8-bit grey).
    #[arg(long)]
    matte: Option<PathBuf>,
    /// Continue an interrupted run of the same command from its last finished frame.
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(clap::Args)]
struct FrameArgs {
    /// A video file or a folder of frames, as `segment` reads it.
    input: PathBuf,
    /// The frame's index (0 = the first frame), as `segment --mask <index>:<png>` counts.
    #[arg(long, default_value_t = 0)]
    index: usize,
    /// The PNG to write.
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// A `segment`, `run` or `sweep` output folder.
    dir: PathBuf,
    /// The HTML file to write.
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    data: DavisArgs,
    /// Output folder: <out>/<sequence>/<frame>.png and timing.json.
    #[arg(long)]
    out: PathBuf,
    /// Sequences tracked at the same time (each with threads/jobs threads).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Track only shard i of n (0 <= i < n: every n-th sequence from the i-th), for a job
    /// array; shards write disjoint files (timing-i-of-n.json), merged by directory union.
    #[arg(long)]
    shard: Option<reuse_vos::jobs::run::Shard>,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(clap::Args)]
struct SweepArgs {
    #[command(flatten)]
    data: DavisArgs,
    /// Thresholds τ to run.
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = unit_interval,
        default_value = "1,0.9,0.8,0.7,0.6,0.5,0.3,0.1"
    )]
    taus: Vec<f32>,
    /// Policies to run (learned, copy, fusion, oracle, never).
    #[arg(
        long = "gates",
        value_delimiter = ',',
        value_enum,
        default_value = "learned,copy,fusion,oracle"
    )]
    gates: Vec<GatePolicy>,
    /// Reuse modes to run, for the policies that take the reuse path (learned, fusion, oracle).
    #[arg(long, value_delimiter = ',', value_enum, default_value = "stored")]
    reuse_modes: Vec<ReuseMode>,
    /// Trackers to run side by side (default: --tracker's).
    #[arg(long, value_delimiter = ',', value_enum)]
    trackers: Option<Vec<TrackerKind>>,
    /// Output folder: <tracker>-<policy>[-<mode>]/tau-<τ>/ runs, sweep.csv, sweep.md, sweep.svg.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    #[command(flatten)]
    model: ModelArgs,
}

/// The networks and how to run them.
#[derive(clap::Args, Clone)]
struct ModelArgs {
    #[command(flatten)]
    engine: EngineArgs,
    /// What scores each object on computed frames: FRTM's online target model, a memory of
    /// frames matched top-k (REMN-style), or both fused.
    #[arg(long, value_enum, default_value = "frtm")]
    tracker: TrackerKind,
    /// Memory: candidates kept per query cell.
    #[arg(long, default_value_t = 5)]
    mem_top_k: usize,
    /// Memory: softmax temperature on cosine similarities.
    #[arg(long, value_parser = positive, default_value_t = 0.1)]
    mem_temperature: f32,
    /// Memory: local window radius in stride-8 cells for tracked frames.
    #[arg(long, default_value_t = 12)]
    mem_radius: usize,
    /// Memory: match the given frames over the whole frame (else in the local window).
    #[arg(long)]
    mem_global_given: bool,
    /// Memory: tracked frames kept.
    #[arg(long, default_value_t = 7)]
    mem_slots: usize,
    /// Memory: write a tracked frame when 1 − IoU with the last written mask exceeds this...
    #[arg(long, value_parser = unit_interval, default_value_t = 0.1)]
    mem_write_change: f32,
    /// Memory: ...or every this many frames.
    #[arg(long, default_value_t = 5)]
    mem_write_every: usize,
    /// Fusion: the memory's weight in the fused score (the target model's: 1 − w).
    #[arg(long, value_parser = unit_interval, default_value_t = 0.5)]
    fusion_weight: f32,
    /// Skip the refinement decoder: the tracker's score, upsampled, is the probability
    /// (only the memory tracker's score is a probability; it is read so by default until a
    /// decoder is trained for it).
    #[arg(long)]
    no_decoder: bool,
    /// Decoder weights (safetensors, or a training checkpoint .bpk), each with its config
    /// (`.json`) beside it. Default: the embedded trained decoder.
    #[arg(long)]
    decoder: Option<PathBuf>,
    /// Channels of each object's target-model projection.
    #[arg(long, default_value_t = 32)]
    target_channels: usize,
    /// Backbone features the target model reads.
    #[arg(long, value_enum, default_value = "s16")]
    target_input: TargetInput,
    /// Synthetic first-frame views the target model learns from (0..=6).
    #[arg(long, default_value_t = 4)]
    augment: usize,
    /// Refine each target model every this many tracked frames (0 = never, the default:
    /// cross-validated J&F 73.3 against 72.2 refining every 8, and no drift on long videos).
    #[arg(long, default_value_t = 0)]
    update_every: usize,
    /// Weight of each new sample in a target model's memory relative to the previous one
    /// (1/(1 − lr) growth; smaller keeps the given mask's samples weightier).
    #[arg(long, value_parser = below_one, default_value_t = 0.1)]
    target_lr: f32,
    /// Keep the given mask's samples in each target model's memory for the whole video (FRTM
    /// lets later samples replace them).
    #[arg(long)]
    keep_given: bool,
    /// Reuse-path weights (safetensors). Default: the embedded trained ones.
    #[arg(long)]
    reuse: Option<PathBuf>,
    /// When a frame reuses the last computed one: the learned gate, never (baseline), copy the
    /// previous mask, fusion of copy and translation, or the ground-truth oracle (`run` only).
    #[arg(long, value_enum, default_value = "learned")]
    gate: GatePolicy,
    /// Reuse when P(reuse) > τ (oracle: when the ground-truth IoU > τ); τ = 1 never reuses.
    #[arg(long, value_parser = unit_interval, default_value_t = 0.7)]
    tau: f32,
    /// `fusion`: copy the previous mask when P(reuse) > τ2, take the reuse path between τ and
    /// τ2.
    #[arg(long, value_parser = unit_interval, default_value_t = 0.9)]
    tau2: f32,
    /// Turn off the safety net that recomputes a frame the gate would reuse when the object
    /// reused --max-streak frames in a row, when it moved more than --max-motion or
    /// changed more than --max-change, or
    /// when the reused mask jumped (--max-area-ratio, --max-shift).
    #[arg(long)]
    no_safety_net: bool,
    /// Safety net: most reused frames in a row per object.
    #[arg(long, default_value_t = SafetyNet::default().max_streak)]
    max_streak: usize,
    /// Safety net: largest motion of the object since its last computed frame, as a share of
    /// its size (√area).
    #[arg(long, value_parser = positive, default_value_t = SafetyNet::default().max_motion)]
    max_motion: f32,
    /// Safety net: largest mean absolute luma change (0..1) of the object's 4×4-pixel cells
    /// where it was on its last computed frame.
    #[arg(long, value_parser = positive, default_value_t = SafetyNet::default().max_change)]
    max_change: f32,
    /// Safety net: largest area ratio (either way) of a reused mask against the last computed.
    #[arg(long, value_parser = positive, default_value_t = SafetyNet::default().max_area_ratio)]
    max_area_ratio: f32,
    /// Safety net: largest move of a reused mask's centre, as a share of √area.
    #[arg(long, value_parser = positive, default_value_t = SafetyNet::default().max_shift)]
    max_shift: f32,
    /// What a reused frame does with the last computed frame's score map and decoder state:
    /// use them as stored, add the Δ-generator's change to the score, or also translate the
    /// state with the refine-translator (the paper's path). The shallow decoder stages always
    /// run on the current frame.
    #[arg(long, value_enum, default_value = "stored")]
    reuse_mode: ReuseMode,
}

#[derive(clap::Args)]
struct TrainArgs {
    /// The training sequences (DAVIS 2016), e.g. `--set splits/fit.txt`.
    #[command(flatten)]
    data: DavisArgs,
    /// The tracker whose score the decoder learns to read: FRTM's target model, the memory's
    /// propagated probability (propagated from every reference frame over the cached
    /// features, its own errors included), or both (fusion: two channels).
    #[arg(long, value_enum, default_value = "frtm")]
    tracker: TrackerKind,
    /// Output folder: checkpoints, loss.csv, decoder.safetensors.
    #[arg(long)]
    out: PathBuf,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    resume: bool,
    /// Cross-validation: a folder of `fit-<k>.txt` lists (e.g. splits/folds). One decoder per
    /// fold, trained on its list, into `<out>/fold-<k>/`, from one cache of the data (which must
    /// hold every fold's sequences). Score each on its `dev-<k>.txt` with `run --set`.
    #[arg(long)]
    folds: Option<PathBuf>,
    /// With --folds: only these folds (e.g. 1,2,3,4).
    #[arg(long, value_delimiter = ',', requires = "folds")]
    fold_ids: Option<Vec<usize>>,
    #[arg(long, default_value_t = 3000)]
    iterations: usize,
    #[arg(long, default_value_t = 4)]
    batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Decoder channels at strides 32,16,8,4.
    #[arg(long, value_delimiter = ',', default_value = "32,32,32,16")]
    channels: Vec<usize>,
    /// Share of training crops centred on the object (the rest anywhere in the frame).
    #[arg(long, default_value_t = 0.5)]
    object_crops: f64,
    /// The learning rate drops ×0.1 after this fraction of the iterations (1 = never).
    #[arg(long, default_value_t = 0.75)]
    decay_at: f64,
    /// Keep the weights every this many iterations (decoder-<iteration>.safetensors); 0 = never.
    #[arg(long, default_value_t = 1000)]
    snapshot_every: usize,
    /// What to train: the refinement decoder, or the reuse path over a frozen decoder.
    #[arg(long, value_enum, default_value = "decoder")]
    stage: Stage,
    /// `--stage gate`: the frozen decoder (default: the embedded one).
    #[arg(long)]
    decoder: Option<PathBuf>,
    /// `--stage gate`: margin m1 (P_target = max(m, IoU), m rises to m1 at iteration --ep-t).
    #[arg(long, default_value_t = 0.5)]
    m1: f64,
    /// `--stage gate`: margin m2 (no loss while |P_gate − P_target| < m2).
    #[arg(long, default_value_t = 0.0)]
    m2: f64,
    /// `--stage gate`: the iteration at which m reaches m1 (the paper's ep_T, in iterations).
    #[arg(long)]
    ep_t: Option<usize>,
    /// `--stage gate`: frames after the reference in each clip.
    #[arg(long, default_value_t = 4)]
    clip: usize,
    /// `--stage gate`: weight of an extra loss pulling the translated decoder state towards
    /// the deep stages' state (0 = the paper's loss).
    #[arg(long, default_value_t = 0.0)]
    state_loss: f64,
    /// `--stage gate`: largest gap between consecutive clip frames.
    #[arg(long, default_value_t = 10)]
    max_step: usize,
    /// `--stage gate`: smallest gap (0 lets a clip repeat a frame: nothing changed).
    #[arg(long, default_value_t = 1)]
    min_step: usize,
    /// `--stage gate`: weight each sample's Δ, BCE and state losses by its (detached)
    /// P(reuse), so the reuse path learns on the frames it will be used on (not in the paper).
    #[arg(long)]
    weight_by_gate: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Stage {
    Decoder,
    Gate,
}

#[derive(Subcommand)]
enum WeightsCommand {
    /// Export a decoder training checkpoint (.bpk) as safetensors (the shipped format).
    ExportDecoder {
        checkpoint: PathBuf,
        output: PathBuf,
    },
    /// Average several weight files of the same network (training snapshots) into one.
    Average {
        /// The safetensors file to write.
        #[arg(long)]
        out: PathBuf,
        /// Two or more safetensors files.
        #[arg(required = true, num_args = 2..)]
        inputs: Vec<PathBuf>,
    },
    /// Convert a PyTorch checkpoint (legacy or zip format) to safetensors (f32).
    Import {
        /// The .pth / .pt file.
        input: PathBuf,
        /// The .safetensors file to write.
        output: PathBuf,
    },
}

/// Options shared by the commands that run networks.
#[derive(clap::Args, Clone)]
struct EngineArgs {
    /// Engine: ort (ONNX Runtime) or burn. Default: ort when libonnxruntime loads, else burn.
    #[arg(long, value_enum)]
    engine: Option<EngineKind>,
    /// Backbone weights (safetensors, torchvision names). Default: the embedded MobileNetV2.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Threads for the engine.
    #[arg(long, value_parser = thread_count, default_value_t = 2)]
    threads: usize,
}

#[derive(Subcommand)]
enum InspectCommand {
    /// Write the target model's first-frame training views (real + synthetic) as PNGs.
    Augment {
        image: PathBuf,
        /// The object's mask (any non-zero id counts as the object).
        #[arg(long)]
        mask: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the four backbone taps of one image (s4, s8, s16, s32; f32 NCHW) to safetensors.
    Features {
        image: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Backbone to stride 32 and to stride 8, on each available engine (or the one given).
    Backbone {
        /// Frame to run on (default: a 854x480 DAVIS frame from ../shared if present, else a
        /// synthetic frame of --size).
        #[arg(long)]
        image: Option<PathBuf>,
        /// WIDTHxHEIGHT of the synthetic frame.
        #[arg(long, default_value = "854x480")]
        size: String,
        /// Timed runs per measurement (after 2 warm-up runs).
        #[arg(long, default_value_t = 9)]
        runs: usize,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

/// Which DAVIS data a command reads: the same options, with the same defaults, on every command.
#[derive(clap::Args, Clone)]
struct DavisArgs {
    /// DAVIS root (JPEGImages/480p, Annotations/480p).
    #[arg(long)]
    davis: PathBuf,
    /// 2016: grey annotations, one object per sequence; 2017: palette annotations, ids 1..N.
    /// Default: told by the root's first annotation (grey or palette).
    #[arg(long, value_parser = clap::value_parser!(u16).range(2016..=2017))]
    year: Option<u16>,
    /// Set name (ImageSets/2017/<set>.txt, or ImageSets/480p/<set>.txt for 2016) or a list
    /// file, e.g. splits/fit.txt. Default: every annotated sequence.
    #[arg(long, conflicts_with = "sequences")]
    set: Option<String>,
    /// Comma-separated sequence names.
    #[arg(long, value_delimiter = ',')]
    sequences: Option<Vec<String>>,
}

impl DavisArgs {
    fn kind(&self) -> anyhow::Result<DatasetKind> {
        Ok(match self.year {
            Some(2016) => DatasetKind::Davis2016,
            Some(_) => DatasetKind::Davis2017,
            None => DatasetKind::detect(&self.davis)?,
        })
    }

    fn open(&self) -> anyhow::Result<Dataset> {
        let (set, seqs) = (self.set.as_deref(), self.sequences.as_deref());
        Ok(Dataset::open(&self.davis, self.kind()?, set, seqs)?)
    }

    /// The name a selection is reported under: the set name, a list file's stem, or "all".
    fn label(&self) -> String {
        match &self.set {
            Some(s) => Path::new(s)
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| s.to_string()),
            None if self.sequences.is_some() => "custom".into(),
            None => "all".into(),
        }
    }
}

#[derive(clap::Args)]
struct EvalArgs {
    /// The ground truth (only Annotations/480p is read; JPEGImages are not needed). With 2016,
    /// all non-zero result ids are merged into the one object.
    #[command(flatten)]
    data: DavisArgs,
    /// Results folder: <results>/<sequence>/<frame>.png, indexed PNGs.
    #[arg(long)]
    results: PathBuf,
    /// Also write every per-frame value at full precision to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where to write the two CSVs (default: the results folder, as the toolkit does).
    #[arg(long)]
    csv_dir: Option<PathBuf>,
}

/// A number in [0, 1] (NaN and infinities refused).
fn unit_interval(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} is not in [0, 1]"))
    }
}

/// A number in [0, 1).
fn below_one(s: &str) -> Result<f32, String> {
    let v = unit_interval(s)?;
    if v < 1.0 {
        Ok(v)
    } else {
        Err(format!("{s} must be below 1"))
    }
}

/// A finite number above 0.
fn positive(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} must be a finite number above 0"))
    }
}

/// 1 up to four threads per core of this machine (more only thrashes, and ONNX Runtime
/// allocates per thread).
fn thread_count(s: &str) -> Result<usize, String> {
    let v: usize = s.parse().map_err(|e| format!("{e}"))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if (1..=4 * cores).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{s} threads: use 1 to {} on this machine ({cores} cores)",
            4 * cores
        ))
    }
}

fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    // Outputs that cannot be written are told before the evaluation, not after half of them.
    if let Some(json) = &args.json {
        let dir = json.parent().filter(|d| !d.as_os_str().is_empty());
        if json.is_dir() || dir.is_some_and(|d| !d.is_dir()) {
            anyhow::bail!(
                "--json {}: not a file in an existing folder",
                json.display()
            );
        }
    }
    let dataset = args.data.open()?;
    let frames: u64 = dataset
        .sequences
        .iter()
        .map(|s| {
            std::fs::read_dir(dataset.annotations_dir(s))
                .map(|d| d.count().saturating_sub(2) as u64)
                .unwrap_or(0)
        })
        .sum();
    let bar = progress_bar(frames, "eval");
    let start = std::time::Instant::now();
    let report = evaluate(
        &dataset,
        &EvalOptions {
            results: args.results.clone(),
        },
        Some(&bar),
    )?;
    bar.finish_and_clear();
    let label = args.data.label();
    let csv_dir = args.csv_dir.as_deref().unwrap_or(&args.results);
    // The JSON first: if the CSVs then fail, the JSON goes too (all outputs, or none).
    if let Some(json) = &args.json {
        let text = serde_json::to_string_pretty(&report.to_json())?;
        reuse_vos::io::atomic::write_bytes(json, text.as_bytes())?;
    }
    let (g, p) = match report.write_csvs(csv_dir, &label) {
        Ok(paths) => paths,
        Err(e) => {
            if let Some(json) = &args.json {
                let _ = std::fs::remove_file(json);
            }
            return Err(e.into());
        }
    };
    print!("{}", report.table(&label));
    eprintln!(
        "evaluated {} objects in {} sequences in {:.2} s; wrote {} and {}",
        report.objects.len(),
        dataset.sequences.len(),
        start.elapsed().as_secs_f64(),
        g.display(),
        p.display()
    );
    Ok(())
}

fn backbone_spec(args: &EngineArgs) -> anyhow::Result<BackboneSpec> {
    Ok(match &args.weights {
        Some(p) => BackboneSpec::from_weights(&Weights::load(p)?)?,
        None => BackboneSpec::embedded()?,
    })
}

fn load_model(args: &ModelArgs) -> anyhow::Result<Model> {
    load_model_for(args, args.tracker)
}

/// The embedded networks with `tracker`'s decoder, and the user's overrides.
fn load_model_for(args: &ModelArgs, tracker: TrackerKind) -> anyhow::Result<Model> {
    let mut model = Model::embedded_for(&tracker.to_string())?;
    if let Some(p) = &args.decoder {
        model = model.with_decoder_file(p)?;
    }
    if let Some(w) = &args.engine.weights {
        model = model.with_backbone_weights(w)?;
    }
    if let Some(r) = &args.reuse {
        model = model.with_reuse_file(r)?;
    }
    Ok(model)
}

fn tracker_config(args: &ModelArgs, threads: usize) -> TrackerConfig {
    let mut cfg = TrackerConfig {
        tracker: args.tracker,
        engine: args.engine.engine,
        threads,
        augment: args.augment.min(6),
        ..Default::default()
    };
    cfg.memory = MemoryConfig {
        readout: ReadoutSettings {
            top_k: args.mem_top_k.max(1),
            temperature: args.mem_temperature.max(1e-4),
            radius: args.mem_radius,
            global_given: args.mem_global_given,
        },
        slots: args.mem_slots,
        write_change: args.mem_write_change,
        write_every: args.mem_write_every.max(1),
    };
    cfg.fusion.memory_weight = args.fusion_weight.clamp(0.0, 1.0);
    cfg.decoder = !args.no_decoder;
    cfg.target.channels = args.target_channels.max(1);
    cfg.target.input = args.target_input;
    cfg.target.learning_rate = args.target_lr.clamp(0.0, 0.99);
    cfg.target.keep_given = args.keep_given;
    cfg.gate = GateSettings {
        policy: args.gate,
        tau: args.tau,
        tau2: args.tau2,
        mode: args.reuse_mode,
        safety: SafetyNet {
            enabled: !args.no_safety_net,
            max_streak: args.max_streak,
            max_motion: args.max_motion,
            max_change: args.max_change,
            max_area_ratio: args.max_area_ratio,
            max_shift: args.max_shift,
        },
    };
    cfg.target.update_every = if args.update_every == 0 {
        usize::MAX
    } else {
        args.update_every
    };
    cfg
}

fn run_segment(args: SegmentArgs) -> anyhow::Result<()> {
    use reuse_vos::jobs::segment::{SegmentJob, SegmentOutcome, segment};
    let job = SegmentJob {
        input: args.input,
        masks: args.mask,
        out: args.out,
        start: args.start,
        end: args.end,
        max_side: args.max_side,
        reverse: args.reverse,
        overlay: args.overlay,
        matte: args.matte,
        resume: args.resume,
    };
    let model = load_model(&args.model)?;
    let bar = std::sync::OnceLock::<indicatif::ProgressBar>::new();
    let outcome = segment(
        &model,
        &tracker_config(&args.model, args.model.engine.threads),
        &job,
        &mut |n| {
            let b = match n {
                Some(n) => progress_bar(n as u64, "segment"),
                None => indicatif::ProgressBar::new_spinner().with_message("segment"),
            };
            let _ = bar.set(b);
        },
        &|| {
            if let Some(b) = bar.get() {
                b.inc(1);
            }
        },
    );
    if let Some(b) = bar.get() {
        b.finish_and_clear();
    }
    let stats = match outcome? {
        SegmentOutcome::AlreadyComplete => {
            println!(
                "{}: already complete (stats.json present, nothing to resume)",
                job.out.display()
            );
            return Ok(());
        }
        SegmentOutcome::Done(stats) => stats,
    };
    print_segment_summary(&stats, &job.out);
    for w in &stats.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(o) = &job.overlay {
        println!("overlay video: {}", o.display());
    }
    Ok(())
}

/// What a finished `segment` prints: time per stage, reuse, speed, where the masks are.
fn print_segment_summary(stats: &reuse_vos::track::video::VideoStats, out: &Path) {
    let m = &stats.mean_times;
    println!(
        "per frame after the first (ms): read {:.1}, backbone {:.1}, target model {:.1}, gate {:.1}, decoder {:.1}, merge {:.1}, update {:.1}, tracking total {:.1}, write {:.1}",
        m.decode_ms,
        m.backbone_ms,
        m.target_ms,
        m.gate_ms,
        m.decoder_ms,
        m.merge_ms,
        m.update_ms,
        m.total_ms,
        m.output_ms
    );
    let per_object: Vec<String> = stats
        .reuse
        .iter()
        .map(|(id, r)| format!("object {id} {:.1} %", 100.0 * r.rate))
        .collect();
    println!(
        "reuse rate {:.1} % ({}); safety net recomputed {} object-frames (streak {}, motion {}, jump {}); {:.2} GMAC per frame",
        100.0 * stats.reuse_rate,
        per_object.join(", "),
        stats.safety.total(),
        stats.safety.streak,
        stats.safety.motion,
        stats.safety.jump,
        stats.gmacs_per_frame
    );
    let k = &stats.frame_kinds;
    if k.reused > 0 {
        println!(
            "{:.1} ms per computed frame ({}), {:.1} ms per frame where every object reused ({})",
            k.computed_ms, k.computed, k.reused_ms, k.reused
        );
    }
    let resumed = stats
        .resumed_at
        .map(|f| format!(", resumed at frame {f}"))
        .unwrap_or_default();
    println!(
        "{} frames ({} tracked now{resumed}) in {:.2} s ({:.1} FPS; {:.1} FPS without the {:.2} s of target-model init) at {}x{} on {}; masks in {}",
        stats.frames,
        stats.tracked_frames,
        stats.seconds,
        stats.fps,
        stats.fps_without_init,
        stats.init_seconds,
        stats.processing_size.0,
        stats.processing_size.1,
        stats.engine,
        out.display()
    );
}

fn run_run(args: RunArgs) -> anyhow::Result<()> {
    let mut dataset = args.data.open()?;
    if let Some(shard) = args.shard {
        dataset.sequences = shard.select(&dataset.sequences);
        anyhow::ensure!(
            !dataset.sequences.is_empty(),
            "shard {}/{}: no sequence falls in it",
            shard.index,
            shard.count
        );
    }
    let model = load_model(&args.model)?;
    let jobs = args.jobs.clamp(1, dataset.sequences.len().max(1));
    let threads = (args.model.engine.threads / jobs).max(1);
    let cfg = tracker_config(&args.model, threads);
    let total = count_frames(&dataset)?;
    let bar = progress_bar(total, "run");
    let s = reuse_vos::jobs::run::run_dataset(
        &model,
        &cfg,
        &dataset,
        &args.out,
        jobs,
        args.shard,
        &|| bar.inc(1),
    )?;
    bar.finish_and_clear();
    println!(
        "{} sequences, {} frames in {:.1} s: mean per-sequence FPS {:.2}, throughput {:.2} FPS, reuse rate {:.1} %, {:.2} GMAC/frame; results in {}",
        s.sequences.len(),
        s.frames,
        s.wall_seconds,
        s.mean_fps,
        s.throughput_fps,
        100.0 * s.reuse_rate,
        s.gmacs_per_frame,
        args.out.display()
    );
    let k = &s.frame_kinds;
    println!(
        "{:.1} ms per computed frame ({}), {:.1} ms per frame where every object reused ({}); safety net recomputed {} object-frames (streak {}, motion {}, jump {})",
        k.computed_ms,
        k.computed,
        k.reused_ms,
        k.reused,
        s.safety.total(),
        s.safety.streak,
        s.safety.motion,
        s.safety.jump
    );
    Ok(())
}

/// Frames of every sequence of a dataset (for progress bars).
fn count_frames(dataset: &Dataset) -> anyhow::Result<u64> {
    let mut total = 0u64;
    for s in &dataset.sequences {
        total += dataset.sequence(s)?.frames.len() as u64;
    }
    Ok(total)
}

fn run_sweep(args: SweepArgs) -> anyhow::Result<()> {
    let dataset = args.data.open()?;
    let jobs = args.jobs.clamp(1, dataset.sequences.len().max(1));
    let cfg = tracker_config(&args.model, (args.model.engine.threads / jobs).max(1));
    let trackers = args.trackers.clone().unwrap_or(vec![args.model.tracker]);
    let plan = reuse_vos::jobs::sweep::SweepPlan {
        trackers: &trackers,
        policies: &args.gates,
        modes: &args.reuse_modes,
        taus: &args.taus,
    };
    let bar = progress_bar(count_frames(&dataset)? * plan.len() as u64, "sweep");
    let model_for = |t: TrackerKind| {
        load_model_for(&args.model, t).map_err(|e| reuse_vos::Error::Invalid(format!("{e:#}")))
    };
    let rows = reuse_vos::jobs::sweep::sweep(
        &model_for,
        &cfg,
        &dataset,
        &plan,
        &args.out,
        jobs,
        &|label| {
            bar.set_message(label.to_string());
            bar.inc(1)
        },
    )?;
    bar.finish_and_clear();
    print!(
        "{}",
        std::fs::read_to_string(args.out.join(reuse_vos::output::names::SWEEP_MD))
            .unwrap_or_default()
    );
    println!(
        "{} runs; sweep.csv, sweep.md and sweep.svg in {}",
        rows.len(),
        args.out.display()
    );
    Ok(())
}

fn run_train(args: TrainArgs) -> anyhow::Result<()> {
    if args.data.kind()? != DatasetKind::Davis2016 {
        anyhow::bail!(
            "{}: training reads DAVIS 2016 (grey annotations, one object per sequence)",
            args.data.davis.display()
        );
    }
    let dataset = args.data.open()?;
    let spec = backbone_spec(&args.engine)?;
    let mut engine = reuse_vos::engine::backbone(&spec, args.engine.engine, args.engine.threads)?;
    if args.stage == Stage::Gate {
        return run_train_gate(&args, &dataset, engine.as_mut());
    }
    let channels: [usize; 4] = args
        .channels
        .clone()
        .try_into()
        .map_err(|_| anyhow::anyhow!("--channels needs 4 values"))?;
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
            memory: Default::default(),
        },
        ..Default::default()
    };
    let bar = progress_bar(0, "train");
    let start = std::time::Instant::now();
    if let Some(dir) = &args.folds {
        let folds = read_folds(dir, args.fold_ids.as_deref())?;
        let states = reuse_vos::jobs::train::train_folds(
            &dataset,
            engine.as_mut(),
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
    let state = reuse_vos::jobs::train::train(
        &dataset,
        engine.as_mut(),
        &args.out,
        &cfg,
        args.resume,
        &bar,
    )?;
    bar.finish();
    report_trained(&state, start, &args.out.join("decoder.safetensors"));
    Ok(())
}

/// The folds of a folder of `fit-<k>.txt` lists, in order of k (only `ids`, when given).
fn read_folds(
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

fn report_trained(
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

fn run_train_gate(
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

fn run_weights(cmd: WeightsCommand) -> anyhow::Result<()> {
    match cmd {
        WeightsCommand::ExportDecoder { checkpoint, output } => {
            let model = Model::embedded()?.with_decoder_file(&checkpoint)?;
            reuse_vos::model::load::save_with_config(
                &model.decoder,
                &model.decoder_config,
                &output,
            )?;
            println!("wrote {}", output.display());
            Ok(())
        }
        WeightsCommand::Average { out, inputs } => {
            let sets = inputs
                .iter()
                .map(|p| Weights::load(p))
                .collect::<Result<Vec<_>, _>>()?;
            let mut meta = std::collections::BTreeMap::new();
            let names: Vec<String> = inputs
                .iter()
                .map(|p| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                })
                .collect();
            meta.insert("averaged_from".into(), names.join(","));
            let bytes = Weights::average(&sets)?.to_safetensors(meta)?;
            // The inputs share one network config (averaging checks their shapes): keep it.
            let config: serde_json::Value = reuse_vos::model::load::read_config(&inputs[0])?;
            reuse_vos::model::load::save_config(&config, &out)?;
            reuse_vos::io::atomic::write_bytes(&out, &bytes)?;
            println!("averaged {} files into {}", inputs.len(), out.display());
            Ok(())
        }
        WeightsCommand::Import { input, output } => {
            let (weights, skipped) = Weights::import_pytorch(&input)?;
            let bytes =
                std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
            let sha = sha256_hex(&bytes);
            let mut meta = std::collections::BTreeMap::new();
            meta.insert(
                "source".into(),
                input
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
            meta.insert("source_sha256".into(), sha.clone());
            let out = weights.to_safetensors(meta)?;
            reuse_vos::io::atomic::write_bytes(&output, &out)?;
            let values: usize = weights.tensors.values().map(|t| t.data.len()).sum();
            println!(
                "imported {} tensors ({values} values) from {} (sha256 {sha}) into {}",
                weights.tensors.len(),
                input.display(),
                output.display()
            );
            if !skipped.is_empty() {
                println!(
                    "left out {} non-float tensors, e.g. {}",
                    skipped.len(),
                    skipped[0]
                );
            }
            Ok(())
        }
    }
}

fn run_inspect(cmd: InspectCommand) -> anyhow::Result<()> {
    match cmd {
        InspectCommand::Augment { image, mask, out } => {
            let frame = Frame::load(&image)?;
            let m = reuse_vos::io::Mask::read_binary(&mask)?;
            m.check_size(frame.width, frame.height, &mask)?;
            let views = reuse_vos::model::online::augment::views(&frame, &m.ids, 6);
            for (i, v) in views.iter().enumerate() {
                let img =
                    image::RgbImage::from_raw(v.frame.width, v.frame.height, v.frame.rgb.clone())
                        .ok_or_else(|| anyhow::anyhow!("bad view size"))?;
                let p = out.join(format!("view{i}.png"));
                std::fs::create_dir_all(&out)?;
                img.save(&p)?;
                let mm = reuse_vos::io::Mask {
                    width: v.frame.width,
                    height: v.frame.height,
                    ids: v.mask.clone(),
                };
                mm.save(&out.join(format!("view{i}_mask.png")))?;
            }
            println!("wrote {} views to {}", views.len(), out.display());
            Ok(())
        }
        InspectCommand::Features { image, out, engine } => {
            let frame = Frame::load(&image)?;
            let spec = backbone_spec(&engine)?;
            let mut net = reuse_vos::engine::backbone(&spec, engine.engine, engine.threads)?;
            let pyramid = net.pyramid(&normalize(&frame))?;
            let mut w = Weights::default();
            for (name, map) in pyramid.named() {
                w.tensors.insert(
                    name.to_string(),
                    reuse_vos::model::weights::WeightTensor {
                        shape: map.shape().to_vec(),
                        data: map.data.clone(),
                    },
                );
            }
            let mut meta = std::collections::BTreeMap::new();
            meta.insert("image".into(), image.display().to_string());
            meta.insert("engine".into(), net.kind().to_string());
            reuse_vos::io::atomic::write_bytes(&out, &w.to_safetensors(meta)?)?;
            for (name, map) in pyramid.named() {
                println!("{name}: {:?}", map.shape());
            }
            println!("engine {}; wrote {}", net.kind(), out.display());
            Ok(())
        }
    }
}

fn median_ms(
    mut f: impl FnMut() -> anyhow::Result<()>,
    runs: usize,
) -> anyhow::Result<(f64, f64, f64)> {
    for _ in 0..2 {
        f()?;
    }
    let mut t = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = std::time::Instant::now();
        f()?;
        t.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    t.sort_by(f64::total_cmp);
    Ok((t[t.len() / 2], t[0], t[t.len() - 1]))
}

fn run_bench(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Backbone {
            image,
            size,
            runs,
            engine,
        } => {
            let default_frame =
                PathBuf::from("../shared/data/davis2016-train/JPEGImages/480p/bear/00000.jpg");
            let frame = match image {
                Some(p) => Frame::load(&p)?,
                None if default_frame.is_file() => Frame::load(&default_frame)?,
                None => {
                    let (w, h) = size
                        .split_once('x')
                        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
                        .ok_or_else(|| {
                            anyhow::anyhow!("--size must be WIDTHxHEIGHT, got {size:?}")
                        })?;
                    let rgb = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
                    Frame {
                        width: w,
                        height: h,
                        rgb,
                    }
                }
            };
            let spec = backbone_spec(&engine)?;
            let input = normalize(&frame);
            let kinds = match engine.engine {
                Some(k) => vec![k],
                None => vec![EngineKind::Ort, EngineKind::Burn],
            };
            println!(
                "backbone MobileNetV2, {}x{}, {} threads, median of {runs} runs after 2 warm-up (min..max) in ms",
                frame.width, frame.height, engine.threads
            );
            for kind in kinds {
                let mut net = match reuse_vos::engine::backbone(&spec, Some(kind), engine.threads) {
                    Ok(n) => n,
                    Err(e) => {
                        println!("{kind:>5}: not available ({e})");
                        continue;
                    }
                };
                let (full, flo, fhi) =
                    median_ms(|| net.pyramid(&input).map(|_| ()).map_err(Into::into), runs)?;
                let (low, llo, lhi) =
                    median_ms(|| net.low(&input).map(|_| ()).map_err(Into::into), runs)?;
                let s8 = net.low(&input)?.s8;
                let (high, hlo, hhi) =
                    median_ms(|| net.high(&s8).map(|_| ()).map_err(Into::into), runs)?;
                println!(
                    "{kind:>5}: to s32 {full:7.1} ({flo:.1}..{fhi:.1})   to s8 {low:7.1} ({llo:.1}..{lhi:.1})   s8 to s32 {high:7.1} ({hlo:.1}..{hhi:.1})"
                );
            }
            Ok(())
        }
    }
}

/// Hex SHA-256 of bytes (for the weight manifest).
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn run_frame(args: FrameArgs) -> anyhow::Result<()> {
    let e = reuse_vos::jobs::frame::export(&args.input, args.index, &args.out)?;
    println!(
        "frame {} ({}x{}) written to {}\nPaint the object(s) on it at the same size (grey PNG: white on black for one \
         object; palette PNG: ids 1..N), then: reuse-vos segment {} --mask {}:<mask.png> --out <folder>",
        e.index,
        e.width,
        e.height,
        e.out.display(),
        args.input.display(),
        e.index
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval(args) => run_eval(args).context("eval failed"),
        Command::Weights(cmd) => run_weights(cmd),
        Command::Inspect(cmd) => run_inspect(cmd),
        Command::Bench(cmd) => run_bench(cmd),
        Command::Train(args) => run_train(args),
        Command::Segment(args) => run_segment(args),
        Command::Report(args) => reuse_vos::output::report::write(&args.dir, &args.out)
            .map(|()| println!("report written to {}", args.out.display()))
            .map_err(anyhow::Error::from),
        Command::Frame(args) => run_frame(args),
        Command::Run(args) => run_run(args),
        Command::Sweep(args) => run_sweep(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, each said once (our errors already quote the OS error they wrap).
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
