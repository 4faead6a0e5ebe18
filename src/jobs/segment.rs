//! `segment`: one video (frame folder or video file) from masks on any of its frames, forwards
//! or backwards, into mask PNGs, optional mattes and overlay video, and `stats.json`;
//! resumable after an interruption.

use crate::error::{Error, Result};
use crate::io::ffmpeg::VideoWriter;
use crate::io::mask::{check_first_mask, read_user_mask};
use crate::io::prefetch::{WRITE_BEHIND, behind};
use crate::io::source::Source;
use crate::io::{Frame, Mask};
use crate::model::Model;
use crate::output::guard::{OutputLock, directly_in, remove_stray_temps, same_file};
use crate::output::job_record::{JobRecord, MaskRecord, resolved};
use crate::output::{Finished, JOB, PROGRESS, STATS, SegmentOutputs, SegmentWriter, read_progress};
use crate::track::TrackerConfig;
use crate::track::video::{FrameStats, Replay, TrackRequest, VideoStats, track};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A mask the user gives: on a frame, or (no frame) on the first frame tracked.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskSpec {
    pub frame: Option<usize>,
    pub path: PathBuf,
}

impl std::str::FromStr for MaskSpec {
    type Err = String;
    /// `file.png` or `<frame>:file.png`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if let Some((head, tail)) = s.split_once(':')
            && !head.is_empty()
            && head.bytes().all(|b| b.is_ascii_digit())
        {
            if tail.is_empty() {
                return Err(format!("{s}: no mask file after the frame number"));
            }
            let frame = head
                .parse()
                .map_err(|_| format!("{s}: frame number too large"))?;
            return Ok(MaskSpec {
                frame: Some(frame),
                path: PathBuf::from(tail),
            });
        }
        Ok(MaskSpec {
            frame: None,
            path: PathBuf::from(s),
        })
    }
}

/// Everything `segment` is asked to do.
pub struct SegmentJob {
    pub input: PathBuf,
    pub masks: Vec<MaskSpec>,
    pub out: PathBuf,
    pub start: Option<usize>,
    pub end: Option<usize>,
    pub reverse: bool,
    pub overlay: Option<PathBuf>,
    pub matte: Option<PathBuf>,
    pub resume: bool,
}

/// How a `segment` run ended.
pub enum SegmentOutcome {
    Done(Box<VideoStats>),
    /// `--resume` found the run already complete.
    AlreadyComplete,
}

/// The frame range to track, in frame indices (inclusive), from the masks and the options:
/// forwards from the first mask to `--end`, backwards from the last mask to `--start`.
fn frame_range(job: &SegmentJob, mask_frames: &[usize]) -> Result<(usize, Option<usize>)> {
    let (Some(&lo), Some(&hi)) = (mask_frames.iter().min(), mask_frames.iter().max()) else {
        return Err(Error::Invalid("give at least one --mask".into()));
    };
    if job.reverse {
        if let Some(end) = job.end.filter(|&e| e < hi) {
            return Err(Error::Invalid(format!(
                "a mask is given on frame {hi}, after --end {end}"
            )));
        }
        Ok((job.start.unwrap_or(0), Some(hi)))
    } else {
        if let Some(start) = job.start.filter(|&s| s > lo) {
            return Err(Error::Invalid(format!(
                "a mask is given on frame {lo}, before --start {start}"
            )));
        }
        if let Some(end) = job.end.filter(|&e| e < hi) {
            return Err(Error::Invalid(format!(
                "a mask is given on frame {hi}, after --end {end}"
            )));
        }
        if let Some(start) = job.start.filter(|&s| s < lo) {
            return Err(Error::Invalid(format!(
                "--start {start} is before the first mask (frame {lo}): there is nothing to track there yet (to go backwards from a mask, use --reverse)"
            )));
        }
        Ok((lo, job.end))
    }
}

/// One frame of the source, read to check the masks against its size.
fn read_one(source: &Source, index: usize) -> Result<Frame> {
    let mut frames = source.frames(index, Some(index), false)?;
    match frames.next() {
        Some(f) => Ok(f?.frame),
        None => Err(Error::format(
            source.path(),
            format!("there is no frame {index}"),
        )),
    }
}

/// Reads and checks the user's masks (size, objects, ids), by frame index.
fn read_masks(job: &SegmentJob, source: &Source) -> Result<BTreeMap<usize, Mask>> {
    let default_frame = || -> Result<usize> {
        if job.reverse {
            job.end.ok_or_else(|| {
                Error::Invalid(
                    "with --reverse, say which frame a mask belongs to (--mask <frame>:<png>) or give --end".into(),
                )
            })
        } else {
            Ok(job.start.unwrap_or(0))
        }
    };
    let mut masks = BTreeMap::new();
    // The frames' size, read from the first mask's frame.
    let mut size: Option<(u32, u32)> = None;
    for spec in &job.masks {
        let frame = match spec.frame {
            Some(f) => f,
            None => default_frame()?,
        };
        if masks.contains_key(&frame) {
            return Err(Error::format(
                &spec.path,
                format!("a second mask for frame {frame}"),
            ));
        }
        let mask = read_user_mask(&spec.path)?;
        let (w, h) = match size {
            Some(s) => s,
            None => {
                let f = read_one(source, frame)?;
                *size.insert((f.width, f.height))
            }
        };
        mask.check_size(w, h, &spec.path)?;
        if mask.object_ids().is_empty() {
            return Err(Error::format(
                &spec.path,
                "the mask holds no object (all pixels are background)",
            ));
        }
        masks.insert(frame, (mask, spec.path.clone()));
    }
    // The mask tracking starts from must hold ids 1..N; later ones may add any new id.
    let first = if job.reverse {
        masks.keys().next_back()
    } else {
        masks.keys().next()
    };
    if let Some((m, path)) = first.and_then(|f| masks.get(f)) {
        check_first_mask(m, m.width, m.height, path)?;
    }
    Ok(masks.into_iter().map(|(f, (m, _))| (f, m)).collect())
}

/// Frames the range holds, when the source knows its length (for a progress bar).
pub fn frames_in_range(source: &Source, first: usize, last: Option<usize>) -> Option<usize> {
    let len = source.len()?;
    let end = last.map_or(len, |l| l.saturating_add(1).min(len));
    Some(end.saturating_sub(first))
}

/// Runs a `segment` job; `tick` is called after each frame. `on_start` receives the number of
/// frames to go through, when known.
pub fn segment(
    model: &Model,
    config: &TrackerConfig,
    job: &SegmentJob,
    on_start: &mut dyn FnMut(Option<usize>),
    tick: &(dyn Fn() + Sync),
) -> Result<SegmentOutcome> {
    let Some(open) = open_job(job, config)? else {
        return Ok(SegmentOutcome::AlreadyComplete);
    };
    let Opened {
        source,
        masks,
        range: (first, last),
        records,
        asked,
        lock: _lock,
    } = open;
    // Finished frames are read again too: the user's masks on them restart the objects, and
    // the overlay is rebuilt whole.
    on_start(frames_in_range(&source, first, last));
    let frames = source.frames(first, last, job.reverse)?;
    let out = job.out.clone();
    let load_mask = move |r: &FrameStats| Mask::read_ids(&out.join(format!("{}.png", r.frame)));
    let request = TrackRequest {
        frames,
        masks,
        oracle: None,
        replay: (!records.is_empty()).then_some(Replay {
            records: records.clone(),
            load_mask: &load_mask,
        }),
        // Absolute, so the report finds the frames from any folder.
        source: resolved(source.path()),
        reverse: job.reverse,
    };
    let mut writer = SegmentWriter::create(
        SegmentOutputs {
            masks: job.out.clone(),
            matte: job.matte.clone(),
            overlay: job.overlay.clone(),
            fps: source.fps(),
        },
        &records,
    )?;
    asked.write(&job.out)?;
    let mut written = 0usize;
    // Masks, mattes and the overlay are encoded and written on a thread behind the tracker.
    let overlay = job.overlay.is_some();
    let tracked = behind(
        WRITE_BEHIND,
        |f: Finished| writer.write(&f.view()),
        |push| {
            track(
                model,
                config,
                request,
                &mut |t| {
                    push(Finished::of(t, overlay))?;
                    written += 1;
                    tick();
                    Ok(())
                },
                job.matte.is_some(),
            )
        },
    );
    let mut stats = match tracked {
        Ok(stats) => stats,
        Err(e) => {
            if written == 0 && records.is_empty() {
                // Nothing was tracked: leave the folder as it was (the README's promise).
                drop(writer);
                let _ = std::fs::remove_file(job.out.join(PROGRESS));
                let _ = std::fs::remove_file(job.out.join(JOB));
            }
            return Err(e);
        }
    };
    if let Some(declared) = frames_in_range(&source, first, last).filter(|&n| n > stats.frames) {
        stats.warnings.push(format!(
            "{}: the file declares {declared} frames in the range but only {} could be decoded (a truncated or damaged file?); masks were written for those",
            source.path().display(),
            stats.frames
        ));
    }
    writer.finish(&stats)?;
    Ok(SegmentOutcome::Done(Box::new(stats)))
}

/// A checked job holding its output folder: the source, the masks, the range, the finished
/// frames of an interrupted run (with `--resume`) and what `job.json` will record.
struct Opened {
    source: Source,
    masks: BTreeMap<usize, Mask>,
    range: (usize, Option<usize>),
    records: BTreeMap<usize, FrameStats>,
    asked: JobRecord,
    lock: OutputLock,
}

/// Checks everything the job names before anything is written, then locks the output folder;
/// `None` when `--resume` finds the same run complete.
fn open_job(job: &SegmentJob, config: &TrackerConfig) -> Result<Option<Opened>> {
    if let Some(o) = &job.overlay {
        VideoWriter::check_path(o)?;
    }
    let source = Source::open(&job.input)?;
    refuse_overwriting_inputs(job, &source)?;
    let masks = read_masks(job, &source)?;
    let mask_frames: Vec<usize> = masks.keys().copied().collect();
    let range = frame_range(job, &mask_frames)?;
    let asked = job_record(job, config)?;
    let lock = OutputLock::acquire(&job.out)?;
    remove_stray_temps(&job.out);
    if let Some(m) = &job.matte {
        remove_stray_temps(m);
    }
    let records = if job.resume {
        check_same_job(job, &asked)?;
        if job.out.join(STATS).is_file() && !job.out.join(PROGRESS).is_file() {
            return Ok(None);
        }
        read_progress(&job.out)?
    } else {
        BTreeMap::new()
    };
    Ok(Some(Opened {
        source,
        masks,
        range,
        records,
        asked,
        lock,
    }))
}

/// Refuses outputs that are, or would overwrite, the user's inputs: `--out` as the frame
/// folder, `--overlay` as the input video or a mask, a mask among the frames or in `--out`.
fn refuse_overwriting_inputs(job: &SegmentJob, source: &Source) -> Result<()> {
    if !source.is_video() && same_file(&job.out, &job.input) {
        return Err(Error::Invalid(format!(
            "--out {} is the input frame folder: the masks would overwrite its frames; choose another folder",
            job.out.display()
        )));
    }
    for spec in &job.masks {
        if !source.is_video() && directly_in(&spec.path, &job.input) {
            return Err(Error::format(
                &spec.path,
                format!(
                    "the mask is inside the frame folder {}, where it would be read as a frame: move it out",
                    job.input.display()
                ),
            ));
        }
        if directly_in(&spec.path, &job.out) {
            return Err(Error::format(
                &spec.path,
                format!(
                    "the mask is inside --out {}, where this run writes its masks: copy it elsewhere first",
                    job.out.display()
                ),
            ));
        }
    }
    if let Some(o) = &job.overlay {
        let clash = same_file(o, &job.input) || job.masks.iter().any(|m| same_file(o, &m.path));
        if clash {
            return Err(Error::Invalid(format!(
                "--overlay {} is one of the inputs: it would be overwritten; choose another file",
                o.display()
            )));
        }
    }
    Ok(())
}

/// What this command asks, as `job.json` records it.
fn job_record(job: &SegmentJob, config: &TrackerConfig) -> Result<JobRecord> {
    let masks = job
        .masks
        .iter()
        .map(|m| MaskRecord::of(m.frame, &m.path))
        .collect::<Result<Vec<_>>>()?;
    // Threads change the speed, not the masks; the tracking size has its own field.
    let settings = TrackerConfig {
        threads: 0,
        size: crate::track::TrackingSize::Default,
        ..config.clone()
    };
    Ok(JobRecord {
        input: resolved(&job.input),
        masks,
        start: job.start,
        end: job.end,
        max_side: config.max_side(),
        reverse: job.reverse,
        mattes: job.matte.is_some(),
        settings: format!("{settings:?}"),
    })
}

/// `--resume` continues only the command that was interrupted there.
fn check_same_job(job: &SegmentJob, asked: &JobRecord) -> Result<()> {
    let Some(earlier) = JobRecord::read(&job.out)? else {
        return Ok(());
    };
    let differs = earlier.differences(asked);
    if differs.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{}: --resume continues the run that was interrupted there, but this command differs in {} (see {}); run the command that made it (another version's defaults may differ: job.json records the settings it ran with), or drop --resume to start over",
        job.out.display(),
        differs.join(", "),
        job.out.join(JOB).display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_specs_parse_with_and_without_a_frame() {
        let a: MaskSpec = "m.png".parse().unwrap();
        assert_eq!(a.frame, None);
        let b: MaskSpec = "12:dir/m.png".parse().unwrap();
        assert_eq!((b.frame, b.path), (Some(12), PathBuf::from("dir/m.png")));
        let c: MaskSpec = "c:/x.png".parse().unwrap();
        assert_eq!(c.frame, None, "a drive-like prefix is a path");
        assert!("3:".parse::<MaskSpec>().is_err());
    }

    fn job(reverse: bool, start: Option<usize>, end: Option<usize>) -> SegmentJob {
        SegmentJob {
            input: PathBuf::new(),
            masks: vec![],
            out: PathBuf::new(),
            start,
            end,
            reverse,
            overlay: None,
            matte: None,
            resume: false,
        }
    }

    #[test]
    fn ranges_start_at_the_first_mask_or_end_at_the_last() {
        assert_eq!(
            frame_range(&job(false, None, None), &[5, 9]).unwrap(),
            (5, None)
        );
        assert_eq!(
            frame_range(&job(false, None, Some(20)), &[5]).unwrap(),
            (5, Some(20))
        );
        assert!(frame_range(&job(false, Some(2), None), &[5]).is_err());
        assert!(frame_range(&job(false, None, Some(7)), &[5, 9]).is_err());
        assert_eq!(
            frame_range(&job(true, None, None), &[5, 9]).unwrap(),
            (0, Some(9))
        );
        assert_eq!(
            frame_range(&job(true, Some(3), None), &[9]).unwrap(),
            (3, Some(9))
        );
        assert!(frame_range(&job(true, None, Some(8)), &[9]).is_err());
    }
}
