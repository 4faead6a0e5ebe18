//! Tracking every sequence of a dataset split into the DAVIS result layout, sequences in
//! parallel (`jobs`), with the timing and reuse figures of each.

use crate::error::{Error, Result};
use crate::io::Dataset;
use crate::io::dataset::SequenceInfo;
use crate::io::prefetch::{WRITE_BEHIND, behind};
use crate::io::source::Source;
use crate::model::Model;
use crate::track::TrackerConfig;
use crate::track::decide::Oracle;
use crate::track::gate::GatePolicy;
use crate::track::video::{FrameKinds, ObjectReuse, SafetyCounts, TrackRequest, track};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// One sequence's figures.
#[derive(Clone, Debug, Serialize)]
pub struct SequenceTiming {
    pub sequence: String,
    pub frames: usize,
    pub seconds: f64,
    pub fps: f64,
    pub init_seconds: f64,
    pub fps_without_init: f64,
    pub reuse_rate: f64,
    pub gmacs_per_frame: f64,
    pub reuse: BTreeMap<u8, ObjectReuse>,
    /// The most any object's tracker model held, bytes.
    pub max_object_bytes: usize,
    pub frame_kinds: FrameKinds,
    pub safety: SafetyCounts,
}

/// The figures of a whole split (`timing.json`).
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub engine: String,
    /// The shard of the split this run covered, if any.
    pub shard: Option<Shard>,
    pub jobs: usize,
    pub threads_per_job: usize,
    pub gate: crate::track::gate::GateSettings,
    pub sequences: Vec<SequenceTiming>,
    /// Mean of the sequences' FPS.
    pub mean_fps: f64,
    pub frames: usize,
    pub wall_seconds: f64,
    /// All frames over the wall time.
    pub throughput_fps: f64,
    /// Reused object-frames over all tracked object-frames of the split (given frames excluded).
    pub reuse_rate: f64,
    /// Mean multiply-accumulates per frame over the split, GMAC.
    pub gmacs_per_frame: f64,
    /// The most any object's tracker model held in any sequence, bytes.
    pub max_object_bytes: usize,
    /// Time per computed frame and per frame where every object reused, over the split.
    pub frame_kinds: FrameKinds,
    /// Object-frames the safety net computed although the gate would have reused them.
    pub safety: SafetyCounts,
}

/// One part of a split for a batch scheduler (`--shard i/n`, i from 0): every n-th sequence
/// starting at the i-th. Shards write disjoint files, so their outputs merge by directory union.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let parse = || -> Option<Shard> {
            let (i, n) = s.split_once('/')?;
            let (index, count) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
            (count > 0 && index < count).then_some(Shard { index, count })
        };
        parse().ok_or_else(|| format!("{s}: a shard is i/n with 0 <= i < n (e.g. 0/4)"))
    }
}

impl Shard {
    /// This shard's sequences, in the split's order.
    pub fn select(&self, sequences: &[String]) -> Vec<String> {
        sequences
            .iter()
            .enumerate()
            .filter(|(k, _)| k % self.count == self.index)
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// This shard's timing file (the whole split's is `timing.json`).
    pub fn timing_file(&self) -> String {
        crate::output::names::shard_timing(self.index, self.count)
    }
}

/// A sequence to track: its annotations and frames (`eval` needs only the annotations; a
/// missing frame folder is an error here, named).
fn with_frames(dataset: &Dataset, seq: &str) -> Result<SequenceInfo> {
    let info = dataset.sequence(seq)?;
    if info.frames.is_empty() {
        return Err(Error::Missing {
            path: dataset.frames_dir(seq),
            what: "the sequence's frames (JPEG/PNG) to track".into(),
        });
    }
    Ok(info)
}

/// Tracks every sequence of `dataset` into `<out>/<sequence>/` (per-frame figures in
/// `<out>/stats/<sequence>.json`, the split's in `<out>/timing.json`, or the shard's timing
/// file; the caller selects the shard's sequences), `jobs` sequences at a time
/// (the config's threads are per job). The `oracle` policy reads every frame's annotation.
pub fn run_dataset(
    model: &Model,
    cfg: &TrackerConfig,
    dataset: &Dataset,
    out: &Path,
    jobs: usize,
    shard: Option<Shard>,
    tick: &(dyn Fn() + Sync),
) -> Result<RunSummary> {
    let jobs = jobs.clamp(1, dataset.sequences.len().max(1));
    let infos = dataset
        .sequences
        .iter()
        .map(|s| with_frames(dataset, s))
        .collect::<Result<Vec<_>>>()?;
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<SequenceTiming>)>> = Mutex::default();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(info) = infos.get(i) else { break };
                    let r = track_sequence(model, cfg, dataset, info, out, tick);
                    if let Ok(mut all) = results.lock() {
                        all.push((i, r));
                    }
                }
            });
        }
    });
    let mut results = results
        .into_inner()
        .map_err(|_| Error::Invalid("a worker panicked".into()))?;
    results.sort_by_key(|(i, _)| *i);
    let mut sequences = Vec::new();
    for (_, r) in results {
        sequences.push(r?);
    }
    let wall = start.elapsed().as_secs_f64();
    let frames: usize = sequences.iter().map(|t| t.frames).sum();
    let (tracked, reused) = sequences
        .iter()
        .flat_map(|t| t.reuse.values())
        .fold((0, 0), |(a, b), r| (a + r.frames, b + r.reused));
    let summary = RunSummary {
        shard,
        engine: crate::engine::resolve(cfg.engine)?.to_string(),
        jobs,
        threads_per_job: cfg.threads,
        gate: cfg.gate,
        mean_fps: sequences.iter().map(|t| t.fps).sum::<f64>() / sequences.len().max(1) as f64,
        frames,
        wall_seconds: wall,
        throughput_fps: frames as f64 / wall,
        reuse_rate: reused as f64 / tracked.max(1) as f64,
        gmacs_per_frame: sequences
            .iter()
            .map(|t| t.gmacs_per_frame * t.frames as f64)
            .sum::<f64>()
            / frames.max(1) as f64,
        max_object_bytes: sequences
            .iter()
            .map(|t| t.max_object_bytes)
            .max()
            .unwrap_or(0),
        frame_kinds: FrameKinds::combine(sequences.iter().map(|t| &t.frame_kinds)),
        safety: sequences
            .iter()
            .fold(SafetyCounts::default(), |a, t| a.plus(&t.safety)),
        sequences,
    };
    let text = serde_json::to_string_pretty(&summary).map_err(|e| Error::Invalid(e.to_string()))?;
    let timing = shard.map_or_else(
        || crate::output::names::TIMING.to_string(),
        |s| s.timing_file(),
    );
    crate::io::atomic::write_bytes(&out.join(timing), text.as_bytes())?;
    Ok(summary)
}

/// Tracks one sequence from its first annotation into `<out>/<sequence>/`, with its statistics
/// beside the result folders.
fn track_sequence(
    model: &Model,
    cfg: &TrackerConfig,
    dataset: &Dataset,
    info: &SequenceInfo,
    out: &Path,
    tick: &(dyn Fn() + Sync),
) -> Result<SequenceTiming> {
    let kind = dataset.kind;
    let (first, first_ann) = info
        .annotations
        .first()
        .ok_or_else(|| Error::Invalid(format!("sequence {}: no annotation", info.name)))?;
    let mask = kind.read_annotation(first_ann)?;
    // The run tracks from frame 0 forwards: the session's index is the
    // frame's.
    let annotations = info.annotations.clone();
    let oracle: Oracle = Box::new(move |i| match annotations.iter().find(|(f, _)| *f == i) {
        None => Ok(None),
        Some((_, p)) => kind.read_annotation(p).map(Some),
    });
    let wants_oracle = cfg.gate.policy == GatePolicy::Oracle;
    let source = Source::Folder {
        dir: dataset.frames_dir(&info.name),
        paths: info.frames.clone(),
    };
    let dir = out.join(&info.name);
    let request = TrackRequest {
        frames: source.frames(0, None, false)?,
        masks: BTreeMap::from([(*first, mask)]),
        oracle: wants_oracle.then_some(oracle),
        replay: None,
        source: crate::output::job_record::resolved(source.path()),
        reverse: false,
    };
    // The masks are encoded and written on a thread behind the tracker.
    let stats = behind(
        WRITE_BEHIND,
        |(path, mask): (std::path::PathBuf, crate::io::Mask)| mask.save(&path),
        |push| {
            track(
                model,
                cfg,
                request,
                &mut |t| {
                    push((dir.join(format!("{}.png", t.frame.name)), t.mask.clone()))?;
                    tick();
                    Ok(())
                },
                false,
            )
        },
    )?;
    // Per-frame figures beside the result folders (eval reads only PNGs
    // inside them).
    let text = serde_json::to_string(&stats).map_err(|e| Error::Invalid(e.to_string()))?;
    crate::io::atomic::write_bytes(
        &crate::output::names::sequence_stats(out, &info.name),
        text.as_bytes(),
    )?;
    Ok(SequenceTiming {
        sequence: info.name.clone(),
        frames: stats.frames,
        seconds: stats.seconds,
        fps: stats.fps,
        init_seconds: stats.init_seconds,
        fps_without_init: stats.fps_without_init,
        reuse_rate: stats.reuse_rate,
        gmacs_per_frame: stats.gmacs_per_frame,
        frame_kinds: stats.frame_kinds,
        safety: stats.safety,
        max_object_bytes: stats
            .per_frame
            .iter()
            .flat_map(|f| &f.objects)
            .map(|o| o.memory_bytes)
            .max()
            .unwrap_or(0),
        reuse: stats.reuse,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_split() {
        let seqs: Vec<String> = (0..7).map(|i| format!("s{i}")).collect();
        let shards: Vec<Shard> = (0..3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        let mut all: Vec<String> = shards.iter().flat_map(|s| s.select(&seqs)).collect();
        all.sort();
        assert_eq!(all, seqs);
        assert_eq!(shards[1].select(&seqs), vec!["s1", "s4"]);
        assert!("3/3".parse::<Shard>().is_err() && "1-3".parse::<Shard>().is_err());
        assert_eq!(shards[2].timing_file(), "timing-2-of-3.json");
    }
}
