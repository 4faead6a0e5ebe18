//! The PyTorch side of `bench networks`: the backbone's folded weights, the decoder, the inputs
//! and ONNX Runtime's logits written to a temporary folder, `torch.py` run on them by the
//! user's Python, its one JSON line read back.

use reuse_vos::model::backbone::{BackboneSpec, TAP_S4, TAP_S8, TAP_S16, TAP_S32};
use reuse_vos::model::{FeatureMap, Model};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The script (needs torch only).
const SCRIPT: &str = include_str!("torch.py");

/// What PyTorch is given.
pub(crate) struct Job<'a> {
    pub spec: &'a BackboneSpec,
    pub decoder: &'a Model,
    pub image: &'a FeatureMap,
    pub score: &'a FeatureMap,
    /// ONNX Runtime's f32 logits, which PyTorch's must match.
    pub logits: &'a FeatureMap,
    pub threads: usize,
    pub runs: usize,
}

/// PyTorch's figures.
#[derive(Deserialize)]
pub(crate) struct TorchTimes {
    pub torch: String,
    pub threads: usize,
    pub rows: Vec<TorchRow>,
}

/// One memory layout's figures; times as (median, min, max) ms.
#[derive(Deserialize)]
pub(crate) struct TorchRow {
    pub layout: String,
    pub max_abs_diff: f64,
    pub max_abs: f64,
    pub backbone_ms: (f64, f64, f64),
    pub decoder_ms: (f64, f64, f64),
    pub full_ms: (f64, f64, f64),
}

/// A temporary folder removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_f32(path: &Path, data: &[f32]) -> anyhow::Result<()> {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn shape(map: &FeatureMap) -> [usize; 3] {
    [map.channels, map.height, map.width]
}

/// The backbone as `torch.py` reads it: every convolution's folded weight and bias as offsets
/// into one f32 array.
fn backbone_spec(spec: &BackboneSpec, floats: &mut Vec<f32>) -> serde_json::Value {
    let blocks: Vec<serde_json::Value> = spec
        .blocks
        .iter()
        .map(|b| {
            let convs: Vec<serde_json::Value> = b
                .convs
                .iter()
                .map(|c| {
                    let w = (floats.len(), c.weight.len());
                    floats.extend_from_slice(&c.weight);
                    let bias = (floats.len(), c.bias.len());
                    floats.extend_from_slice(&c.bias);
                    serde_json::json!({
                        "cin": c.cin, "cout": c.cout, "kernel": c.kernel, "stride": c.stride,
                        "groups": c.groups, "relu6": c.relu6, "weight": w, "bias": bias,
                    })
                })
                .collect();
            serde_json::json!({ "convs": convs, "residual": b.residual })
        })
        .take(TAP_S32 + 1)
        .collect();
    serde_json::Value::Array(blocks)
}

/// A new folder of this process's own under the temp folder (never one that existed: another
/// process's files are not written into or removed).
fn fresh_dir() -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..100u32 {
        let dir = base.join(format!(
            "reuse-vos-bench-{}-{nanos}-{attempt}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => anyhow::bail!("{}: cannot create: {e}", dir.display()),
        }
    }
    anyhow::bail!("{}: no fresh folder for the PyTorch side", base.display())
}

/// Runs `torch.py` with `python`: Ok(Err(why)) when PyTorch cannot run here (no Python, or no
/// torch in it); an error when it ran and failed.
pub(crate) fn run(python: &Path, job: &Job) -> anyhow::Result<Result<TorchTimes, String>> {
    let scratch = Scratch(fresh_dir()?);
    let dir = &scratch.0;
    let mut floats = Vec::new();
    let blocks = backbone_spec(job.spec, &mut floats);
    let spec = serde_json::json!({
        "threads": job.threads,
        "runs": job.runs.max(1),
        "blocks": blocks,
        "taps": [TAP_S4, TAP_S8, TAP_S16, TAP_S32],
        "backbone_floats": floats.len(),
        "image": shape(job.image),
        "score": shape(job.score),
        "logits": shape(job.logits),
    });
    std::fs::write(dir.join("spec.json"), spec.to_string())?;
    write_f32(&dir.join("backbone.bin"), &floats)?;
    write_f32(&dir.join("image.bin"), &job.image.data)?;
    write_f32(&dir.join("score.bin"), &job.score.data)?;
    write_f32(&dir.join("logits.bin"), &job.logits.data)?;
    reuse_vos::model::load::save_with_config(
        &job.decoder.decoder,
        &job.decoder.decoder_config,
        &dir.join("decoder.safetensors"),
    )?;
    let out = match Command::new(python).arg("-c").arg(SCRIPT).arg(dir).output() {
        Ok(out) => out,
        Err(e) => return Ok(Err(format!("cannot run {}: {e}", python.display()))),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let last = stderr.lines().last().unwrap_or("no message");
        if stderr.contains("No module named 'torch'") {
            return Ok(Err(format!("{} cannot import torch", python.display())));
        }
        anyhow::bail!("PyTorch side failed ({}): {last}", python.display());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line)
        .map(Ok)
        .map_err(|e| anyhow::anyhow!("PyTorch side printed {line:?}: {e}"))
}
