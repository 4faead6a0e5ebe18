//! Tracking a whole video with a session: frames from a [`Source`](crate::io::source::Source)
//! (forwards or backwards, at a reduced size if asked), masks on any frame, every frame's result
//! handed to a sink at the original size, and the per-frame statistics.

use super::decide::Oracle;
use super::{ObjectFrame, Session, StageTimes, TrackerConfig, merge};
use crate::error::{Error, Result};
use crate::io::source::SourceFrame;
use crate::io::{Frame, Mask};
use crate::model::Model;
use crate::model::tensor::{resize_bilinear, threshold_bilinear};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

/// Per-frame record of `stats.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FrameStats {
    /// Index of the frame in the whole video.
    #[serde(default)]
    pub index: usize,
    pub frame: String,
    pub times: StageTimes,
    /// Per object: area, P(reuse), the path taken and its time, whether it was refined.
    pub objects: Vec<ObjectFrame>,
    /// Multiply-accumulates of the paths taken, in GMAC.
    pub gmacs: f64,
}

/// How often one object reused.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ObjectReuse {
    /// Frames after the object's mask was given (given frames are not counted).
    pub frames: usize,
    pub reused: usize,
    pub rate: f64,
}

/// A tracked video's statistics.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VideoStats {
    /// The frames' folder or video file.
    #[serde(default)]
    pub source: String,
    pub engine: String,
    /// The backbone's number format (f32 or int8).
    #[serde(default)]
    pub precision: String,
    /// What the memory matched: `mobilenetv2`, or `dinov2s` with its layer and input size.
    #[serde(default)]
    pub matching: String,
    /// The reuse policy and thresholds the run used.
    #[serde(default)]
    pub gate: Option<super::gate::GateSettings>,
    /// Region reuse in the backbone's first blocks: its threshold in grey levels (None: dense).
    #[serde(default)]
    pub sparse_threshold: Option<f32>,
    /// Frames with a result (this run's and, after `--resume`, the earlier run's).
    pub frames: usize,
    /// Frames tracked by this run.
    #[serde(default)]
    pub tracked_frames: usize,
    /// Tracking went from the last annotated frame backwards.
    #[serde(default)]
    pub reverse: bool,
    /// The frames' size, and the size they were tracked at (`--max-side`).
    #[serde(default)]
    pub size: (u32, u32),
    #[serde(default)]
    pub processing_size: (u32, u32),
    /// The frame this run resumed at (`--resume`), if it did.
    #[serde(default)]
    pub resumed_at: Option<usize>,
    /// Seconds of this run: reading frames, tracking and writing outputs.
    pub seconds: f64,
    pub fps: f64,
    /// Time spent fitting target models on given masks.
    pub init_seconds: f64,
    pub fps_without_init: f64,
    /// Mean time of each stage over the frames after the first.
    pub mean_times: StageTimes,
    /// Per object id.
    pub reuse: BTreeMap<u8, ObjectReuse>,
    /// Reused object-frames over all tracked object-frames.
    pub reuse_rate: f64,
    /// Object-frames the safety net computed although the gate would have reused them.
    #[serde(default)]
    pub safety: SafetyCounts,
    /// Time per computed frame and per frame where every object reused.
    #[serde(default)]
    pub frame_kinds: FrameKinds,
    /// Mean multiply-accumulates per frame, GMAC (1 MAC = 2 FLOPs).
    pub gmacs_per_frame: f64,
    pub per_frame: Vec<FrameStats>,
    /// What the user should know about the run (e.g. fewer frames decoded than declared).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Time per frame by kind: frames where some object ran the full path, and frames where every
/// object reused (or copied). Given frames are in neither.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct FrameKinds {
    pub computed: usize,
    /// Mean tracking time of a computed frame, milliseconds.
    pub computed_ms: f64,
    pub reused: usize,
    /// Mean tracking time of a frame where every object reused, milliseconds.
    pub reused_ms: f64,
    /// Of the computed frames, those whose computed objects all read stale keys (the matching
    /// backbone did not run), and their mean time.
    #[serde(default)]
    pub stale_keys: usize,
    #[serde(default)]
    pub stale_keys_ms: f64,
}

impl FrameKinds {
    pub fn of(frames: &[FrameStats]) -> FrameKinds {
        let mut k = FrameKinds::default();
        for f in frames {
            if f.objects.is_empty() || f.objects.iter().any(|o| o.given) {
                continue;
            }
            if f.objects.iter().all(|o| o.decision.path.is_reuse()) {
                k.reused += 1;
                k.reused_ms += f.times.total_ms;
            } else {
                k.computed += 1;
                k.computed_ms += f.times.total_ms;
                let computed = f.objects.iter().filter(|o| !o.decision.path.is_reuse());
                if computed.clone().all(|o| o.decision.stale_keys) {
                    k.stale_keys += 1;
                    k.stale_keys_ms += f.times.total_ms;
                }
            }
        }
        k.computed_ms /= k.computed.max(1) as f64;
        k.reused_ms /= k.reused.max(1) as f64;
        k.stale_keys_ms /= k.stale_keys.max(1) as f64;
        k
    }

    /// Several videos' figures together (means weighted by frames).
    pub fn combine<'a>(parts: impl Iterator<Item = &'a FrameKinds>) -> FrameKinds {
        let mut k = FrameKinds::default();
        for p in parts {
            k.computed += p.computed;
            k.computed_ms += p.computed_ms * p.computed as f64;
            k.reused += p.reused;
            k.reused_ms += p.reused_ms * p.reused as f64;
            k.stale_keys += p.stale_keys;
            k.stale_keys_ms += p.stale_keys_ms * p.stale_keys as f64;
        }
        k.computed_ms /= k.computed.max(1) as f64;
        k.reused_ms /= k.reused.max(1) as f64;
        k.stale_keys_ms /= k.stale_keys.max(1) as f64;
        k
    }
}

impl std::fmt::Display for FrameKinds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1} ms per computed frame ({})",
            self.computed_ms, self.computed
        )?;
        if self.stale_keys > 0 {
            write!(
                f,
                " — {:.1} ms on those that skipped the matching keys ({})",
                self.stale_keys_ms, self.stale_keys
            )?;
        }
        write!(
            f,
            ", {:.1} ms per frame where every object reused ({})",
            self.reused_ms, self.reused
        )
    }
}

/// How often each check of the safety net recomputed an object-frame.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct SafetyCounts {
    pub streak: usize,
    pub motion: usize,
    pub jump: usize,
    #[serde(default)]
    pub audit: usize,
    #[serde(default)]
    pub growth: usize,
}

impl SafetyCounts {
    pub fn of(frames: &[FrameStats]) -> SafetyCounts {
        use super::safety::Override;
        let mut c = SafetyCounts::default();
        for o in frames.iter().flat_map(|f| &f.objects) {
            match o.decision.safety {
                Some(Override::Streak) => c.streak += 1,
                Some(Override::Motion) => c.motion += 1,
                Some(Override::Jump) => c.jump += 1,
                Some(Override::Audit) => c.audit += 1,
                Some(Override::Growth) => c.growth += 1,
                None => {}
            }
        }
        c
    }

    pub fn total(&self) -> usize {
        self.streak + self.motion + self.jump + self.audit + self.growth
    }

    pub fn plus(&self, o: &SafetyCounts) -> SafetyCounts {
        SafetyCounts {
            streak: self.streak + o.streak,
            motion: self.motion + o.motion,
            jump: self.jump + o.jump,
            audit: self.audit + o.audit,
            growth: self.growth + o.growth,
        }
    }
}

/// `N object-frames (streak …, motion …, jump …, audit …, growth …)`, as the summaries print it.
impl std::fmt::Display for SafetyCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} object-frames (streak {}, motion {}, jump {}, audit {}, growth {})",
            self.total(),
            self.streak,
            self.motion,
            self.jump,
            self.audit,
            self.growth
        )
    }
}

/// Per-object reuse counts over frame records (given frames not counted), and the overall rate.
pub fn reuse_counts(frames: &[FrameStats]) -> (BTreeMap<u8, ObjectReuse>, f64) {
    let mut reuse = BTreeMap::<u8, ObjectReuse>::new();
    for o in frames.iter().flat_map(|f| &f.objects).filter(|o| !o.given) {
        let r = reuse.entry(o.id).or_default();
        r.frames += 1;
        r.reused += usize::from(o.decision.path.is_reuse());
    }
    let (mut tracked, mut reused) = (0, 0);
    for r in reuse.values_mut() {
        r.rate = r.reused as f64 / r.frames.max(1) as f64;
        tracked += r.frames;
        reused += r.reused;
    }
    (reuse, reused as f64 / tracked.max(1) as f64)
}

/// The results of an earlier, interrupted run to carry over (`--resume`): the records of its
/// finished frames and a way to read their masks. On those frames only the user's masks are
/// given to the tracker again (the objects start from them as they did); tracking goes on from
/// the first unfinished frame. The target models miss the updates of the skipped frames, so the
/// results after the resume point are close to, not identical with, an uninterrupted run's.
pub struct Replay<'a> {
    pub records: BTreeMap<usize, FrameStats>,
    pub load_mask: MaskLoader<'a>,
}

/// The frames' size and the size they are tracked at.
type Sizes = ((u32, u32), (u32, u32));
/// Per object id, its soft matte.
type Mattes = Vec<(u8, Vec<f32>)>;
/// Reads the mask an earlier run wrote for a frame.
type MaskLoader<'a> = &'a dyn Fn(&FrameStats) -> Result<Mask>;

/// What to track.
pub struct TrackRequest<'a> {
    /// The frames in processing order (see [`Source::frames`](crate::io::source::Source::frames)).
    pub frames: Box<dyn Iterator<Item = Result<SourceFrame>> + Send + 'a>,
    /// Masks by frame index, at the frames' size: the first starts the objects, later ones add
    /// new objects or correct existing ones.
    pub masks: BTreeMap<usize, Mask>,
    /// The ground truth by the session's frame index, for the `oracle` policy.
    pub oracle: Option<Oracle>,
    pub replay: Option<Replay<'a>>,
    pub source: String,
    pub reverse: bool,
}

/// One frame's result, at the frames' original size, for the sink.
pub struct Tracked<'a> {
    pub frame: &'a SourceFrame,
    pub mask: &'a Mask,
    /// Per object id: its probability after the merge across objects (a soft matte), when
    /// asked for.
    pub mattes: Option<&'a [(u8, Vec<f32>)]>,
    pub record: &'a FrameStats,
    /// The frame's result comes from an earlier run (`--resume`): its files exist.
    pub carried: bool,
}

/// The size a frame is tracked at: its own, or scaled down to `max_side` on its longest side.
pub fn processing_size(width: u32, height: u32, max_side: Option<u32>) -> (u32, u32) {
    match max_side {
        Some(m) if width.max(height) > m => {
            let s = m as f64 / width.max(height) as f64;
            (
                ((width as f64 * s).round() as u32).max(1),
                ((height as f64 * s).round() as u32).max(1),
            )
        }
        _ => (width, height),
    }
}

/// A given mask at the processing size; an object too small to survive is an error.
fn scaled_mask(mask: &Mask, processing: (u32, u32), index: usize) -> Result<Mask> {
    if (mask.width, mask.height) == processing {
        return Ok(mask.clone());
    }
    let small = mask.resized_nearest(processing.0, processing.1);
    let kept = small.object_ids();
    if let Some(lost) = mask.object_ids().into_iter().find(|i| !kept.contains(i)) {
        return Err(Error::Invalid(format!(
            "frame {index}: object {lost} vanishes at {}x{} (--max-side); give a larger --max-side, or --max-side 0 to track at the frames' own size",
            processing.0, processing.1
        )));
    }
    Ok(small)
}

/// Tracks a video, handing every frame's result to `sink` in processing order.
pub fn track(
    model: &Model,
    config: &TrackerConfig,
    request: TrackRequest,
    sink: &mut dyn FnMut(&Tracked) -> Result<()>,
    want_mattes: bool,
) -> Result<VideoStats> {
    if let Some(m) = config.max_side().filter(|&m| m < 32) {
        return Err(Error::Invalid(format!(
            "--max-side {m}: frames must be at least 32 pixels"
        )));
    }
    let TrackRequest {
        frames,
        masks,
        oracle,
        replay,
        source,
        reverse,
    } = request;
    let mut session = match oracle {
        Some(o) => Session::with_oracle(model, config.clone(), o)?,
        None => Session::new(model, config.clone())?,
    };
    let (records_before, load_mask) = match replay {
        Some(r) => (r.records, Some(r.load_mask)),
        None => (BTreeMap::new(), None),
    };
    // Only frames the tracker sees are resized (a carried frame without a mask is not).
    let (given, carried) = (&masks, &records_before);
    let reader = read_frames(frames, config.max_side(), source.clone(), move |i| {
        given.contains_key(&i) || !carried.contains_key(&i)
    });
    // The frames' size and the size they are tracked at, from the first frame.
    let mut sizes: Option<Sizes> = None;
    let mut resumed_at = None;
    let start = Instant::now();
    let mut per_frame: Vec<FrameStats> = Vec::new();
    let mut init = 0.0;
    std::thread::scope(|scope| -> Result<()> {
        let mut frames = crate::io::prefetch::ahead(scope, reader, READ_AHEAD);
        loop {
            let t = Instant::now();
            let Some(read) = frames.next() else {
                return Ok(());
            };
            let ReadFrame {
                item,
                processing,
                scaled,
            } = read?;
            sizes.get_or_insert(((item.frame.width, item.frame.height), processing));
            // The time the tracker waited for the frame (decoding runs ahead of it).
            let decode_ms = t.elapsed().as_secs_f64() * 1000.0;
            let given = masks.get(&item.index);
            if let Some(mask) = given {
                session.add_mask(
                    session.next_index(),
                    scaled_mask(mask, processing, item.index)?,
                )?;
            }
            if let Some(record) = records_before.get(&item.index) {
                // Finished by the earlier run. Where the user gave a mask, the objects
                // (re)start from it as they did then; otherwise only the sink sees the frame.
                if given.is_some() {
                    session.push(scaled.as_ref().unwrap_or(&item.frame))?;
                }
                per_frame.push(carry_frame(&item, record, load_mask, sink)?);
                continue;
            }
            if !records_before.is_empty() && resumed_at.is_none() {
                resumed_at = Some(item.index);
            }
            let mut result = session.push(scaled.as_ref().unwrap_or(&item.frame))?;
            result.times.decode_ms = decode_ms;
            init += result.times.init_ms / 1000.0;
            per_frame.push(track_frame(
                result,
                &item,
                given,
                processing,
                want_mattes,
                sink,
            )?);
        }
    })?;
    if per_frame.is_empty() {
        return Err(Error::Invalid(format!("{source}: no frames to track")));
    }
    let info = RunInfo {
        source,
        engine: session.engine().to_string(),
        precision: session.precision().to_string(),
        matching: session.matching(),
        gate: session.gate(),
        sparse_threshold: session.sparse(),
        reverse,
        sizes,
        resumed_at,
        seconds: start.elapsed().as_secs_f64(),
        init_seconds: init,
    };
    Ok(video_stats(info, per_frame, &records_before))
}

/// Frames waiting decoded for the tracker (the reader works on one more).
const READ_AHEAD: usize = 2;

/// A frame as read, and at the processing size when it differs and the tracker sees it.
struct ReadFrame {
    item: SourceFrame,
    /// The size the video is tracked at.
    processing: (u32, u32),
    scaled: Option<Frame>,
}

/// The frames, each checked against the first one's size and resized for the tracker where
/// `tracked(index)` says it sees the frame (the work the read-ahead thread does).
fn read_frames<'a>(
    frames: Box<dyn Iterator<Item = Result<SourceFrame>> + Send + 'a>,
    max_side: Option<u32>,
    source: String,
    tracked: impl Fn(usize) -> bool + Send + 'a,
) -> impl Iterator<Item = Result<ReadFrame>> + Send + 'a {
    let mut sizes: Option<Sizes> = None;
    frames.map(move |item| {
        let item = item?;
        let (w, h) = (item.frame.width, item.frame.height);
        let processing = check_size(&mut sizes, &item, max_side, &source)?;
        let scaled = (processing != (w, h) && tracked(item.index))
            .then(|| item.frame.resized(processing.0, processing.1))
            .transpose()?;
        Ok(ReadFrame {
            item,
            processing,
            scaled,
        })
    })
}

/// A frame the earlier run finished: its mask from the earlier run's files, to the sink.
fn carry_frame(
    item: &SourceFrame,
    record: &FrameStats,
    load_mask: Option<MaskLoader>,
    sink: &mut dyn FnMut(&Tracked) -> Result<()>,
) -> Result<FrameStats> {
    let load = load_mask.ok_or_else(|| Error::Invalid("replay without masks".into()))?;
    let mask = load(record)?;
    sink(&Tracked {
        frame: item,
        mask: &mask,
        mattes: None,
        record,
        carried: true,
    })?;
    Ok(record.clone())
}

/// A tracked frame's result at the original size, handed to the sink; its record.
fn track_frame(
    mut result: super::FrameOutput,
    item: &SourceFrame,
    given: Option<&Mask>,
    processing: (u32, u32),
    want_mattes: bool,
    sink: &mut dyn FnMut(&Tracked) -> Result<()>,
) -> Result<FrameStats> {
    let size = (item.frame.width, item.frame.height);
    let t = Instant::now();
    let (mask, soft) = to_original_size(&mut result, given, processing, size, want_mattes);
    result.times.merge_ms += t.elapsed().as_secs_f64() * 1000.0;
    let mut record = FrameStats {
        index: item.index,
        frame: item.name.clone(),
        times: result.times,
        objects: result.objects,
        gmacs: result.macs as f64 / 1e9,
    };
    let t = Instant::now();
    sink(&Tracked {
        frame: item,
        mask: &mask,
        mattes: soft.as_deref(),
        record: &record,
        carried: false,
    })?;
    record.times.output_ms = t.elapsed().as_secs_f64() * 1000.0;
    Ok(record)
}

/// The frames' size and the size they are tracked at (set by the first frame); errors when a
/// frame's size differs from the first's.
fn check_size(
    sizes: &mut Option<Sizes>,
    item: &SourceFrame,
    max_side: Option<u32>,
    source: &str,
) -> Result<(u32, u32)> {
    let (w, h) = (item.frame.width, item.frame.height);
    let (first, processing) =
        *sizes.get_or_insert_with(|| ((w, h), processing_size(w, h, max_side)));
    if first != (w, h) {
        return Err(Error::Invalid(format!(
            "{source}: frame {} is {w}x{h}, earlier frames are {}x{}",
            item.index, first.0, first.1
        )));
    }
    Ok(processing)
}

/// What `track` knows of a run besides its frames.
struct RunInfo {
    source: String,
    engine: String,
    precision: String,
    matching: String,
    gate: super::gate::GateSettings,
    sparse_threshold: Option<f32>,
    reverse: bool,
    sizes: Option<Sizes>,
    resumed_at: Option<usize>,
    seconds: f64,
    init_seconds: f64,
}

/// A run's statistics from its frame records (this run's and those carried over).
fn video_stats(
    info: RunInfo,
    per_frame: Vec<FrameStats>,
    records_before: &BTreeMap<usize, FrameStats>,
) -> VideoStats {
    let seconds = info.seconds;
    let tracked_frames = per_frame.len() - records_before.len().min(per_frame.len());
    let (reuse, reuse_rate) = reuse_counts(&per_frame);
    let gmacs_per_frame =
        per_frame.iter().map(|f| f.gmacs).sum::<f64>() / per_frame.len().max(1) as f64;
    let fresh: Vec<FrameStats> = per_frame
        .iter()
        .filter(|f| !records_before.contains_key(&f.index))
        .cloned()
        .collect();
    VideoStats {
        source: info.source,
        engine: info.engine,
        precision: info.precision,
        matching: info.matching,
        gate: Some(info.gate),
        sparse_threshold: info.sparse_threshold,
        frames: per_frame.len(),
        tracked_frames,
        reverse: info.reverse,
        size: info.sizes.map(|s| s.0).unwrap_or_default(),
        processing_size: info.sizes.map(|s| s.1).unwrap_or_default(),
        resumed_at: info.resumed_at,
        seconds,
        fps: tracked_frames as f64 / seconds,
        init_seconds: info.init_seconds,
        fps_without_init: tracked_frames as f64 / (seconds - info.init_seconds).max(1e-9),
        mean_times: StageTimes::mean(fresh.get(1..).unwrap_or(&[]).iter().map(|f| &f.times)),
        reuse,
        reuse_rate,
        safety: SafetyCounts::of(&per_frame),
        frame_kinds: FrameKinds::of(&fresh),
        gmacs_per_frame,
        per_frame,
        warnings: Vec::new(),
    }
}

/// A frame's result back at the frames' original size: given objects exactly as given, the
/// others' probabilities upsampled and merged again; and, when asked, each object's soft matte
/// (its share of the aggregated probability).
fn to_original_size(
    result: &mut super::FrameOutput,
    given: Option<&Mask>,
    processing: (u32, u32),
    (w, h): (u32, u32),
    want_mattes: bool,
) -> (Mask, Option<Mattes>) {
    let (pw, ph) = processing;
    let given_ids: Vec<u8> = result
        .objects
        .iter()
        .filter(|o| o.given)
        .map(|o| o.id)
        .collect();
    let probabilities = std::mem::take(&mut result.probabilities);
    if let [(id, p)] = probabilities.as_slice()
        && given_ids.is_empty()
        && !want_mattes
        && processing != (w, h)
    {
        // One tracked object and no mattes: its mask straight from its probability, without
        // the float image at the frames' size and a second pass over it (~0.35 ms a frame).
        let size = (ph as usize, pw as usize);
        let ids = threshold_bilinear(p, size, (h as usize, w as usize), *id);
        return (
            Mask {
                width: w,
                height: h,
                ids,
            },
            None,
        );
    }
    let (ids, probs): (Vec<u8>, Vec<Vec<f32>>) = if processing == (w, h) {
        probabilities.into_iter().unzip()
    } else {
        probabilities
            .into_iter()
            .map(|(id, p)| {
                let full = match given {
                    Some(m) if given_ids.contains(&id) => {
                        m.ids.iter().map(|&v| f32::from(v == id)).collect()
                    }
                    _ => resize_bilinear(&p, ph as usize, pw as usize, h as usize, w as usize),
                };
                (id, full)
            })
            .unzip()
    };
    let mask = if processing == (w, h) {
        std::mem::replace(&mut result.mask, Mask::new(0, 0))
    } else {
        Mask {
            width: w,
            height: h,
            ids: merge::labels(&ids, &probs, (w * h) as usize),
        }
    };
    let soft = want_mattes.then(|| {
        ids.iter()
            .copied()
            .zip(merge::aggregate(&probs))
            .collect::<Vec<_>>()
    });
    (mask, soft)
}
