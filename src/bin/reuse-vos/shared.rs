//! What several commands share: the model and engine options, the DAVIS data options, value
//! checks for numeric options, loading the model, the tracker configuration from the options.

use reuse_vos::engine::{EngineKind, Precision};
use reuse_vos::io::{Dataset, DatasetKind};
use reuse_vos::model::Model;
use reuse_vos::model::Weights;
use reuse_vos::model::backbone::BackboneSpec;
use reuse_vos::model::online::TargetInput;
use reuse_vos::track::flow::Follow;
use reuse_vos::track::gate::{GatePolicy, GateSettings, ReuseMode, StaleKeys};
use reuse_vos::track::keys::{MatchBackbone, MatchingConfig};
use reuse_vos::track::safety::SafetyNet;
use reuse_vos::track::tracker::memory::{LastFrame, MemoryConfig, MemoryWrites, ReadoutSettings};
use reuse_vos::track::{TrackerConfig, TrackerKind, TrackingSize};
use std::path::{Path, PathBuf};

/// The networks and how to run them.
#[derive(clap::Args, Clone)]
pub(crate) struct ModelArgs {
    #[command(flatten)]
    pub(crate) engine: EngineArgs,
    /// What scores each object on computed frames: FRTM's online target model, a memory of
    /// frames matched top-k (REMN-style), or both fused.
    #[arg(long, value_enum, default_value = "fusion")]
    pub(crate) tracker: TrackerKind,
    /// Track at this size of the longest side (0: the frames' own size); masks and mattes are
    /// written at the original size. Default: 640 (854×480 video tracked at 640×360: 1.6×
    /// faster, and the embedded decoders of both matching backbones are trained at that size).
    #[arg(long, value_parser = tracking_side)]
    pub(crate) max_side: Option<u32>,
    /// Region reuse in the backbone's first blocks (SpVOS): 16x16-pixel tiles whose mean change
    /// (over the three colour channels) since their activations were computed is at most this
    /// many grey levels keep them; the rest run again with the halo their receptive field needs
    /// (0: only unchanged tiles keep theirs — the dense features up to float rounding).
    /// Default: off (every computed frame runs the backbone densely).
    #[arg(long, value_parser = grey_levels)]
    pub(crate) sparse_threshold: Option<f32>,
    /// Memory: candidates kept per query cell.
    #[arg(long, default_value_t = 5)]
    pub(crate) mem_top_k: usize,
    /// Memory: softmax temperature on cosine similarities.
    #[arg(long, value_parser = positive, default_value_t = 0.1)]
    pub(crate) mem_temperature: f32,
    #[command(flatten)]
    pub(crate) matching: MatchingArgs,
    /// Memory: match the given frames over the whole frame (else in the local window).
    #[arg(long)]
    pub(crate) mem_global_given: bool,
    /// Memory: tracked frames kept.
    #[arg(long, default_value_t = 7)]
    pub(crate) mem_slots: usize,
    /// Memory: write a tracked frame when 1 − IoU with the last written mask exceeds this...
    #[arg(long, value_parser = unit_interval, default_value_t = 0.1)]
    pub(crate) mem_write_change: f32,
    /// Memory: ...or every this many frames.
    #[arg(long, default_value_t = 5)]
    pub(crate) mem_write_every: usize,
    /// Memory: what a tracked frame is written with — the decoder's merged mask, or the
    /// memory's own prediction (as training writes it).
    #[arg(long, value_enum, default_value = "decoder")]
    pub(crate) mem_writes: MemoryWrites,
    /// Memory: when the last scored frame is read although the write rule did not keep it.
    #[arg(long, value_enum, default_value = "after-reuse")]
    pub(crate) mem_last: LastFrame,
    /// Fusion: the memory's weight in the fused score (the target model's: 1 − w).
    #[arg(long, value_parser = unit_interval, default_value_t = 0.5)]
    pub(crate) fusion_weight: f32,
    /// Skip the refinement decoder: the tracker's score, upsampled, is the probability
    /// (only the memory tracker's score is a probability; it is read so by default until a
    /// decoder is trained for it).
    #[arg(long)]
    pub(crate) no_decoder: bool,
    /// Decoder weights (safetensors, or a training checkpoint .bpk), each with its config
    /// (`.json`) beside it. Default: the embedded trained decoder.
    #[arg(long)]
    pub(crate) decoder: Option<PathBuf>,
    /// Channels of each object's target-model projection.
    #[arg(long, default_value_t = 32)]
    pub(crate) target_channels: usize,
    /// Backbone features the target model reads.
    #[arg(long, value_enum, default_value = "s16")]
    pub(crate) target_input: TargetInput,
    /// Synthetic first-frame views the target model learns from (0..=6).
    #[arg(long, default_value_t = 4)]
    pub(crate) augment: usize,
    /// Refine each target model every this many tracked frames (0 = never, the default:
    /// cross-validated J&F 73.3 against 72.2 refining every 8, and no drift on long videos).
    #[arg(long, default_value_t = 0)]
    pub(crate) update_every: usize,
    /// Weight of each new sample in a target model's memory relative to the previous one
    /// (1/(1 − lr) growth; smaller keeps the given mask's samples weightier).
    #[arg(long, value_parser = below_one, default_value_t = 0.1)]
    pub(crate) target_lr: f32,
    /// Keep the given mask's samples in each target model's memory for the whole video (FRTM
    /// lets later samples replace them).
    #[arg(long)]
    pub(crate) keep_given: bool,
    /// Reuse-path weights (safetensors). Default: the embedded trained ones.
    #[arg(long)]
    pub(crate) reuse: Option<PathBuf>,
    /// When a frame reuses the last computed one: motion (training-free: copy the last computed
    /// mask moved by the measured shift when little else changed; the default), the learned
    /// gate, never (baseline), copy the previous mask, fusion of copy and translation, or the
    /// ground-truth oracle (`run` only).
    #[arg(long, value_enum, default_value = "motion")]
    pub(crate) gate: GatePolicy,
    /// Reuse when P(reuse) > τ (oracle: when the ground-truth IoU > τ); τ = 1 never reuses.
    /// Default: 0.7 (memory tracker: 0.75).
    #[arg(long, value_parser = unit_interval)]
    pub(crate) tau: Option<f32>,
    /// `fusion`: copy the previous mask when P(reuse) > τ2, take the reuse path between τ and
    /// τ2.
    #[arg(long, value_parser = unit_interval, default_value_t = 0.9)]
    pub(crate) tau2: f32,
    /// Turn off the safety net that recomputes a frame the gate would reuse when the object
    /// reused --max-streak frames in a row, when it moved more than --max-motion or
    /// changed more than --max-change, when its copies are expected to lose more than
    /// --max-copy-loss, or more than --max-growth-loss because its area is changing, or when
    /// the reused mask jumped (--max-area-ratio, --max-shift).
    #[arg(long)]
    pub(crate) no_safety_net: bool,
    /// Safety net: most reused frames in a row per object. Default: 6 (memory tracker: 5).
    #[arg(long)]
    pub(crate) max_streak: Option<usize>,
    /// Safety net: largest motion of the object since its last computed frame, as a share of
    /// its size (√area).
    #[arg(long, value_parser = positive, default_value_t = SafetyNet::default().max_motion)]
    pub(crate) max_motion: f32,
    /// Safety net: largest mean absolute luma change (0..1) of the object's 4×4-pixel cells
    /// where it was on its last computed frame.
    #[arg(long, value_parser = positive, default_value_t = SafetyNet::default().max_change)]
    pub(crate) max_change: f32,
    /// Safety net: largest area ratio (either way) of a reused mask against the last computed.
    #[arg(long, value_parser = positive, default_value_t = SafetyNet::default().max_area_ratio)]
    pub(crate) max_area_ratio: f32,
    /// Safety net: largest move of a reused mask's centre, as a share of √area.
    #[arg(long, value_parser = positive, default_value_t = SafetyNet::default().max_shift)]
    pub(crate) max_shift: f32,
    /// Safety net: largest expected loss (1 − IoU) of a copy: this frame's luma change times
    /// what the object's copies would have lost per unit of change on its computed frames.
    /// Default: 0.12 (memory tracker: 0.25).
    #[arg(long, value_parser = positive)]
    pub(crate) max_copy_loss: Option<f32>,
    /// Safety net: largest expected loss (1 − IoU) of a copy from the object's growth or
    /// shrinking alone (its area's rate of change between its last two computed or given
    /// frames).
    #[arg(long, value_parser = positive, default_value_t = reuse_vos::track::safety::MAX_GROWTH_LOSS)]
    pub(crate) max_growth_loss: f32,
    /// What a reused frame does with the last computed frame's score map and decoder state:
    /// use them as stored, add the Δ-generator's change to the score, or also translate the
    /// state with the refine-translator (the paper's path). The shallow decoder stages always
    /// run on the current frame.
    #[arg(long, value_enum, default_value = "stored")]
    pub(crate) reuse_mode: ReuseMode,
    /// How the motion gate's copies follow the object: one shift for the whole mask, or a
    /// motion per 16×16-pixel block (limbs, wings and turning objects), interpolated.
    #[arg(long, value_enum, default_value_t = Follow::default())]
    pub(crate) follow: Follow,
}

/// What the memory matches (`segment`, `run`, `sweep`, `train`).
#[derive(clap::Args, Clone)]
pub(crate) struct MatchingArgs {
    /// What the memory matches: MobileNetV2's stride-8 features (the fast default), or the
    /// tokens of DINOv2 ViT-S/14 (quality mode, memory and fusion trackers; fetch the weights
    /// once with `reuse-vos weights fetch dinov2s`). A reused frame skips DINOv2.
    #[arg(long, value_enum, default_value = "mobilenetv2")]
    pub(crate) backbone: MatchBackbone,
    /// DINOv2: blocks run; the tokens after the last are the keys (1..=12).
    #[arg(long, default_value_t = MatchingConfig::default().layers)]
    pub(crate) vit_layers: usize,
    /// DINOv2: the input's shorter side in pixels (rounded to a multiple of 14).
    #[arg(long, default_value_t = MatchingConfig::default().short_side)]
    pub(crate) vit_side: usize,
    /// DINOv2: the weights file (default: `$REUSE_VOS_DINOV2`, else the cache's).
    #[arg(long)]
    pub(crate) dinov2: Option<PathBuf>,
    /// Memory: local window radius in key cells for tracked frames. Default: 12 stride-8
    /// cells on MobileNetV2, 6 cells of DINOv2's grid (both ±96 px of a 480-line frame).
    #[arg(long)]
    pub(crate) mem_radius: Option<usize>,
    /// Memory: the window radius for the given frames (default: as --mem-radius).
    #[arg(long)]
    pub(crate) mem_given_radius: Option<usize>,
    /// Memory: the radius of every window on a frame scored after reused ones (the object
    /// moved during the copies). Default: 9 cells on DINOv2, none on MobileNetV2 (0: none).
    #[arg(long)]
    pub(crate) mem_reuse_radius: Option<usize>,
    /// Quality mode: a computed frame skips DINOv2 when every computed object's P(reuse) is
    /// above this (the gate would have copied it; the safety net refused) — its memory reads
    /// its last readout moved by the object's motion; the target model and the decoder run as
    /// usual. 1: never. Default: 0.7 on DINOv2 (only frames whose copy the
    /// safety net refused; never below the gate's τ), never on MobileNetV2.
    #[arg(long)]
    pub(crate) stale_keys_tau: Option<f32>,
    /// Quality mode: frames an object may go without fresh keys (copied ones included).
    #[arg(long, default_value_t = 6)]
    pub(crate) stale_keys_age: usize,
    /// MobileNetV2: the memory's key channels — 32 (the features as they are) or 16 (their
    /// principal directions on DAVIS frames, `weights fit-keys`; the readout's cost halves).
    #[arg(long)]
    pub(crate) key_channels: Option<usize>,
}

impl MatchingArgs {
    pub(crate) fn config(&self, backbone: MatchBackbone) -> MatchingConfig {
        MatchingConfig {
            backbone,
            layers: self.vit_layers,
            short_side: self.vit_side.max(14),
            key_channels: self.key_channels,
        }
    }

    /// The window radius for `backbone`: the one asked for, else the backbone's.
    pub(crate) fn radius(&self, backbone: MatchBackbone) -> usize {
        self.mem_radius.unwrap_or(backbone.default_radius())
    }

    /// The window radius after reuse for `backbone`: the one asked for, else the backbone's.
    pub(crate) fn reuse_radius(&self, backbone: MatchBackbone) -> Option<usize> {
        backbone.reuse_radius(self.mem_reuse_radius)
    }

    /// The stale-keys rule for `backbone`: the τ asked for, else the backbone's.
    pub(crate) fn stale_keys(&self, backbone: MatchBackbone) -> Option<StaleKeys> {
        backbone.stale_keys(self.stale_keys_tau, self.stale_keys_age)
    }

    /// The DINOv2 weights, checked (for `--backbone dinov2s`).
    pub(crate) fn vit(&self) -> anyhow::Result<std::sync::Arc<reuse_vos::model::vit::VitWeights>> {
        let file = reuse_vos::model::vit::source::locate(self.dinov2.as_deref())?;
        Ok(std::sync::Arc::new(reuse_vos::model::vit::source::load(
            &file,
        )?))
    }
}

/// Options shared by the commands that run networks.
#[derive(clap::Args, Clone)]
pub(crate) struct EngineArgs {
    /// Engine: ort (ONNX Runtime) or burn. Default: ort when libonnxruntime loads, else burn.
    #[arg(long, value_enum)]
    pub(crate) engine: Option<EngineKind>,
    /// Backbone weights (safetensors, torchvision names). Default: the embedded MobileNetV2.
    #[arg(long)]
    pub(crate) weights: Option<PathBuf>,
    /// Threads for the engine.
    #[arg(long, value_parser = thread_count, default_value_t = 2)]
    pub(crate) threads: usize,
    /// The backbone's number format: int8 runs it as static int8 on ONNX Runtime, with the
    /// ranges calibrated on DAVIS frames (`weights calibrate`). Default: int8 on ONNX Runtime
    /// when the backbone has ranges (the embedded one has), f32 otherwise.
    #[arg(long, value_enum)]
    pub(crate) precision: Option<Precision>,
    /// The int8 plan to use instead of the embedded one (`weights calibrate` writes it).
    #[arg(long)]
    pub(crate) int8_plan: Option<PathBuf>,
}

/// Which DAVIS data a command reads: the same options, with the same defaults, on every command.
#[derive(clap::Args, Clone)]
pub(crate) struct DavisArgs {
    /// DAVIS root (JPEGImages/480p, Annotations/480p).
    #[arg(long)]
    pub(crate) davis: PathBuf,
    /// 2016: grey annotations, one object per sequence; 2017: palette annotations, ids 1..N.
    /// Default: told by the root's first annotation (grey or palette).
    #[arg(long, value_parser = clap::value_parser!(u16).range(2016..=2017))]
    pub(crate) year: Option<u16>,
    /// Set name (ImageSets/2017/<set>.txt, or ImageSets/480p/<set>.txt for 2016) or a list
    /// file, e.g. splits/fit.txt. Default: every annotated sequence.
    #[arg(long, conflicts_with = "sequences")]
    pub(crate) set: Option<String>,
    /// Comma-separated sequence names.
    #[arg(long, value_delimiter = ',')]
    pub(crate) sequences: Option<Vec<String>>,
}

impl DavisArgs {
    pub(crate) fn kind(&self) -> anyhow::Result<DatasetKind> {
        Ok(match self.year {
            Some(2016) => DatasetKind::Davis2016,
            Some(_) => DatasetKind::Davis2017,
            None => DatasetKind::detect(&self.davis)?,
        })
    }

    pub(crate) fn open(&self) -> anyhow::Result<Dataset> {
        let (set, seqs) = (self.set.as_deref(), self.sequences.as_deref());
        Ok(Dataset::open(&self.davis, self.kind()?, set, seqs)?)
    }

    /// The name a selection is reported under: the set name, a list file's stem, or "all".
    pub(crate) fn label(&self) -> String {
        match &self.set {
            Some(s) => Path::new(s)
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| s.to_string()),
            None if self.sequences.is_some() => "custom".into(),
            None => "all".into(),
        }
    }
}

/// A number in `[lo, hi]` (NaN refused: it is in no range); `what` ends the refusal.
fn number_in(s: &str, lo: f32, hi: f32, what: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|e| format!("{e}"))?;
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} is not {what}"))
    }
}

/// A number in [0, 1] (NaN and infinities refused).
pub(crate) fn unit_interval(s: &str) -> Result<f32, String> {
    number_in(s, 0.0, 1.0, "in [0, 1]")
}

/// `--max-side` as a tracking size: none given, the default; 0, the frames' own size.
pub(crate) fn tracking_size(max_side: Option<u32>) -> TrackingSize {
    match max_side {
        None => TrackingSize::Default,
        Some(0) => TrackingSize::Own,
        Some(m) => TrackingSize::MaxSide(m),
    }
}

/// A tracking size: 0 (the frames' own) or at least 32 pixels.
pub(crate) fn tracking_side(s: &str) -> Result<u32, String> {
    let v: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if v == 0 || v >= 32 {
        Ok(v)
    } else {
        Err(format!(
            "{s}: frames must be at least 32 pixels (0 tracks at the frames' own size)"
        ))
    }
}

/// A number of grey levels in [0, 255].
pub(crate) fn grey_levels(s: &str) -> Result<f32, String> {
    number_in(s, 0.0, 255.0, "a number of grey levels in [0, 255]")
}

/// A number in [0, 1).
pub(crate) fn below_one(s: &str) -> Result<f32, String> {
    let v = unit_interval(s)?;
    if v < 1.0 {
        Ok(v)
    } else {
        Err(format!("{s} must be below 1"))
    }
}

/// A finite number above 0.
pub(crate) fn positive(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} must be a finite number above 0"))
    }
}

/// 1 up to four threads per core of this machine (more only thrashes, and ONNX Runtime
/// allocates per thread).
pub(crate) fn thread_count(s: &str) -> Result<usize, String> {
    let v: usize = s.parse().map_err(|e| format!("{e}"))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if (1..=4 * cores).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{s} threads: use 1 to {} on this machine ({cores} cores)",
            4 * cores
        ))
    }
}

pub(crate) fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

pub(crate) fn backbone_spec(args: &EngineArgs) -> anyhow::Result<BackboneSpec> {
    Ok(match &args.weights {
        Some(p) => BackboneSpec::from_weights(&Weights::load(p)?)?,
        None => BackboneSpec::embedded()?,
    })
}

pub(crate) fn load_model(args: &ModelArgs) -> anyhow::Result<Model> {
    load_model_for(args, args.tracker, args.matching.backbone)
}

/// The embedded networks with `tracker`'s decoder, and the user's overrides.
pub(crate) fn load_model_for(
    args: &ModelArgs,
    tracker: TrackerKind,
    backbone: MatchBackbone,
) -> anyhow::Result<Model> {
    let mut model = Model::embedded_matching(&tracker.to_string(), &backbone.to_string())?;
    if let Some(p) = &args.decoder {
        model = model.with_decoder_file(p)?;
    }
    if let Some(w) = &args.engine.weights {
        model = model.with_backbone_weights(w)?;
    }
    if let Some(p) = &args.engine.int8_plan {
        model = model.with_int8_plan(p)?;
    }
    if let Some(r) = &args.reuse {
        model = model.with_reuse_file(r)?;
    }
    if backbone == MatchBackbone::Dinov2s {
        model.vit = Some(args.matching.vit()?);
    }
    Ok(model)
}

pub(crate) fn tracker_config(args: &ModelArgs, threads: usize) -> TrackerConfig {
    let mut cfg = TrackerConfig {
        tracker: args.tracker,
        engine: args.engine.engine,
        precision: args.engine.precision,
        threads,
        augment: args.augment.min(6),
        ..Default::default()
    };
    cfg.memory = MemoryConfig {
        readout: ReadoutSettings {
            top_k: args.mem_top_k.max(1),
            temperature: args.mem_temperature.max(1e-4),
            radius: args.matching.radius(args.matching.backbone),
            global_given: args.mem_global_given,
            given_radius: args.matching.mem_given_radius,
            reuse_radius: args.matching.reuse_radius(args.matching.backbone),
        },
        slots: args.mem_slots,
        write_change: args.mem_write_change,
        write_every: args.mem_write_every.max(1),
        writes: args.mem_writes,
        last: args.mem_last,
    };
    cfg.matching = args.matching.config(args.matching.backbone);
    cfg.fusion.memory_weight = args.fusion_weight.clamp(0.0, 1.0);
    cfg.decoder = !args.no_decoder;
    cfg.size = tracking_size(args.max_side);
    cfg.sparse = args.sparse_threshold;
    cfg.target.channels = args.target_channels.max(1);
    cfg.target.input = args.target_input;
    cfg.target.learning_rate = args.target_lr.clamp(0.0, 0.99);
    cfg.target.keep_given = args.keep_given;
    cfg.gate = gate_settings(args, args.tracker);
    cfg.target.update_every = if args.update_every == 0 {
        usize::MAX
    } else {
        args.update_every
    };
    cfg
}

/// The gate for `tracker`: the user's options over that tracker's defaults (τ, the copy-loss
/// bound and the streak differ for the memory tracker: `TrackerKind::gate_defaults`).
pub(crate) fn gate_settings(args: &ModelArgs, tracker: TrackerKind) -> GateSettings {
    let defaults = tracker.gate_defaults();
    GateSettings {
        policy: args.gate,
        tau: args.tau.unwrap_or(defaults.tau),
        tau2: args.tau2,
        mode: args.reuse_mode,
        follow: args.follow,
        stale_keys: args.matching.stale_keys(args.matching.backbone),
        safety: SafetyNet {
            enabled: !args.no_safety_net,
            max_streak: args.max_streak.unwrap_or(defaults.safety.max_streak),
            max_motion: args.max_motion,
            max_change: args.max_change,
            max_area_ratio: args.max_area_ratio,
            max_shift: args.max_shift,
            max_copy_loss: args.max_copy_loss.or(defaults.safety.max_copy_loss),
            max_growth_loss: Some(args.max_growth_loss),
        },
    }
}

/// Hex SHA-256 of bytes (for the weight manifest).
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
