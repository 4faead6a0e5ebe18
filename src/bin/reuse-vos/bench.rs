//! `bench`: speed figures of the networks — the backbone per engine, and the full computed path
//! (backbone + decoder) per engine next to the same network and weights in PyTorch.

mod torch;

use crate::shared::*;
use clap::Subcommand;
use reuse_vos::engine::EngineKind;
use reuse_vos::io::Frame;
use reuse_vos::model::backbone::normalize;
use reuse_vos::model::int8::Int8Plan;
use reuse_vos::model::{FeatureMap, Model};
use std::path::PathBuf;

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Backbone to stride 32 and to stride 8, on each available engine (or the one given).
    Backbone {
        #[command(flatten)]
        frame: BenchFrame,
        /// Timed runs per measurement (after 2 warm-up runs).
        #[arg(long, default_value_t = 9)]
        runs: usize,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// The full computed path (backbone to stride 32, then the fusion decoder) at the tracking
    /// size, on ONNX Runtime in f32 and int8 (and Burn with --engine burn), next to the same
    /// network and weights in PyTorch when the Python given can import torch; PyTorch's logits
    /// are checked against ONNX Runtime's first.
    Networks {
        #[command(flatten)]
        frame: BenchFrame,
        /// Longest side the frame is scaled to, as the tracker does (0: as it is).
        #[arg(long, default_value_t = 640)]
        max_side: u32,
        /// Timed runs per measurement (after 2 warm-up runs).
        #[arg(long, default_value_t = 9)]
        runs: usize,
        /// The Python that runs PyTorch (default: $REUSE_VOS_PYTHON, else python3).
        #[arg(long)]
        python: Option<PathBuf>,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

/// The frame a benchmark runs on.
#[derive(clap::Args, Clone)]
pub(crate) struct BenchFrame {
    /// Frame to run on (default: a 854x480 DAVIS frame from ../shared if present, else a
    /// synthetic frame of --size).
    #[arg(long)]
    image: Option<PathBuf>,
    /// WIDTHxHEIGHT of the synthetic frame.
    #[arg(long, default_value = "854x480")]
    size: String,
}

impl BenchFrame {
    fn load(&self) -> anyhow::Result<Frame> {
        let default_frame =
            PathBuf::from("../shared/data/davis2016-train/JPEGImages/480p/bear/00000.jpg");
        Ok(match &self.image {
            Some(p) => Frame::load(p)?,
            None if default_frame.is_file() => Frame::load(&default_frame)?,
            None => {
                let size = &self.size;
                let (w, h) = size
                    .split_once('x')
                    .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
                    .filter(|&(w, h)| w >= 32 && h >= 32)
                    .ok_or_else(|| {
                        anyhow::anyhow!("--size must be WIDTHxHEIGHT, at least 32x32, got {size:?}")
                    })?;
                let rgb = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
                Frame {
                    width: w,
                    height: h,
                    rgb,
                }
            }
        })
    }
}

pub(crate) fn median_ms(
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

/// `median (min..max)`.
fn shown((m, lo, hi): (f64, f64, f64)) -> String {
    format!("{m:7.1} ({lo:.1}..{hi:.1})")
}

/// The engines to time: the one asked for, or ONNX Runtime and Burn; ONNX Runtime also in int8
/// when there is a plan for these weights.
fn variants(
    engine: &EngineArgs,
    burn_default: bool,
) -> anyhow::Result<Vec<(EngineKind, Option<Int8Plan>)>> {
    let kinds = match engine.engine {
        Some(k) => vec![k],
        None if burn_default => vec![EngineKind::Ort, EngineKind::Burn],
        None => vec![EngineKind::Ort],
    };
    let plan = match (&engine.int8_plan, &engine.weights) {
        (Some(p), _) => Some(Int8Plan::load(p)?),
        (None, None) => Int8Plan::embedded()?,
        (None, Some(_)) => None,
    };
    Ok(kinds
        .iter()
        .flat_map(|&k| match (k, &plan) {
            (EngineKind::Ort, Some(p)) => vec![(k, None), (k, Some(p.clone()))],
            _ => vec![(k, None)],
        })
        .collect())
}

fn label(kind: EngineKind, int8: &Option<Int8Plan>) -> String {
    match int8 {
        Some(_) => format!("{kind} int8"),
        None => format!("{kind} f32"),
    }
}

pub(crate) fn run_bench(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Backbone {
            frame,
            runs,
            engine,
        } => backbone(&frame.load()?, runs, &engine),
        BenchCommand::Networks {
            frame,
            max_side,
            runs,
            python,
            engine,
        } => {
            let frame = frame.load()?;
            let limit = (max_side > 0).then_some(max_side);
            let (w, h) = reuse_vos::track::video::processing_size(frame.width, frame.height, limit);
            let frame = match (w, h) == (frame.width, frame.height) {
                true => frame,
                false => frame.resized(w, h)?,
            };
            networks(&frame, runs, python, &engine)
        }
    }
}

fn backbone(frame: &Frame, runs: usize, engine: &EngineArgs) -> anyhow::Result<()> {
    let spec = backbone_spec(engine)?;
    let input = normalize(frame);
    println!(
        "backbone MobileNetV2, {}x{}, {} threads, median of {runs} runs after 2 warm-up (min..max) in ms",
        frame.width, frame.height, engine.threads
    );
    for (kind, int8) in variants(engine, true)? {
        let label = label(kind, &int8);
        let mut net =
            match reuse_vos::engine::backbone(&spec, Some(kind), int8.as_ref(), engine.threads) {
                Ok(n) => n,
                Err(e) => {
                    println!("{label:>8}: not available ({e})");
                    continue;
                }
            };
        let full = median_ms(|| net.pyramid(&input).map(|_| ()).map_err(Into::into), runs)?;
        let low = median_ms(|| net.low(&input).map(|_| ()).map_err(Into::into), runs)?;
        let s8 = net.low(&input)?.s8;
        let high = median_ms(|| net.high(&s8).map(|_| ()).map_err(Into::into), runs)?;
        println!(
            "{label:>8}: to s32 {}   to s8 {}   s8 to s32 {}",
            shown(full),
            shown(low),
            shown(high)
        );
    }
    Ok(())
}

/// A score map at stride 8 for the decoder: the object is the middle of the frame (any map
/// times the same; the same one goes to PyTorch).
fn score_map(channels: usize, (w, h): (usize, usize)) -> FeatureMap {
    let (w8, h8) = (w.div_ceil(8), h.div_ceil(8));
    let mut data = Vec::with_capacity(channels * w8 * h8);
    for _ in 0..channels {
        for y in 0..h8 {
            for x in 0..w8 {
                let inside = (w8 / 4..3 * w8 / 4).contains(&x) && (h8 / 4..3 * h8 / 4).contains(&y);
                data.push(if inside { 1.0 } else { -1.0 });
            }
        }
    }
    FeatureMap::new(channels, h8, w8, data)
}

fn networks(
    frame: &Frame,
    runs: usize,
    python: Option<PathBuf>,
    engine: &EngineArgs,
) -> anyhow::Result<()> {
    let model = Model::embedded_for("fusion")?;
    let spec = backbone_spec(engine)?;
    let input = normalize(frame);
    let size = (frame.width as usize, frame.height as usize);
    let score = score_map(model.decoder_config.score_channels, size);
    println!(
        "full computed path: MobileNetV2 to s32 + the fusion decoder, {}x{}, {} threads, median of {runs} runs after 2 warm-up (min..max) in ms",
        frame.width, frame.height, engine.threads
    );
    println!(
        "{:>21}  {:>22}  {:>22}  {:>22}",
        "", "backbone", "decoder", "full path"
    );
    let mut reference = None;
    for (kind, int8) in variants(engine, false)? {
        let label = label(kind, &int8);
        let built = reuse_vos::engine::backbone(&spec, Some(kind), int8.as_ref(), engine.threads)
            .and_then(|b| {
                let d = reuse_vos::engine::decoder(
                    &model.decoder,
                    model.feature_channels(),
                    kind,
                    engine.threads,
                )?;
                Ok((b, d))
            });
        let (mut net, mut dec) = match built {
            Ok(n) => n,
            Err(e) => {
                println!("{label:>21}: not available ({e})");
                continue;
            }
        };
        let mut path = |p: &reuse_vos::model::backbone::Pyramid| -> anyhow::Result<FeatureMap> {
            let state = dec.deep(&p.s32, &p.s16, &score)?;
            Ok(dec.shallow(&state, &p.s8, &p.s4, &score)?)
        };
        let pyramid = net.pyramid(&input)?;
        let bb = median_ms(|| net.pyramid(&input).map(|_| ()).map_err(Into::into), runs)?;
        let de = median_ms(|| path(&pyramid).map(|_| ()), runs)?;
        let full = median_ms(|| path(&net.pyramid(&input)?).map(|_| ()), runs)?;
        if kind == EngineKind::Ort && int8.is_none() {
            reference = Some((path(&pyramid)?, full));
        }
        println!(
            "{label:>21}  {:>22}  {:>22}  {:>22}",
            shown(bb),
            shown(de),
            shown(full)
        );
    }
    let Some((logits, ours)) = reference else {
        println!("PyTorch: skipped (it is compared with ONNX Runtime f32, which did not run)");
        return Ok(());
    };
    let python = python
        .or_else(|| std::env::var_os("REUSE_VOS_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("python3"));
    let job = torch::Job {
        spec: &spec,
        decoder: &model,
        image: &input,
        score: &score,
        logits: &logits,
        threads: engine.threads,
        runs,
    };
    match torch::run(&python, &job)? {
        Err(why) => println!("PyTorch: skipped ({why})"),
        Ok(t) => {
            for row in &t.rows {
                let label = format!("pytorch {}", row.layout);
                println!(
                    "{label:>21}  {:>22}  {:>22}  {:>22}",
                    shown(row.backbone_ms),
                    shown(row.decoder_ms),
                    shown(row.full_ms)
                );
            }
            for row in &t.rows {
                println!(
                    "PyTorch {} {} ({} threads): logits within {:.2e} of ONNX Runtime f32's (largest logit {:.1}); ONNX Runtime f32's full path is {:.2}x its speed (median against median)",
                    t.torch,
                    row.layout,
                    t.threads,
                    row.max_abs_diff,
                    row.max_abs,
                    row.full_ms.0 / ours.0
                );
            }
            if let Some(worst) = t
                .rows
                .iter()
                .map(|r| r.max_abs_diff / r.max_abs.max(1e-6))
                .reduce(f64::max)
            {
                anyhow::ensure!(
                    worst < 1e-4,
                    "PyTorch's logits differ from ONNX Runtime's by {worst:.1e} of the largest: not the same network"
                );
            }
        }
    }
    Ok(())
}
