//! Tracking a whole frame folder with a session: masks written as palette PNGs named like the
//! frames, and the per-frame statistics.

use super::{Model, Session, StageTimes, TrackerConfig};
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
    /// Object id → area in pixels.
    pub areas: std::collections::BTreeMap<u8, usize>,
    /// Ids whose target model was refined after this frame.
    pub refined: Vec<u8>,
}

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
    for path in frames {
        let t = Instant::now();
        let frame = Frame::load(path)?;
        let decode_ms = t.elapsed().as_secs_f64() * 1000.0;
        let mut result = session.push(&frame)?;
        result.times.decode_ms = decode_ms;
        init += result.times.init_ms / 1000.0;
        result.mask.save(&out.join(format!("{}.png", stem(path))))?;
        per_frame.push(FrameStats {
            frame: stem(path),
            times: result.times,
            areas: result.objects.iter().map(|o| (o.id, o.area)).collect(),
            refined: result
                .objects
                .iter()
                .filter(|o| o.refined)
                .map(|o| o.id)
                .collect(),
        });
        tick();
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(VideoStats {
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
