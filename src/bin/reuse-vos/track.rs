//! The commands that track: `segment` (a video or frame folder), `run` (a DAVIS split), `sweep`,
//! `frame` (a frame to paint a first mask on) and `report`.

use crate::shared::*;
use reuse_vos::io::Dataset;
use reuse_vos::track::TrackerKind;
use reuse_vos::track::gate::{GatePolicy, ReuseMode};
use reuse_vos::track::keys::MatchBackbone;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub(crate) struct SegmentArgs {
    /// A video file (anything ffmpeg reads: mp4, mov, webm, mkv...) or a folder of frames
    /// (JPEG/PNG, in name order).
    pub(crate) input: PathBuf,
    /// A mask: `<png>` for the first frame tracked, or `<frame>:<png>` for any frame (repeat
    /// the option). A later mask adds the objects it holds that are new and restarts those that
    /// exist from it. Palette PNG (ids 1..N) or grey PNG (0/255, one object).
    #[arg(long, required = true)]
    pub(crate) mask: Vec<reuse_vos::jobs::segment::MaskSpec>,
    /// Output folder: one palette PNG per frame (named like the frames; a video's frames are
    /// 00000.png, 00001.png, ... by frame index) and stats.json.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// First frame index of the range (default: the first mask, or 0 with --reverse).
    #[arg(long)]
    pub(crate) start: Option<usize>,
    /// Last frame index of the range, inclusive (default: the end of the video, or the last
    /// mask with --reverse).
    #[arg(long)]
    pub(crate) end: Option<usize>,
    /// Propagate backwards, from the last annotated frame to --start.
    #[arg(long)]
    pub(crate) reverse: bool,
    /// Write a video of the frames with the masks drawn on them (.mp4, .mov, .mkv, .webm);
    /// objects reused rather than computed carry an "R" badge.
    #[arg(long)]
    pub(crate) overlay: Option<PathBuf>,
    /// Write soft alpha mattes: <dir>/<object id>/<frame>.png (8-bit grey).
    #[arg(long)]
    pub(crate) matte: Option<PathBuf>,
    /// Continue an interrupted run of the same command from its last finished frame.
    #[arg(long)]
    pub(crate) resume: bool,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
}

#[derive(clap::Args)]
pub(crate) struct FrameArgs {
    /// A video file or a folder of frames, as `segment` reads it.
    pub(crate) input: PathBuf,
    /// The frame's index (0 = the first frame), as `segment --mask <index>:<png>` counts.
    #[arg(long, default_value_t = 0)]
    pub(crate) index: usize,
    /// The PNG to write.
    #[arg(long)]
    pub(crate) out: PathBuf,
}

#[derive(clap::Args)]
pub(crate) struct ReportArgs {
    /// A `segment`, `run` or `sweep` output folder.
    pub(crate) dir: PathBuf,
    /// The HTML file to write.
    #[arg(long)]
    pub(crate) out: PathBuf,
}

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) data: DavisArgs,
    /// Output folder: <out>/<sequence>/<frame>.png and timing.json.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Sequences tracked at the same time (each with threads/jobs threads).
    #[arg(long, default_value_t = 1)]
    pub(crate) jobs: usize,
    /// Track only shard i of n (0 <= i < n: every n-th sequence from the i-th), for a job
    /// array; shards write disjoint files (timing-i-of-n.json), merged by directory union.
    #[arg(long)]
    pub(crate) shard: Option<reuse_vos::jobs::run::Shard>,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
}

#[derive(clap::Args)]
pub(crate) struct SweepArgs {
    #[command(flatten)]
    pub(crate) data: DavisArgs,
    /// Thresholds τ to run.
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = unit_interval,
        default_value = "1,0.9,0.8,0.75,0.7,0.6,0.5,0.3,0.1"
    )]
    pub(crate) taus: Vec<f32>,
    /// Policies to run (learned, copy, fusion, oracle, never).
    #[arg(
        long = "gates",
        value_delimiter = ',',
        value_enum,
        default_value = "motion,learned,copy,fusion,oracle"
    )]
    pub(crate) gates: Vec<GatePolicy>,
    /// Reuse modes to run, for the policies that take the reuse path (learned, fusion, oracle).
    #[arg(long, value_delimiter = ',', value_enum, default_value = "stored")]
    pub(crate) reuse_modes: Vec<ReuseMode>,
    /// Trackers to run side by side (default: --tracker's).
    #[arg(long, value_delimiter = ',', value_enum)]
    pub(crate) trackers: Option<Vec<TrackerKind>>,
    /// Matching backbones to run side by side for the memory and fusion trackers (default:
    /// --backbone's).
    #[arg(long, value_delimiter = ',', value_enum)]
    pub(crate) backbones: Option<Vec<MatchBackbone>>,
    /// Output folder: <tracker>-<policy>[-<mode>]/tau-<τ>/ runs, sweep.csv, sweep.md, sweep.svg.
    #[arg(long)]
    pub(crate) out: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub(crate) jobs: usize,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
}

pub(crate) fn run_segment(args: SegmentArgs) -> anyhow::Result<()> {
    use reuse_vos::jobs::segment::{SegmentJob, SegmentOutcome, segment};
    let job = SegmentJob {
        input: args.input,
        masks: args.mask,
        out: args.out,
        start: args.start,
        end: args.end,
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
pub(crate) fn print_segment_summary(stats: &reuse_vos::track::video::VideoStats, out: &Path) {
    let m = &stats.mean_times;
    println!(
        "per frame after the first (ms): read {:.1}, backbone {:.1}{}, target model {:.1}, gate {:.1}, decoder {:.1}, merge {:.1}, update {:.1}, tracking total {:.1}, write {:.1}",
        m.decode_ms,
        m.backbone_ms,
        if stats.matching.starts_with("dinov2") {
            format!(", DINOv2 keys {:.1}", m.keys_ms)
        } else {
            String::new()
        },
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
        "reuse rate {:.1} % ({}); safety net recomputed {}; {:.2} GMAC per frame",
        100.0 * stats.reuse_rate,
        per_object.join(", "),
        stats.safety,
        stats.gmacs_per_frame
    );
    let k = &stats.frame_kinds;
    if k.reused > 0 {
        println!("{k}");
    }
    let resumed = stats
        .resumed_at
        .map(|f| format!(", resumed at frame {f}"))
        .unwrap_or_default();
    println!(
        "{} frames ({} tracked now{resumed}) in {:.2} s ({:.1} FPS; {:.1} FPS without the {:.2} s of target-model init) at {}x{} on {} ({} backbone; matching {}); masks in {}",
        stats.frames,
        stats.tracked_frames,
        stats.seconds,
        stats.fps,
        stats.fps_without_init,
        stats.init_seconds,
        stats.processing_size.0,
        stats.processing_size.1,
        stats.engine,
        stats.precision,
        stats.matching,
        out.display()
    );
}

pub(crate) fn run_run(args: RunArgs) -> anyhow::Result<()> {
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
    println!("{k}; safety net recomputed {}", s.safety);
    Ok(())
}

/// Frames of every sequence of a dataset (for progress bars).
pub(crate) fn count_frames(dataset: &Dataset) -> anyhow::Result<u64> {
    let mut total = 0u64;
    for s in &dataset.sequences {
        total += dataset.sequence(s)?.frames.len() as u64;
    }
    Ok(total)
}

pub(crate) fn run_sweep(args: SweepArgs) -> anyhow::Result<()> {
    let dataset = args.data.open()?;
    let jobs = args.jobs.clamp(1, dataset.sequences.len().max(1));
    let cfg = tracker_config(&args.model, (args.model.engine.threads / jobs).max(1));
    let trackers = args.trackers.clone().unwrap_or(vec![args.model.tracker]);
    let backbones = args
        .backbones
        .clone()
        .unwrap_or(vec![args.model.matching.backbone]);
    let plan = reuse_vos::jobs::sweep::SweepPlan {
        trackers: &trackers,
        backbones: &backbones,
        radius: args.model.matching.mem_radius,
        reuse_radius: args.model.matching.mem_reuse_radius,
        stale_keys: (
            args.model.matching.stale_keys_tau,
            args.model.matching.stale_keys_age,
        ),
        policies: &args.gates,
        modes: &args.reuse_modes,
        taus: &args.taus,
        gate_for: &|t| gate_settings(&args.model, t),
    };
    let bar = progress_bar(count_frames(&dataset)? * plan.len() as u64, "sweep");
    let model_for = |t: TrackerKind, b: MatchBackbone| {
        load_model_for(&args.model, t, b).map_err(|e| reuse_vos::Error::Invalid(format!("{e:#}")))
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

pub(crate) fn run_frame(args: FrameArgs) -> anyhow::Result<()> {
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
