//! The memory tracker (REMN's ideas on the project's frozen backbone, no trained weights):
//! per object a bank of frames — their keys (L2-normalised stride-8 backbone features) and the
//! object's probability — read out by top-k matching. Frames whose mask the user gave stay for
//! the whole video (searched in a local window, or over the whole frame with
//! `global_given`); tracked frames are written only when
//! the object changed enough since the last written one (adaptive update), into a bounded bank
//! searched in a local window around each query cell (local attention).

mod kernel;
mod keys;
pub mod readout;

use super::{DeepFeatures, ObjectModel, Prior, Tracker, TrackerKind};
use crate::engine::BackboneEngine;
use crate::error::Result;
use crate::io::Frame;
use crate::metrics::region::iou_of;
use crate::model::FeatureMap;
use crate::model::backbone::LowFeatures;
use crate::model::online::area_downsample;
use crate::model::tensor::resize_bilinear;
use readout::{Keys, MemoryFrame, ReadoutConfig, Window, readout};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The memory tracker's settings.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct MemoryConfig {
    pub readout: ReadoutSettings,
    /// Tracked frames kept (the given frames come on top and are never dropped).
    pub slots: usize,
    /// A tracked frame is written when 1 − IoU(its mask, the last written mask) exceeds this
    /// (0: every frame)...
    pub write_change: f32,
    /// ...or when this many frames passed since the last write.
    pub write_every: usize,
    /// What a tracked frame is written with.
    #[serde(default)]
    pub writes: MemoryWrites,
    /// When the last scored frame is read although the write rule did not keep it.
    #[serde(default)]
    pub last: LastFrame,
}

/// When the memory reads the last scored frame, written or not (STM's "previous frame").
/// `Off` is what a job record without it ran with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LastFrame {
    /// Only the frames the write rule kept.
    #[default]
    Off,
    /// On a frame scored after reused ones: the reused frames wrote nothing, so without it the
    /// newest frame in memory can be several frames older than without reuse.
    AfterReuse,
    /// On every scored frame.
    Always,
}

/// The mask a tracked frame is written into memory with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MemoryWrites {
    /// The object's mask after the decoder and the merge (the tracker's best guess).
    #[default]
    Decoder,
    /// The memory's own prediction on that frame (its probability above 0.5, on its grid):
    /// what training writes, so a decoder reads the memory as it learnt it — a decoder that
    /// trims the memory's score would otherwise trim its own output again on every frame.
    Memory,
}

/// [`ReadoutConfig`] as settings.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct ReadoutSettings {
    pub top_k: usize,
    pub temperature: f32,
    pub radius: usize,
    /// Search given frames over the whole frame (else in a local window too).
    pub global_given: bool,
    /// The local window's radius for given frames (None: `radius`). The given frame can be
    /// far back in time, the tracked ones are recent.
    #[serde(default)]
    pub given_radius: Option<usize>,
    /// The radius of every local window (given and tracked frames) on a frame scored after
    /// reused ones (None: as without reuse). The object went on moving during the copies, so
    /// the memory's newest frame is further from it than a computed frame's would be.
    #[serde(default)]
    pub reuse_radius: Option<usize>,
}

impl ReadoutSettings {
    /// Where a given frame is searched.
    pub fn given_window(&self) -> Window {
        match self.global_given {
            true => Window::Global,
            false => Window::Local(self.given_radius.unwrap_or(self.radius)),
        }
    }
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            readout: ReadoutSettings {
                top_k: 5,
                temperature: 0.1,
                radius: 12,
                global_given: false,
                given_radius: None,
                reuse_radius: None,
            },
            slots: 7,
            // Chosen on all 30 training sequences (training-free): J&F 67.5 against 66.6 for
            // writing every frame and 64.3 with 3 slots.
            write_change: 0.1,
            write_every: 5,
            writes: MemoryWrites::Decoder,
            // Session 24: the memory tracker's car-turn 76.4 → 78.6 J&F at τ = 0.7; the
            // fusion default and the quality mode unchanged (±0.01 a fold); never reusing,
            // byte for byte the same.
            last: LastFrame::AfterReuse,
        }
    }
}

pub struct Memory {
    config: MemoryConfig,
}

impl Memory {
    pub fn new(config: MemoryConfig) -> Memory {
        Memory { config }
    }
}

impl Tracker for Memory {
    fn kind(&self) -> TrackerKind {
        TrackerKind::Memory
    }

    fn frame_input(
        &self,
        low: &LowFeatures,
        _high: &crate::model::backbone::HighFeatures,
    ) -> FeatureMap {
        low.s8.clone()
    }

    fn start(
        &self,
        _backbone: &mut dyn BackboneEngine,
        frame: &Frame,
        low: &LowFeatures,
        deep: &DeepFeatures,
        mask: &[u8],
    ) -> Result<Box<dyn ObjectModel>> {
        let size = (frame.width as usize, frame.height as usize);
        Ok(Box::new(MemoryObject::start(
            self.config,
            size,
            deep.match_keys(low),
            mask,
        )))
    }

    fn score_macs(&self, _input: (usize, usize, usize), (c, h, w): (usize, usize, usize)) -> u64 {
        let r = self.config.readout;
        let cells = |window: Window| {
            let side = 2 * window.radius(h, w) + 1;
            side.min(h) * side.min(w)
        };
        let (given, recent) = (cells(r.given_window()), cells(Window::Local(r.radius)));
        (h * w * c * (given + self.config.slots * recent)) as u64
    }
}

/// A one-channel map resized (bilinearly) to `h × w` when it is not that size: the decoder
/// reads scores on the stride-8 grid whatever grid the keys had.
pub fn on_grid(map: FeatureMap, h: usize, w: usize) -> FeatureMap {
    if (map.height, map.width) == (h, w) {
        return map;
    }
    let data = resize_bilinear(&map.data, map.height, map.width, h, w);
    FeatureMap::new(1, h, w, data)
}

/// One object's memory.
pub struct MemoryObject {
    config: MemoryConfig,
    given: Vec<MemoryFrame>,
    recent: VecDeque<MemoryFrame>,
    /// The last scored frame when the write rule did not keep it (read as `config.last` says).
    last: Option<MemoryFrame>,
    /// The last scored frame's keys, kept for `learn`.
    pending: Option<Keys>,
    /// The last scored frame's probability on the keys' grid (for [`MemoryWrites::Memory`]).
    predicted: Vec<f32>,
    /// The values of the last written frame, for the change score.
    last_written: Vec<f32>,
    since_write: usize,
    /// Whether the object reused frames since its last scored one.
    after_reuse: bool,
    /// The last readout, on the keys' grid (what a stale-keys frame moves).
    last_readout: Vec<f32>,
}

impl MemoryObject {
    /// Starts on a frame of size `(w, h)` with keys `keys` (stride-8 features or DINOv2
    /// tokens) and the object's binary mask.
    pub fn start(
        config: MemoryConfig,
        (w, h): (usize, usize),
        keys: &FeatureMap,
        mask: &[u8],
    ) -> MemoryObject {
        let full: Vec<f32> = mask.iter().map(|&m| f32::from(m > 0)).collect();
        let values = area_downsample(&full, w, h, keys.width, keys.height);
        let given = MemoryFrame {
            keys: Keys::from_map(keys),
            values: values.clone(),
            window: config.readout.given_window(),
        };
        MemoryObject {
            config,
            given: vec![given],
            recent: VecDeque::new(),
            last: None,
            pending: None,
            predicted: Vec::new(),
            last_written: values,
            since_write: 0,
            after_reuse: false,
            last_readout: Vec::new(),
        }
    }

    /// The object's probability on the keys' grid for a frame with keys `map`.
    pub fn propagate(&mut self, map: &FeatureMap) -> FeatureMap {
        let keys = Keys::from_map(map);
        let with_last = match self.config.last {
            LastFrame::Off => false,
            LastFrame::AfterReuse => self.after_reuse,
            LastFrame::Always => true,
        };
        let last = self.last.iter().filter(|_| with_last);
        let frames: Vec<&MemoryFrame> = self.given.iter().chain(&self.recent).chain(last).collect();
        let r = self.config.readout;
        let widen = r.reuse_radius.filter(|_| self.after_reuse);
        self.after_reuse = false;
        let cfg = ReadoutConfig {
            top_k: r.top_k,
            temperature: r.temperature,
            min_radius: widen.unwrap_or(0),
        };
        let p = readout(&keys, &frames, &cfg);
        self.last_readout.clone_from(&p);
        self.pending = Some(keys);
        if self.config.writes == MemoryWrites::Memory {
            self.predicted.clone_from(&p);
        }
        FeatureMap::new(1, map.height, map.width, p)
    }

    /// On a frame whose keys were not computed: the last readout moved as the object moved,
    /// read in place of matching. A readout, not the decoded mask: the decoder was trained on
    /// readouts (fold 0, quality mode: 79.55 J&F with the readout moved, 79.21 with the
    /// mask). Nothing of the frame can be written, and the memory ages as on a reused frame.
    pub fn assume(&mut self, prior: Prior) -> FeatureMap {
        let (w, h) = prior.size;
        let (kh, kw) = self
            .given
            .first()
            .map_or((h, w), |g| (g.keys.height, g.keys.width));
        let last = match self.last_readout.len() == kh * kw {
            true => &self.last_readout,
            // Nothing read yet (only the given frame): its mask.
            false => self
                .given
                .first()
                .map(|g| &g.values)
                .unwrap_or(&self.last_readout),
        };
        let p = match last.len() == kh * kw {
            true => {
                let up = resize_bilinear(last, kh, kw, h, w);
                area_downsample(&prior.follow.apply(&up, prior.size), w, h, kw, kh)
            }
            false => vec![0.0; kh * kw],
        };
        self.pending = None;
        self.skipped();
        if self.config.writes == MemoryWrites::Memory {
            self.predicted.clone_from(&p);
        }
        FeatureMap::new(1, kh, kw, p)
    }

    /// Writes the last scored frame with the object's merged soft mask when the write rule
    /// says so; drops the oldest tracked frame beyond the slots. Returns whether it wrote.
    pub fn remember(&mut self, soft: &[f32], (w, h): (usize, usize)) -> bool {
        let Some(keys) = self.pending.take() else {
            return false;
        };
        self.since_write += 1;
        let values = match self.config.writes {
            // The object's pixels after the merge, as coverage per cell: storing its soft
            // probability instead would shrink the object a little more on every frame (a
            // readout of values below one reads below one).
            MemoryWrites::Decoder => {
                let hard: Vec<f32> = soft.iter().map(|&p| f32::from(p > 0.0)).collect();
                area_downsample(&hard, w, h, keys.width, keys.height)
            }
            MemoryWrites::Memory => self.predicted.iter().map(|&p| f32::from(p > 0.5)).collect(),
        };
        let change = 1.0 - iou_of(&values, &self.last_written, |&v| v > 0.5, |&v| v > 0.5);
        let due = self.since_write >= self.config.write_every.max(1);
        let frame = MemoryFrame {
            keys,
            values,
            window: Window::Local(self.config.readout.radius),
        };
        if !(due || change as f32 > self.config.write_change) || self.config.slots == 0 {
            self.last = (self.config.last != LastFrame::Off).then_some(frame);
            return false;
        }
        self.last = None;
        self.last_written = frame.values.clone();
        self.since_write = 0;
        self.recent.push_back(frame);
        while self.recent.len() > self.config.slots {
            self.recent.pop_front();
        }
        true
    }

    /// Frames held: given and tracked.
    pub fn frames(&self) -> (usize, usize) {
        (self.given.len(), self.recent.len())
    }

    pub fn bytes(&self) -> usize {
        self.given
            .iter()
            .chain(&self.recent)
            .chain(&self.last)
            .map(|f| f.keys.bytes() + f.values.len() * 4)
            .sum()
    }
}

impl ObjectModel for MemoryObject {
    fn score(
        &mut self,
        low: &LowFeatures,
        deep: &DeepFeatures,
        prior: Option<Prior>,
    ) -> FeatureMap {
        let p = match prior {
            Some(prior) => self.assume(prior),
            None => self.propagate(deep.match_keys(low)),
        };
        on_grid(p, low.s8.height, low.s8.width)
    }

    fn learn(&mut self, soft: &[f32], size: (usize, usize), _area: usize) -> bool {
        self.remember(soft, size)
    }

    /// Counts the unscored frame towards `write_every`: the memory is written as often in
    /// video time as without reuse (counting scored frames only, a video reused four frames in
    /// five was written every 25 frames and its memory aged: rhino lost 0.02 J even on its
    /// computed frames).
    fn skipped(&mut self) {
        self.since_write += 1;
        self.after_reuse = true;
    }

    fn memory_bytes(&self) -> usize {
        self.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys on a 6×8 grid that are each other's strangers: every cell matches itself.
    fn keys() -> FeatureMap {
        let (c, h, w) = (48, 6, 8);
        let mut data = vec![0.0; c * h * w];
        for cell in 0..h * w {
            data[cell * (h * w) + cell] = 1.0;
        }
        FeatureMap::new(c, h, w, data)
    }

    /// The object of most tests: the left half of a 6×8 frame.
    fn left_half() -> Vec<u8> {
        (0..48).map(|i| u8::from(i % 8 < 4)).collect()
    }

    /// What a tracked frame is written with, after the memory predicted the given mask and the
    /// decoder said the object is gone.
    fn written(writes: MemoryWrites) -> Vec<f32> {
        let config = MemoryConfig {
            write_every: 1,
            writes,
            ..Default::default()
        };
        let mut object = MemoryObject::start(config, (8, 6), &keys(), &left_half());
        object.propagate(&keys());
        assert!(object.remember(&[0.0; 48], (8, 6)));
        object.recent[0].values.clone()
    }

    #[test]
    fn a_tracked_frame_is_written_with_the_chosen_mask() {
        assert!(written(MemoryWrites::Decoder).iter().all(|&v| v == 0.0));
        let own = written(MemoryWrites::Memory);
        let expected: Vec<f32> = left_half().into_iter().map(f32::from).collect();
        assert_eq!(own, expected);
    }

    #[test]
    fn reused_frames_count_towards_the_write_interval() {
        let config = MemoryConfig {
            write_every: 5,
            // Never written for a change of mask: only the interval decides.
            write_change: 1.0,
            ..Default::default()
        };
        let mask = left_half();
        let soft: Vec<f32> = mask.iter().map(|&m| f32::from(m)).collect();
        let tracked = |skips: usize| {
            let mut object = MemoryObject::start(config, (8, 6), &keys(), &mask);
            for _ in 0..skips {
                object.skipped();
            }
            object.propagate(&keys());
            object.remember(&soft, (8, 6))
        };
        // The first scored frame after four reused ones is the fifth of the video: written.
        assert!(tracked(4));
        assert!(!tracked(3));
        assert!(!tracked(0));
    }

    #[test]
    fn the_last_scored_frame_is_read_as_configured() {
        // The given frame holds the object on the left half; the next scored frame says it is
        // gone and is not written (no interval reached, no change counts). Read again, a cell
        // of the left half averages the two frames when the unwritten one is read (≈ 0.5),
        // and sees the given frame alone otherwise (≈ 1).
        let left_cell = 2 * 8 + 1;
        let read = |last: LastFrame, skip: bool| {
            let config = MemoryConfig {
                write_every: 5,
                write_change: 1.0,
                last,
                ..Default::default()
            };
            let mut object = MemoryObject::start(config, (8, 6), &keys(), &left_half());
            object.propagate(&keys());
            assert!(!object.remember(&[0.0; 48], (8, 6)));
            if skip {
                object.skipped();
            }
            object.propagate(&keys()).data[left_cell]
        };
        let alone = read(LastFrame::Off, true);
        assert!(alone > 0.99, "{alone}");
        let after_reuse = read(LastFrame::AfterReuse, true);
        assert!((after_reuse - 0.5).abs() < 0.01, "{after_reuse}");
        assert_eq!(read(LastFrame::AfterReuse, false), alone);
        let always = read(LastFrame::Always, false);
        assert!((always - 0.5).abs() < 0.01, "{always}");
    }

    #[test]
    fn a_frame_scored_after_reuse_searches_the_wider_window() {
        // The frame's content moved 3 cells right of the given frame's: cell (y, x) has the key
        // of the given frame's (y, x − 3); the three columns it uncovered are new keys.
        let (c, h, w) = (66, 6, 8);
        let mut moved = vec![0.0; c * h * w];
        for y in 0..h {
            for x in 0..w {
                let channel = if x >= 3 {
                    y * w + x - 3
                } else {
                    48 + y * 3 + x
                };
                moved[channel * (h * w) + y * w + x] = 1.0;
            }
        }
        let moved = FeatureMap::new(c, h, w, moved);
        let mut given = keys().data;
        given.extend(vec![0.0; 18 * h * w]);
        let given = FeatureMap::new(c, h, w, given);
        let mut config = MemoryConfig::default();
        config.readout.radius = 2;
        config.readout.reuse_radius = Some(3);
        // The object: the given frame's left half.
        let mut object = MemoryObject::start(config, (8, 6), &given, &left_half());
        // Cell (2, 5) shows the object's cell (2, 2), three columns away.
        let at = 2 * w + 5;
        let narrow = object.propagate(&moved).data[at];
        object.skipped();
        let wide = object.propagate(&moved).data[at];
        let again = object.propagate(&moved).data[at];
        assert!(narrow < 0.9, "{narrow}");
        assert!(wide > 0.99, "{wide}");
        assert_eq!(again, narrow, "the wider window is for one frame");
    }
}
