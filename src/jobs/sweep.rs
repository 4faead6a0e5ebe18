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
    pub policies: &'a [GatePolicy],
    pub modes: &'a [ReuseMode],
    pub taus: &'a [f32],
}

impl SweepPlan<'_> {
    /// How many runs the plan names.
    pub fn len(&self) -> usize {
        self.runs().len()
    }

    pub fn is_empty(&self) -> bool {
        self.runs().is_empty()
    }

    /// Every (tracker, policy, mode, τ) in order.
    fn runs(&self) -> Vec<(TrackerKind, GatePolicy, Option<ReuseMode>, f32)> {
        let mut out = Vec::new();
        for &tracker in self.trackers {
            for &policy in self.policies.iter().filter(|&&p| applies(tracker, p)) {
                let modes: Vec<Option<ReuseMode>> = if takes_mode(policy) {
                    self.modes.iter().copied().map(Some).collect()
                } else {
                    vec![None]
                };
                for &mode in &modes {
                    for &tau in self.taus {
                        out.push((tracker, policy, mode, tau));
                    }
                }
            }
        }
        out
    }
}

/// Runs the plan over `dataset` into `out/<tracker>-<policy>[-<mode>]/tau-<τ>/`. Runs with
/// τ ≥ 1 never reuse, whatever the policy, so one is run per tracker and shared.
pub fn sweep(
    model_for: &dyn Fn(TrackerKind) -> Result<Model>,
    base: &TrackerConfig,
    dataset: &Dataset,
    plan: &SweepPlan,
    out: &Path,
    jobs: usize,
    tick: &(dyn Fn(&str) + Sync),
) -> Result<Vec<SweepRow>> {
    let mut rows: Vec<SweepRow> = Vec::new();
    let mut model: Option<(TrackerKind, Model)> = None;
    for (tracker, policy, mode, tau) in plan.runs() {
        if model.as_ref().is_none_or(|(t, _)| *t != tracker) {
            model = Some((tracker, model_for(tracker)?));
        }
        let Some((_, model)) = &model else {
            continue;
        };
        if tau >= 1.0
            && let Some(done) = rows.iter().find(|r| r.tau >= 1.0 && r.tracker == tracker)
        {
            rows.push(SweepRow {
                policy,
                mode,
                tau,
                ..done.clone()
            });
            continue;
        }
        let series = series_name(tracker, policy, mode);
        let rel = format!("{}/tau-{tau}", series.replace('/', "-"));
        let dir = out.join(&rel);
        let cfg = TrackerConfig {
            tracker,
            gate: GateSettings {
                policy,
                tau,
                mode: mode.unwrap_or_default(),
                ..base.gate
            },
            ..base.clone()
        };
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
        rows.push(SweepRow {
            tracker,
            policy,
            mode,
            tau,
            jf: g.jf_mean,
            j: g.j_mean,
            f: g.f_mean,
            reuse_rate: summary.reuse_rate,
            fps: summary.mean_fps,
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
