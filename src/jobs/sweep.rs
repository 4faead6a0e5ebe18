//! One run over trackers, reuse thresholds and policies: every (tracker, policy, mode, τ)
//! tracks the split and is evaluated; the rows land in the sweep table and plot
//! ([`crate::output::sweep_table`]).

use crate::error::Result;
use crate::io::Dataset;
use crate::jobs::run::run_dataset;
use crate::metrics::{EvalOptions, evaluate};
use crate::model::Model;
use crate::output::sweep_table::{self, SweepRow, series_name};
use crate::track::gate::{GatePolicy, GateSettings, ReuseMode};
use crate::track::keys::{MatchBackbone, MatchingConfig};
use crate::track::{TrackerConfig, TrackerKind};
use std::path::Path;

/// Whether a policy's masks depend on the reuse mode.
pub fn takes_mode(policy: GatePolicy) -> bool {
    matches!(
        policy,
        GatePolicy::Learned | GatePolicy::Fusion | GatePolicy::Oracle
    )
}

/// Whether a policy runs on a tracker: the learned reuse network (and the policies built on
/// it) was trained over FRTM's decoder; the other trackers take `never` and `motion` (the
/// session would turn the others into `never`: the sweep skips them).
pub fn applies(tracker: TrackerKind, policy: GatePolicy) -> bool {
    tracker == TrackerKind::Frtm || matches!(policy, GatePolicy::Never | GatePolicy::Motion)
}

/// What a sweep runs.
pub struct SweepPlan<'a> {
    pub trackers: &'a [TrackerKind],
    /// What the memory matches, each backbone a series of its own (memory and fusion only).
    pub backbones: &'a [MatchBackbone],
    /// The memory's window radius for every backbone; None: each backbone's default.
    pub radius: Option<usize>,
    /// The window radius after reuse for every backbone (0: none); None: each backbone's.
    pub reuse_radius: Option<usize>,
    /// The stale-keys τ and age bound asked for; each backbone applies them as it does
    /// (`MatchBackbone::stale_keys`).
    pub stale_keys: (Option<f32>, usize),
    pub policies: &'a [GatePolicy],
    pub modes: &'a [ReuseMode],
    pub taus: &'a [f32],
    /// Each tracker's gate (its defaults under the user's options); the run sets the policy,
    /// the mode and τ on it.
    pub gate_for: &'a dyn Fn(TrackerKind) -> GateSettings,
}

impl SweepPlan<'_> {
    /// How many runs the plan names.
    pub fn len(&self) -> usize {
        self.runs().len()
    }

    pub fn is_empty(&self) -> bool {
        self.runs().is_empty()
    }

    /// Every (tracker, backbone, policy, mode, τ) in order; FRTM only with MobileNetV2 (it
    /// matches nothing).
    fn runs(&self) -> Vec<Run> {
        let mut out = Vec::new();
        for &tracker in self.trackers {
            let backbones = self
                .backbones
                .iter()
                .filter(|&&b| tracker != TrackerKind::Frtm || b == MatchBackbone::Mobilenetv2);
            for &backbone in backbones {
                for &policy in self.policies.iter().filter(|&&p| applies(tracker, p)) {
                    let modes: Vec<Option<ReuseMode>> = if takes_mode(policy) {
                        self.modes.iter().copied().map(Some).collect()
                    } else {
                        vec![None]
                    };
                    for &mode in &modes {
                        for &tau in self.taus {
                            out.push(Run {
                                tracker,
                                backbone,
                                policy,
                                mode,
                                tau,
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

/// One run of a sweep.
#[derive(Clone, Copy)]
struct Run {
    tracker: TrackerKind,
    backbone: MatchBackbone,
    policy: GatePolicy,
    mode: Option<ReuseMode>,
    tau: f32,
}

impl Run {
    /// The session settings of this run on top of `base`.
    fn config(&self, base: &TrackerConfig, plan: &SweepPlan) -> TrackerConfig {
        let mut cfg = TrackerConfig {
            tracker: self.tracker,
            gate: GateSettings {
                policy: self.policy,
                tau: self.tau,
                mode: self.mode.unwrap_or_default(),
                ..(plan.gate_for)(self.tracker)
            },
            matching: MatchingConfig {
                backbone: self.backbone,
                ..base.matching
            },
            ..base.clone()
        };
        let readout = &mut cfg.memory.readout;
        readout.radius = plan.radius.unwrap_or(self.backbone.default_radius());
        readout.reuse_radius = self.backbone.reuse_radius(plan.reuse_radius);
        let (tau, age) = plan.stale_keys;
        cfg.gate.stale_keys = self.backbone.stale_keys(tau, age);
        cfg
    }
}

/// Runs the plan over `dataset` into `out/<tracker>-<policy>[-<mode>]/tau-<τ>/`. Runs with
/// τ ≥ 1 never reuse, whatever the policy, so one is run per tracker and shared.
pub fn sweep(
    model_for: &dyn Fn(TrackerKind, MatchBackbone) -> Result<Model>,
    base: &TrackerConfig,
    dataset: &Dataset,
    plan: &SweepPlan,
    out: &Path,
    jobs: usize,
    tick: &(dyn Fn(&str) + Sync),
) -> Result<Vec<SweepRow>> {
    let mut rows: Vec<SweepRow> = Vec::new();
    let mut model: Option<((TrackerKind, MatchBackbone), Model)> = None;
    for run in plan.runs() {
        let Run {
            tracker,
            backbone,
            policy,
            mode,
            tau,
        } = run;
        if model
            .as_ref()
            .is_none_or(|(k, _)| *k != (tracker, backbone))
        {
            model = Some(((tracker, backbone), model_for(tracker, backbone)?));
        }
        let Some((_, model)) = &model else {
            continue;
        };
        if tau >= 1.0
            && let Some(done) = rows
                .iter()
                .find(|r| r.tau >= 1.0 && (r.tracker, r.backbone) == (tracker, backbone))
        {
            rows.push(SweepRow {
                policy,
                mode,
                tau,
                ..done.clone()
            });
            continue;
        }
        let series = series_name(tracker, backbone, policy, mode);
        let rel = format!("{}/tau-{tau}", series.replace(['/', '+'], "-"));
        let dir = out.join(&rel);
        let cfg = run.config(base, plan);
        let label = format!("{series} τ={tau}");
        let summary = run_dataset(model, &cfg, dataset, &dir, jobs, None, &|| tick(&label))?;
        let report = evaluate(
            dataset,
            &EvalOptions {
                results: dir.clone(),
            },
            None,
        )?;
        report.write_csvs(&dir, "sweep")?;
        let g = &report.global;
        let safety = &cfg.gate.safety;
        // The net's bounds, where it can act: a run that never reuses shows none.
        let net = safety.enabled && tau < 1.0 && policy != GatePolicy::Never;
        rows.push(SweepRow {
            tracker,
            backbone,
            policy,
            mode,
            tau,
            jf: g.jf_mean,
            j: g.j_mean,
            f: g.f_mean,
            reuse_rate: summary.reuse_rate,
            fps: summary.mean_fps,
            throughput_fps: summary.throughput_fps,
            max_streak: net.then_some(safety.max_streak),
            max_copy_loss: safety.max_copy_loss.filter(|_| net),
            gflops: 2.0 * summary.gmacs_per_frame,
            object_mib: summary.max_object_bytes as f64 / (1024.0 * 1024.0),
            ms_computed: summary.frame_kinds.computed_ms,
            ms_reused: summary.frame_kinds.reused_ms,
            run: rel,
        });
    }
    sweep_table::write_outputs(&rows, out)?;
    Ok(rows)
}
