//! What a tracked video leaves behind for people: the masks (palette PNGs), per-object soft
//! mattes, an overlay video, the statistics, and the HTML report. Every file is written
//! atomically; `frames.jsonl` records each finished frame so an interrupted run can resume.

pub mod guard;
pub mod job_record;
pub mod names;
pub mod overlay;
pub mod report;
pub mod sweep_table;

use crate::error::{Error, Result};
use crate::io::Mask;
use crate::io::ffmpeg::VideoWriter;
use crate::io::source::SourceFrame;
use crate::track::video::{FrameStats, Tracked, VideoStats};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// The per-frame log of a run in progress (removed when `stats.json` is written).
pub use names::{JOB, PROGRESS, STATS};

/// Where a `segment` run writes.
pub struct SegmentOutputs {
    pub masks: PathBuf,
    pub matte: Option<PathBuf>,
    pub overlay: Option<PathBuf>,
    /// Frames per second of the overlay video.
    pub fps: f64,
}

/// A tracked frame's outputs, owned, for the writer on its thread behind the tracker.
pub struct Finished {
    /// The frame's pixels only when an overlay is drawn (empty otherwise).
    frame: SourceFrame,
    mask: Mask,
    mattes: Option<Vec<(u8, Vec<f32>)>>,
    record: FrameStats,
    carried: bool,
}

impl Finished {
    /// Takes what the writer needs of `t` (the frame's pixels only for an `overlay`).
    pub fn of(t: &Tracked, overlay: bool) -> Finished {
        let frame = match overlay {
            true => t.frame.clone(),
            false => SourceFrame {
                index: t.frame.index,
                name: t.frame.name.clone(),
                frame: crate::io::Frame {
                    width: 0,
                    height: 0,
                    rgb: Vec::new(),
                },
            },
        };
        Finished {
            frame,
            mask: t.mask.clone(),
            mattes: t.mattes.map(|m| m.to_vec()),
            record: t.record.clone(),
            carried: t.carried,
        }
    }

    pub fn view(&self) -> Tracked<'_> {
        Tracked {
            frame: &self.frame,
            mask: &self.mask,
            mattes: self.mattes.as_deref(),
            record: &self.record,
            carried: self.carried,
        }
    }
}

/// Writes each frame's outputs as it is tracked.
pub struct SegmentWriter {
    outputs: SegmentOutputs,
    progress: std::fs::File,
    video: Option<VideoWriter>,
}

impl SegmentWriter {
    /// Starts writing into `outputs.masks`. The progress log starts with the records of
    /// `carried` (the finished frames of an interrupted run, when resuming): whatever else the
    /// old log held, such as a line cut by the interruption, goes.
    pub fn create(
        outputs: SegmentOutputs,
        carried: &BTreeMap<usize, FrameStats>,
    ) -> Result<SegmentWriter> {
        std::fs::create_dir_all(&outputs.masks).map_err(|e| Error::write(&outputs.masks, e))?;
        let log = outputs.masks.join(PROGRESS);
        let mut text = String::new();
        for r in carried.values() {
            text.push_str(&serde_json::to_string(r).map_err(|e| Error::Invalid(e.to_string()))?);
            text.push('\n');
        }
        crate::io::atomic::write_bytes(&log, text.as_bytes())?;
        let progress = std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .map_err(|e| Error::write(&log, e))?;
        Ok(SegmentWriter {
            outputs,
            progress,
            video: None,
        })
    }

    /// Writes one frame: mask and mattes (unless carried over from an earlier run), the overlay
    /// frame, then the progress record (so a record means the frame's files are complete).
    pub fn write(&mut self, t: &Tracked) -> Result<()> {
        let name = &t.frame.name;
        if !t.carried {
            t.mask
                .save(&self.outputs.masks.join(format!("{name}.png")))?;
            if let (Some(dir), Some(mattes)) = (&self.outputs.matte, t.mattes) {
                for (id, alpha) in mattes {
                    save_matte(
                        &dir.join(id.to_string()).join(format!("{name}.png")),
                        t.mask,
                        alpha,
                    )?;
                }
            }
        }
        if let Some(path) = &self.outputs.overlay {
            let f = &t.frame.frame;
            if self.video.is_none() {
                self.video = Some(VideoWriter::create(
                    path,
                    f.width,
                    f.height,
                    self.outputs.fps,
                )?);
            }
            let paths: Vec<_> = t
                .record
                .objects
                .iter()
                .map(|o| (o.id, o.decision.path))
                .collect();
            let drawn = overlay::draw(f, t.mask, &paths);
            if let Some(v) = self.video.as_mut() {
                v.write(&drawn)?;
            }
        }
        if !t.carried {
            let log = self.outputs.masks.join(PROGRESS);
            let line =
                serde_json::to_string(t.record).map_err(|e| Error::Invalid(e.to_string()))?;
            writeln!(self.progress, "{line}").map_err(|e| Error::write(&log, e))?;
            self.progress.flush().map_err(|e| Error::write(&log, e))?;
        }
        Ok(())
    }

    /// Finishes the overlay video and writes `stats.json`; the progress log goes.
    pub fn finish(self, stats: &VideoStats) -> Result<()> {
        if let Some(v) = self.video {
            v.finish()?;
        }
        let text =
            serde_json::to_string_pretty(stats).map_err(|e| Error::Invalid(e.to_string()))?;
        crate::io::atomic::write_bytes(&self.outputs.masks.join(STATS), text.as_bytes())?;
        let log = self.outputs.masks.join(PROGRESS);
        std::fs::remove_file(&log).map_err(|e| Error::write(&log, e))
    }
}

/// A soft matte as an 8-bit grey PNG: alpha = 255 × the object's probability.
fn save_matte(path: &Path, mask: &Mask, alpha: &[f32]) -> Result<()> {
    let bytes: Vec<u8> = alpha
        .iter()
        .map(|a| (a.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    crate::io::atomic::write_with(path, |w| {
        let mut enc = png::Encoder::new(w, mask.width, mask.height);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        enc.write_header()
            .and_then(|mut h| h.write_image_data(&bytes))
            .map_err(|e| Error::format(path, format!("cannot encode PNG: {e}")))
    })
}

/// The finished frames of an interrupted run in `dir`: the records of `frames.jsonl` whose mask
/// file exists (a last line cut short by the interruption is ignored).
pub fn read_progress(dir: &Path) -> Result<BTreeMap<usize, FrameStats>> {
    let log = dir.join(PROGRESS);
    let file = match std::fs::File::open(&log) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::read(&log, e)),
    };
    let mut done = BTreeMap::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| Error::read(&log, e))?;
        let Ok(record) = serde_json::from_str::<FrameStats>(&line) else {
            break;
        };
        if dir.join(format!("{}.png", record.frame)).is_file() {
            done.insert(record.index, record);
        }
    }
    Ok(done)
}
