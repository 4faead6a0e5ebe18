//! The streaming session a program drives frame by frame. Each pushed frame runs the same steps,
//! decide first, then run: features → per-object decision → path → merge → update.

// Public here too: these were the session's own types before `config` held them.
pub use super::config::{DEFAULT_MAX_SIDE, TrackerConfig, TrackingSize};
use super::decide::{Decided, Oracle, decide};
use super::flops::StageMacs;
use super::gate::{GatePolicy, GateSettings, Path};
use super::keys::{KeySource, MatchBackbone};
use super::merge;
use super::object::{Anchor, ObjectFrame, ObjectState, Objects, ReuseMemory};
use super::paths::{self, PathContext, PathResult};
use super::safety::{Footprint, Thumb};
use super::timing::{Stage, StageTimes, since};
use super::tracker::{self, DeepFeatures, FrameFeatures, Tracker, TrackerKind};
use crate::engine::{self, BackboneEngine, DecoderEngine, EngineKind, Precision, ReuseEngine};
use crate::error::{Error, Result};
use crate::io::{Frame, Mask};
use crate::metrics::region::iou_of;
use crate::model::backbone::{LowFeatures, normalize};
use crate::model::online::area_downsample;
use crate::model::projection::KeyProjection;
use crate::model::{FeatureMap, Model};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// The result of one frame.
pub struct FrameOutput {
    pub index: usize,
    pub mask: Mask,
    /// Per object (id order): its probability map, full resolution (given masks: 0/1).
    pub probabilities: Vec<(u8, Vec<f32>)>,
    pub objects: Vec<ObjectFrame>,
    pub times: StageTimes,
    /// Multiply-accumulates of the paths taken (analytic, see `flops`).
    pub macs: u64,
}

/// A tracking session over one video.
pub struct Session {
    backbone: Box<dyn BackboneEngine>,
    decoder: Box<dyn DecoderEngine>,
    reuse: Option<Box<dyn ReuseEngine>>,
    tracker: Box<dyn Tracker>,
    /// DINOv2's keys for the memory (quality mode), else None.
    keys: Option<KeySource>,
    /// MobileNetV2's keys projected to fewer channels (a cheaper readout), else None.
    projection: Option<KeyProjection>,
    oracle: Option<Oracle>,
    kind: EngineKind,
    precision: Precision,
    config: TrackerConfig,
    model: Model,
    objects: Objects,
    masks: BTreeMap<usize, Mask>,
    next: usize,
    size: Option<(u32, u32)>,
    macs: Option<StageMacs>,
}

/// One frame on its way through the steps.
struct FrameRun<'f> {
    index: usize,
    frame: &'f Frame,
    given: Option<Mask>,
    given_ids: Vec<u8>,
    /// The frame's ground truth, for the oracle policy.
    truth: Option<Mask>,
    /// The backbone's features, computed when some object needs them (a frame where every
    /// object copies its mask never runs the networks).
    features: Option<FrameFeatures>,
    /// Luma cells, when the motion gate or the safety net can run.
    thumb: Arc<Thumb>,
    /// The share of the frame the backbone's low blocks ran on (region reuse runs less).
    low_share: f64,
    times: StageTimes,
}

/// The number format the backbone runs in: the one asked for (an error when there is no int8
/// plan; `engine::backbone` refuses int8 on Burn), else int8 where it can run.
fn resolve_precision(
    asked: Option<Precision>,
    kind: EngineKind,
    model: &Model,
) -> Result<Precision> {
    match (asked, kind, &model.int8) {
        (Some(Precision::Int8), _, None) => Err(Error::Invalid(
            "--precision int8: these backbone weights have no int8 ranges (make them with `reuse-vos weights calibrate`, pass them with --int8-plan)".into(),
        )),
        (Some(p), ..) => Ok(p),
        (None, EngineKind::Ort, Some(_)) => Ok(Precision::Int8),
        (None, ..) => Ok(Precision::F32),
    }
}

impl Session {
    /// A session without ground truth (every policy but `oracle`).
    pub fn new(model: &Model, config: TrackerConfig) -> Result<Session> {
        Self::make(model, config, None)
    }

    /// A session whose `oracle` policy reads each frame's ground truth from `oracle`.
    pub fn with_oracle(model: &Model, config: TrackerConfig, oracle: Oracle) -> Result<Session> {
        Self::make(model, config, Some(oracle))
    }

    fn make(model: &Model, mut config: TrackerConfig, oracle: Option<Oracle>) -> Result<Session> {
        // A decoder trained on both of fusion's scores reads them stacked.
        config.fusion.stacked = model.decoder_config.score_channels == 2;
        // The memory's score is a probability: without a decoder trained on it, it is read
        // directly (FRTM's decoder measured worse on it: splits/dev.txt J&F 56.7 against 59.2).
        // The same when its decoder read another backbone's matching.
        let matched = model
            .decoder_config
            .matching
            .as_deref()
            .unwrap_or("mobilenetv2");
        if config.tracker == TrackerKind::Memory
            && (model.decoder_config.trained_on != "memory"
                || matched != config.matching.backbone.to_string())
        {
            config.decoder = false;
        }
        // The reuse path runs the decoder's shallow stages on a stored state, and its gate was
        // trained over FRTM's decoder (on fusion's scores it reused 95 % of rhino: J&F 64.6
        // against 79.9): without the decoder, or on another tracker, every frame is computed until a
        // gate is trained for it. The stats record the gate actually used.
        if (!config.decoder || config.tracker != TrackerKind::Frtm) && config.gate.needs_reuse_net()
        {
            config.gate.policy = GatePolicy::Never;
        }
        let tracker = tracker::build(config.tracker, &config);
        if tracker.score_channels() != model.decoder_config.score_channels {
            return Err(Error::Invalid(format!(
                "the decoder reads {}-channel scores and the {} tracker gives {}: pass a decoder trained for it (--decoder)",
                model.decoder_config.score_channels,
                config.tracker,
                tracker.score_channels()
            )));
        }
        let kind = engine::resolve(config.engine)?;
        let policy = config.gate.policy;
        let reuse = match &model.reuse {
            _ if !config.gate.needs_reuse_net() => None,
            Some(net) => Some(engine::reuse(
                net,
                model.feature_channels()[2],
                kind,
                config.threads,
            )?),
            None => {
                return Err(Error::Invalid(format!(
                    "--gate {policy} needs reuse-path weights, and this model has none (train them with `reuse-vos train --stage gate`, pass them with --reuse)"
                )));
            }
        };
        if policy == GatePolicy::Oracle && reuse.is_some() && oracle.is_none() {
            return Err(Error::Invalid(
                "--gate oracle needs the ground truth of every frame (only `run` and `sweep` on annotated data have it)".into(),
            ));
        }
        let oracle = oracle.filter(|_| policy == GatePolicy::Oracle && reuse.is_some());
        let precision = resolve_precision(config.precision, kind, model)?;
        let int8 = model.int8.as_ref().filter(|_| precision == Precision::Int8);
        if config.matching.backbone != MatchBackbone::Mobilenetv2
            && config.tracker == TrackerKind::Frtm
        {
            return Err(Error::Invalid(format!(
                "--backbone {}: only the memory and fusion trackers match features (use --tracker fusion or memory)",
                config.matching.backbone
            )));
        }
        let keys = KeySource::new(config.matching, model.vit.as_ref(), kind, config.threads)?;
        // Skipping keys only saves something when a network of their own makes them.
        if keys.is_none() {
            config.gate.stale_keys = None;
        }
        // FRTM matches nothing: no keys to project.
        let projection = config
            .matching
            .projection()?
            .filter(|_| config.tracker != TrackerKind::Frtm);
        Ok(Session {
            backbone: {
                let dense = engine::backbone(&model.backbone, Some(kind), int8, config.threads)?;
                match config.sparse {
                    Some(t) => Box::new(engine::sparse::SparseBackbone::new(dense, t)),
                    None => dense,
                }
            },
            decoder: engine::decoder(
                &model.decoder,
                model.feature_channels(),
                kind,
                config.threads,
            )?,
            reuse,
            tracker,
            keys,
            projection,
            oracle,
            kind,
            precision,
            config,
            model: model.clone(),
            objects: Objects::default(),
            masks: BTreeMap::new(),
            next: 0,
            size: None,
            macs: None,
        })
    }

    pub fn engine(&self) -> EngineKind {
        self.kind
    }

    /// What the memory matches (a description for the stats).
    pub fn matching(&self) -> String {
        match (&self.keys, self.size) {
            (Some(k), Some((w, h))) => {
                let s = k.shape((w as usize, h as usize));
                format!("dinov2s (layer {}, {}x{})", s.layers, s.width, s.height)
            }
            (Some(_), None) => "dinov2s".into(),
            (None, _) => match &self.projection {
                Some(p) => format!("mobilenetv2 ({} key channels)", p.channels_out()),
                None => "mobilenetv2".into(),
            },
        }
    }

    /// The backbone's number format.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The region-reuse threshold of the backbone's first blocks (None: dense).
    pub fn sparse(&self) -> Option<f32> {
        self.config.sparse
    }

    /// The gate the session runs (the asked one, or `never` when no decoder runs).
    pub fn gate(&self) -> GateSettings {
        self.config.gate
    }

    /// Gives the mask of frame `frame` (this frame index or a later one). Its objects that are
    /// new start there; those that exist restart from it. Void (255) counts as background.
    pub fn add_mask(&mut self, frame: usize, mask: Mask) -> Result<()> {
        if frame < self.next {
            return Err(Error::Invalid(format!(
                "a mask for frame {frame} arrived after that frame was processed"
            )));
        }
        if mask.object_ids().is_empty() {
            return Err(Error::Invalid(format!(
                "the mask for frame {frame} holds no object"
            )));
        }
        self.masks.insert(frame, mask);
        Ok(())
    }

    /// The index the next pushed frame gets (masks for it go to `add_mask` with this index).
    pub fn next_index(&self) -> usize {
        self.next
    }

    /// Object ids being tracked.
    pub fn object_ids(&self) -> Vec<u8> {
        self.objects.ids()
    }

    /// Tracks one frame.
    pub fn push(&mut self, frame: &Frame) -> Result<FrameOutput> {
        let start = Instant::now();
        let mut run = self.begin(frame)?;
        self.start_given(&mut run)?;
        let mut decided = self.decide_all(&mut run)?;
        let computed = decided.iter().filter(|d| d.path() == Path::Computed);
        if let Some(keys) = computed
            .map(|d| !d.decision.stale_keys)
            .reduce(|a, b| a || b)
        {
            self.ensure_deep(&mut run, keys)?;
        }
        let deep = run.features.as_ref().and_then(|f| f.deep.as_ref());
        if deep.is_some_and(|d| d.keys.is_some()) {
            // Keys computed for one object (or a given mask) serve every object.
            decided
                .iter_mut()
                .for_each(|d| d.decision.stale_keys = false);
        }
        let (results, path_ms) = self.run_all_paths(&mut run, &mut decided)?;
        let ids = self.objects.ids();
        let probs: Vec<Vec<f32>> = results.iter().map(|r| r.probability.clone()).collect();
        let n = (frame.width * frame.height) as usize;
        let (labels, soft) = run
            .times
            .time(Stage::Merge, || merge::merge(&ids, &probs, n));
        let objects = self.update(&mut run, &decided, &labels, &soft, &probs, &path_ms);
        run.times.total_ms = since(start);
        self.next += 1;
        let macs = self.frame_macs(&run, &decided) + results.iter().map(|r| r.macs).sum::<u64>();
        Ok(FrameOutput {
            index: run.index,
            mask: Mask {
                width: frame.width,
                height: frame.height,
                ids: labels,
            },
            probabilities: ids.into_iter().zip(probs).collect(),
            objects,
            times: run.times,
            macs,
        })
    }

    /// Step 1: checks the frame, takes its given mask and ground truth, runs the backbone's
    /// low levels (every frame pays them; the deep ones only run when needed).
    fn begin<'f>(&mut self, frame: &'f Frame) -> Result<FrameRun<'f>> {
        let index = self.next;
        self.check_size(frame, index)?;
        let given = self.masks.remove(&index);
        if self.objects.is_empty() && given.is_none() {
            return Err(Error::Invalid(format!(
                "frame {index}: no object to track yet (give a mask first)"
            )));
        }
        if let Some(mask) = &given {
            let origin = format!("mask of frame {index}");
            mask.check_size(frame.width, frame.height, std::path::Path::new(&origin))?;
        }
        let truth = match &self.oracle {
            None => None,
            Some(read) => Some(read(index)?.ok_or_else(|| {
                Error::Invalid(format!(
                    "--gate oracle needs the ground truth of every frame; frame {index} has none"
                ))
            })?),
        };
        let mut times = StageTimes::default();
        let thumb = match self.config.gate.can_reuse() {
            true => Arc::new(times.time(Stage::Gate, || Thumb::of(frame))),
            false => Arc::default(),
        };
        Ok(FrameRun {
            thumb,
            index,
            frame,
            given_ids: given.as_ref().map(|m| m.object_ids()).unwrap_or_default(),
            given,
            truth,
            features: None,
            low_share: 1.0,
            times,
        })
    }

    fn check_size(&mut self, frame: &Frame, index: usize) -> Result<()> {
        let (w, h) = (frame.width, frame.height);
        match self.size {
            None if w < 32 || h < 32 => Err(Error::Invalid(format!(
                "frame {index} is {w}x{h}: frames must be at least 32x32 pixels"
            ))),
            None => {
                self.size = Some((w, h));
                Ok(())
            }
            Some((ew, eh)) if (ew, eh) != (w, h) => Err(Error::Invalid(format!(
                "frame {index} is {w}x{h}, earlier frames are {ew}x{eh}"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// The deep backbone levels and the tracker's input, computed once per frame, and the
    /// matching backbone's keys when `keys` (not when every computed object reads stale ones).
    fn ensure_deep(&mut self, run: &mut FrameRun, keys: bool) -> Result<()> {
        self.ensure_low(run)?;
        let Some(features) = run.features.as_mut() else {
            return Ok(());
        };
        if features.deep.is_none() {
            let low = &features.low;
            let high = run
                .times
                .time(Stage::Backbone, || self.backbone.high(&low.s8))?;
            let input = run
                .times
                .time(Stage::Target, || self.tracker.frame_input(low, &high));
            let projected = match (&self.keys, &self.projection) {
                (None, Some(p)) => Some(run.times.time(Stage::Keys, || p.apply(&low.s8))?),
                _ => None,
            };
            features.deep = Some(DeepFeatures {
                high,
                input,
                keys: projected,
            });
        }
        if let (true, Some(k), Some(deep)) = (keys, self.keys.as_mut(), features.deep.as_mut())
            && deep.keys.is_none()
        {
            let frame = run.frame;
            deep.keys = Some(run.times.time(Stage::Keys, || k.keys(frame))?);
        }
        Ok(())
    }

    /// The backbone's low levels (strides 4 and 8), computed once per frame.
    fn ensure_low(&mut self, run: &mut FrameRun) -> Result<()> {
        if run.features.is_none() {
            let frame = run.frame;
            let low = run
                .times
                .time(Stage::Backbone, || self.backbone.low(&normalize(frame)))?;
            // Read now: the first frame's fit runs the backbone again on its synthetic views.
            run.low_share = self.backbone.low_share();
            run.features = Some(FrameFeatures { low, deep: None });
        }
        Ok(())
    }

    /// Step 1b: objects whose mask is given (re)start from it: a tracker model and, with a
    /// reuse path, the stored state of this frame.
    fn start_given(&mut self, run: &mut FrameRun) -> Result<()> {
        let Some(mask) = run.given.take() else {
            return Ok(());
        };
        self.ensure_deep(run, true)?;
        let t = Instant::now();
        let (w, h) = (run.frame.width as usize, run.frame.height as usize);
        let oracle = self.oracle.is_some();
        let follows = self.config.gate.follows();
        if let Some(FrameFeatures {
            low,
            deep: Some(deep),
        }) = &run.features
        {
            for &id in &run.given_ids {
                let binary: Vec<u8> = mask.ids.iter().map(|&v| u8::from(v == id)).collect();
                let mut model =
                    self.tracker
                        .start(self.backbone.as_mut(), run.frame, low, deep, &binary)?;
                let reuse = match self.reuse.as_mut() {
                    Some(engine) => {
                        let score = model.score(low, deep, None);
                        let state = self.decoder.deep(&deep.high.s32, &deep.high.s16, &score)?;
                        Some(ReuseMemory {
                            template: template(engine.as_mut(), low, &binary, (w, h))?,
                            score,
                            state,
                            s8: low.s8.clone(),
                            truth: oracle.then(|| binary.iter().map(|&b| b > 0).collect()),
                        })
                    }
                    None => None,
                };
                let previous: Vec<f32> = binary.iter().map(|&b| f32::from(b)).collect();
                self.objects.start(ObjectState {
                    id,
                    model,
                    frames: 0,
                    streak: 0,
                    keys_age: 0,
                    stale_last: false,
                    anchor: anchor(&run.thumb, &previous, (w, h), follows),
                    reuse,
                    previous,
                    audit: Default::default(),
                });
            }
        }
        run.given = Some(mask);
        run.times.add(Stage::Init, since(t));
        Ok(())
    }

    /// Step 2: every object's path (given objects keep their mask; the others ask the gate).
    fn decide_all(&mut self, run: &mut FrameRun) -> Result<Vec<Decided>> {
        if self.reuse.is_some() {
            // The learned gate reads the stride-8 features.
            self.ensure_low(run)?;
        }
        let t = Instant::now();
        let mut decided = Vec::new();
        for o in self.objects.iter() {
            let to = Instant::now();
            let mut d = if run.given_ids.contains(&o.id) {
                Decided::given()
            } else {
                decide(
                    o,
                    self.reuse.as_mut(),
                    run.features.as_ref().map(|f| &f.low.s8),
                    &run.thumb,
                    run.truth.as_ref(),
                    &self.config.gate,
                )?
            };
            d.ms = since(to);
            decided.push(d);
        }
        run.times.add(Stage::Gate, since(t));
        Ok(decided)
    }

    /// Step 3: each object's path and its time (its gate decision's share included); a reused
    /// mask that jumped away from the last computed one is computed after all (the safety net).
    fn run_all_paths(
        &mut self,
        run: &mut FrameRun,
        decided: &mut [Decided],
    ) -> Result<(Vec<PathResult>, Vec<f64>)> {
        if decided.iter().any(|d| d.path() == Path::Reused) {
            self.ensure_low(run)?;
        }
        let mut done = self.run_paths(run, decided, |_| true)?;
        let size = (run.frame.width as usize, run.frame.height as usize);
        let net = self.config.gate.safety;
        let mut jumped = vec![false; decided.len()];
        for (k, (o, d)) in self.objects.iter().zip(decided.iter_mut()).enumerate() {
            let (Some((result, _)), Some(anchor)) = (&done[k], &o.anchor) else {
                continue;
            };
            if !d.path().is_reuse() {
                continue;
            }
            let now = Footprint::of(&result.probability, size);
            if let Some(why) = net.after(&now, &anchor.footprint) {
                d.decision.path = Path::Computed;
                d.decision.safety = Some(why);
                d.decision.stale_keys = false;
                jumped[k] = true;
            }
        }
        if jumped.contains(&true) {
            self.ensure_deep(run, true)?;
            let again = self.run_paths(run, decided, |k| jumped[k])?;
            for (slot, redo) in done.iter_mut().zip(again) {
                if let (Some((first, ms)), Some((result, more))) = (slot.as_ref(), redo) {
                    *slot = Some((
                        PathResult {
                            macs: result.macs + first.macs,
                            ..result
                        },
                        ms + more,
                    ));
                }
            }
        }
        let mut results = Vec::new();
        let mut path_ms = Vec::new();
        for slot in done {
            let (r, ms) = slot.ok_or_else(|| inconsistent("an object without a path"))?;
            results.push(r);
            path_ms.push(ms);
        }
        Ok((results, path_ms))
    }

    /// The paths of the objects `which` selects (by index); `None` for the others.
    fn run_paths(
        &mut self,
        run: &mut FrameRun,
        decided: &[Decided],
        which: impl Fn(usize) -> bool,
    ) -> Result<Vec<Option<(PathResult, f64)>>> {
        let Some(features) = &run.features else {
            return self.given_or_copied(run, decided, which);
        };
        let stage = self.stage_macs(&features.low, features.deep.as_ref(), run.frame);
        let (w, h) = (run.frame.width as usize, run.frame.height as usize);
        let mut ctx = PathContext {
            decoder: self.config.decoder.then_some(self.decoder.as_mut()),
            features,
            stage: &stage,
            size: (w, h),
            times: &mut run.times,
        };
        let mut results = Vec::new();
        for (k, (o, d)) in self.objects.iter_mut().zip(decided).enumerate() {
            if !which(k) {
                results.push(None);
                continue;
            }
            let t = Instant::now();
            let result = match (d.path(), &features.deep, &run.given) {
                (Path::Given, _, Some(mask)) => paths::given(mask, o.id),
                (Path::Copied, _, _) => paths::copied(o, d.follow.as_ref(), (w, h)),
                (Path::Computed, Some(deep), _) => {
                    let stale = d.follow.as_ref().filter(|_| d.decision.stale_keys);
                    if stale.is_none() && self.keys.is_some() && deep.keys.is_none() {
                        // Matching MobileNetV2 features against DINOv2's memory would be noise.
                        return Err(inconsistent("a computed object without its keys"));
                    }
                    paths::computed(&mut ctx, deep, o, run.truth.as_ref(), stale)?
                }
                (Path::Reused, _, _) => match (self.reuse.as_mut(), &o.reuse, &d.delta) {
                    (Some(r), Some(mem), Some(delta)) => {
                        paths::reused(&mut ctx, r.as_mut(), mem, delta, self.config.gate.mode)?
                    }
                    _ => return Err(inconsistent("reuse without a stored frame")),
                },
                _ => return Err(inconsistent("a path without its inputs")),
            };
            results.push(Some((result, d.ms + since(t))));
        }
        Ok(results)
    }

    /// The paths of a frame the backbone never ran on: every object's mask is given or copied.
    fn given_or_copied(
        &mut self,
        run: &FrameRun,
        decided: &[Decided],
        which: impl Fn(usize) -> bool,
    ) -> Result<Vec<Option<(PathResult, f64)>>> {
        let size = (run.frame.width as usize, run.frame.height as usize);
        let mut results = Vec::new();
        for (k, (o, d)) in self.objects.iter_mut().zip(decided).enumerate() {
            let t = Instant::now();
            let result = match (which(k), d.path(), &run.given) {
                (false, _, _) => None,
                (true, Path::Given, Some(mask)) => Some(paths::given(mask, o.id)),
                (true, Path::Copied, _) => Some(paths::copied(o, d.follow.as_ref(), size)),
                _ => return Err(inconsistent("a computed path without features")),
            };
            results.push(result.map(|r| (r, d.ms + since(t))));
        }
        Ok(results)
    }

    /// Step 4: computed objects teach their tracker model (reused ones would be its own echo);
    /// policies that copy keep this frame's probability. One record per object.
    fn update(
        &mut self,
        run: &mut FrameRun,
        decided: &[Decided],
        labels: &[u8],
        soft: &[Vec<f32>],
        probs: &[Vec<f32>],
        path_ms: &[f64],
    ) -> Vec<ObjectFrame> {
        let t = Instant::now();
        let size = (run.frame.width as usize, run.frame.height as usize);
        let keep_previous = self.config.gate.copies();
        let follows = self.config.gate.follows();
        let audits = self.config.gate.safety.audits();
        let mut records = Vec::new();
        for (k, (o, d)) in self.objects.iter_mut().zip(decided).enumerate() {
            let area = labels.iter().filter(|&&l| l == o.id).count();
            let (mut refined, mut copy_loss) = (false, None);
            if d.path().is_reuse() {
                o.streak += 1;
                o.model.skipped();
            } else {
                o.streak = 0;
            }
            let fresh = matches!(d.path(), Path::Computed | Path::Given) && !d.decision.stale_keys;
            o.keys_age = if fresh { 0 } else { o.keys_age + 1 };
            // The drawn mask's area counts too, though the tracker's first mask departing from
            // it reads as growth for one step: a trend of computed frames only reused 46.8 %
            // but lost 0.62 J&F on fold 4 (this: 46.3 %, every fold within 0.41).
            // Stale-keys frames count: their masks come from this frame's target model.
            if matches!(d.path(), Path::Computed | Path::Given) {
                o.audit.sized(run.index, area as f64);
            }
            if d.path() == Path::Computed {
                o.frames += 1;
                o.stale_last = d.decision.stale_keys;
                refined = o.model.learn(&soft[k], size, area);
                let kept = o.anchor.as_ref().and_then(|a| a.probability.as_deref());
                if let (true, Some(follow), Some(change), Some(p)) =
                    (audits, &d.follow, d.decision.change, kept)
                {
                    // The copy the gate would have made, against the mask computed.
                    let would = follow.apply(p, size);
                    let iou = iou_of(&would, &probs[k], |&v| v > 0.5, |&v| v > 0.5);
                    let loss = 1.0 - iou as f32;
                    // A given mask is drawn, not decoded: its copy's departure from the
                    // tracker's first mask says how the two differ, not what copies lose.
                    // A stale-keys frame's mask leans on the copy itself: no measure of it
                    // (measured on hike, fold 2: observing it copied 62 frames instead of 53
                    // but lost 0.6 J&F).
                    if o.frames > 1 && !d.decision.stale_keys {
                        o.audit.observe(loss, change);
                    }
                    copy_loss = Some(loss);
                }
                o.anchor = anchor(&run.thumb, &probs[k], size, follows);
            }
            if keep_previous {
                o.previous = probs[k].clone();
            }
            records.push(ObjectFrame {
                id: o.id,
                area,
                given: d.path() == Path::Given,
                refined,
                decision: d.decision,
                path_ms: path_ms[k],
                memory_bytes: o.model.memory_bytes(),
                copy_loss,
            });
        }
        run.times.add(Stage::Update, since(t));
        records
    }

    /// The analytic MACs of each stage at this video's size (computed on the first frame).
    fn stage_macs(
        &mut self,
        low: &LowFeatures,
        deep: Option<&DeepFeatures>,
        frame: &Frame,
    ) -> StageMacs {
        if let Some(m) = self.macs {
            return m;
        }
        let s8 = (low.s8.height, low.s8.width);
        let keys = match deep.and_then(|d| d.keys.as_ref()) {
            Some(k) => (k.channels, k.height, k.width),
            None => {
                let c = self.projection.as_ref().map(|p| p.channels_out());
                (c.unwrap_or(low.s8.channels), s8.0, s8.1)
            }
        };
        let (s16, s32, input) = match deep {
            Some(d) => (
                (d.high.s16.height, d.high.s16.width),
                (d.high.s32.height, d.high.s32.width),
                (d.input.channels, d.input.height, d.input.width),
            ),
            None => (half(s8), half(half(s8)), (0, 0, 0)),
        };
        let mut m = StageMacs::new(
            &self.model.backbone,
            &self.model.decoder,
            self.model.reuse.as_ref().filter(|_| self.reuse.is_some()),
            self.tracker.score_macs(input, keys),
            (frame.height as usize, frame.width as usize),
            [(low.s4.height, low.s4.width), s8, s16, s32],
        );
        if let Some(k) = &self.keys {
            // The matching backbone runs on computed frames that are not all stale keys.
            m.keys = k.macs((frame.width as usize, frame.height as usize));
        }
        if let Some(p) = &self.projection {
            m.backbone_high += (p.channels_in() * p.channels_out() * s8.0 * s8.1) as u64;
        }
        self.macs = Some(m);
        m
    }

    /// The MACs every object shares this frame: the backbone, and each gate that ran.
    fn frame_macs(&self, run: &FrameRun, decided: &[Decided]) -> u64 {
        let stage = self.macs.unwrap_or_default();
        let gates = decided.iter().filter(|d| d.decision.p_reuse.is_some());
        let (low, deep) = match &run.features {
            None => (0, 0),
            Some(FrameFeatures {
                deep: Some(deep), ..
            }) => {
                let keys = if deep.keys.is_some() { stage.keys } else { 0 };
                (stage.backbone_low, stage.backbone_high + keys)
            }
            Some(_) => (stage.backbone_low, 0),
        };
        // Region reuse ran the low blocks on part of the frame.
        let low = (low as f64 * run.low_share).round() as u64;
        let learned = gates.filter(|_| self.reuse.is_some()).count() as u64;
        low + deep + learned * stage.gate
    }
}

/// The object's template for the reuse path's matching, from its mask at stride 8.
fn template(
    reuse: &mut dyn ReuseEngine,
    low: &LowFeatures,
    binary: &[u8],
    (w, h): (usize, usize),
) -> Result<Vec<f32>> {
    let full: Vec<f32> = binary.iter().map(|&b| f32::from(b)).collect();
    let (h8, w8) = (low.s8.height, low.s8.width);
    let mask8 = FeatureMap::new(1, h8, w8, area_downsample(&full, w, h, w8, h8));
    reuse.template(&low.s8, &mask8)
}

/// Where an object is (its probability `> 0.5`) on a frame with luma cells `thumb`; none when the
/// session computes no cells. The probability itself is kept only when copies follow.
fn anchor(
    thumb: &Arc<Thumb>,
    probability: &[f32],
    size: (usize, usize),
    follows: bool,
) -> Option<Anchor> {
    (thumb.width > 0).then(|| Anchor {
        thumb: thumb.clone(),
        footprint: Footprint::of(probability, size),
        probability: follows.then(|| probability.to_vec()),
    })
}

/// A level's size from the finer one (each level halves, rounding up).
fn half((h, w): (usize, usize)) -> (usize, usize) {
    (h.div_ceil(2), w.div_ceil(2))
}

fn inconsistent(what: &str) -> Error {
    Error::Invalid(format!("tracker state is inconsistent: {what}"))
}
