//! Tracking a whole frame folder with a session: masks written as palette PNGs named like the
//! frames, and the per-frame statistics.

use super::{Model, ObjectFrame, Session, StageTimes, TrackerConfig};
use crate::error::{Error, Result};
use crate::io::frame::stem;
use crate::io::{Frame, Mask};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Per-frame record of `stats.json`.
#[derive(Clone, Debug, Serialize)]
pub struct FrameStats {
    pub frame: String,
    pub times: StageTimes,
    /// Per object: area, P(reuse), the path taken and its time, whether it was refined.
    pub objects: Vec<ObjectFrame>,
    /// Multiply-accumulates of the paths taken, in GMAC.
    pub gmacs: f64,
}

/// How often one object reused.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ObjectReuse {
    /// Frames after the object's mask was given (given frames are not counted).
    pub frames: usize,
    pub reused: usize,
    pub rate: f64,
}

/// Reads the ground truth of a frame index, if it has one (for the `oracle` policy).
pub type TruthReader<'a> = &'a (dyn Fn(usize) -> Result<Option<Mask>> + Sync);

/// A tracked video's statistics.
#[derive(Clone, Debug, Serialize)]
pub struct VideoStats {
    pub engine: String,
    pub frames: usize,
    pub seconds: f64,
    pub fps: f64,
    /// Time spent fitting target models on given masks.
    pub init_seconds: f64,
    pub fps_without_init: f64,
    /// Mean time of each stage over the frames after the first.
    pub mean_times: StageTimes,
    /// Per object id.
    pub reuse: std::collections::BTreeMap<u8, ObjectReuse>,
    /// Reused object-frames over all tracked object-frames.
    pub reuse_rate: f64,
    /// Mean multiply-accumulates per frame, GMAC (1 MAC = 2 FLOPs).
    pub gmacs_per_frame: f64,
    pub per_frame: Vec<FrameStats>,
}

/// The mean of each stage's time over `frames`.
pub fn mean_times(frames: &[FrameStats]) -> StageTimes {
    let n = frames.len().max(1) as f64;
    let mut m = StageTimes::default();
    for f in frames {
        let t = &f.times;
        m.decode_ms += t.decode_ms / n;
        m.backbone_ms += t.backbone_ms / n;
        m.init_ms += t.init_ms / n;
        m.target_ms += t.target_ms / n;
        m.gate_ms += t.gate_ms / n;
        m.decoder_ms += t.decoder_ms / n;
        m.merge_ms += t.merge_ms / n;
        m.update_ms += t.update_ms / n;
        m.total_ms += t.total_ms / n;
    }
    m
}

/// Tracks `frames` from the masks given (frame index → mask), writing `<out>/<frame>.png` for
/// every frame. `tick` is called after each frame.
pub fn track_frames(
    model: &Model,
    config: &TrackerConfig,
    frames: &[PathBuf],
    masks: Vec<(usize, Mask)>,
    out: &Path,
    truth: Option<TruthReader>,
    tick: &(dyn Fn() + Sync),
) -> Result<VideoStats> {
    if frames.is_empty() {
        return Err(Error::Invalid("no frames to track".into()));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::write(out, e))?;
    let mut session = Session::new(model, config.clone())?;
    for (i, m) in masks {
        session.add_mask(i, m)?;
    }
    let start = Instant::now();
    let mut per_frame = Vec::with_capacity(frames.len());
    let mut init = 0.0;
    let mut reuse = std::collections::BTreeMap::<u8, ObjectReuse>::new();
    for (i, path) in frames.iter().enumerate() {
        if let Some(read) = truth
            && let Some(m) = read(i)?
        {
            session.add_truth(i, m);
        }
        let t = Instant::now();
        let frame = Frame::load(path)?;
        let decode_ms = t.elapsed().as_secs_f64() * 1000.0;
        let mut result = session.push(&frame)?;
        result.times.decode_ms = decode_ms;
        init += result.times.init_ms / 1000.0;
        result.mask.save(&out.join(format!("{}.png", stem(path))))?;
        for o in result.objects.iter().filter(|o| !o.given) {
            let r = reuse.entry(o.id).or_default();
            r.frames += 1;
            r.reused += usize::from(o.decision.path.is_reuse());
        }
        per_frame.push(FrameStats {
            frame: stem(path),
            times: result.times,
            objects: result.objects,
            gmacs: result.macs as f64 / 1e9,
        });
        tick();
    }
    let seconds = start.elapsed().as_secs_f64();
    let (mut tracked, mut reused) = (0, 0);
    for r in reuse.values_mut() {
        r.rate = r.reused as f64 / r.frames.max(1) as f64;
        tracked += r.frames;
        reused += r.reused;
    }
    let gmacs_per_frame =
        per_frame.iter().map(|f| f.gmacs).sum::<f64>() / per_frame.len().max(1) as f64;
    Ok(VideoStats {
        reuse,
        reuse_rate: reused as f64 / tracked.max(1) as f64,
        gmacs_per_frame,
        engine: session.engine().to_string(),
        frames: frames.len(),
        seconds,
        fps: frames.len() as f64 / seconds,
        init_seconds: init,
        fps_without_init: frames.len() as f64 / (seconds - init).max(1e-9),
        mean_times: mean_times(per_frame.get(1..).unwrap_or(&[])),
        per_frame,
    })
}
