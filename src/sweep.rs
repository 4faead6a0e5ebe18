//! One run over reuse thresholds and policies: every (policy, τ) tracks the split, is evaluated,
//! and lands in a table (CSV and markdown) and a plot of J&F against FPS and against the reuse
//! rate (the paper's Fig. 6–8).

use crate::error::{Error, Result};
use crate::io::Dataset;
use crate::metrics::{EvalOptions, evaluate};
use crate::track::batch::run_dataset;
use crate::track::gate::{GatePolicy, GateSettings, ReuseMode};
use crate::track::{Model, TrackerConfig};
use plotters::prelude::*;
use serde::Serialize;
use std::path::Path;

/// One (policy, reuse mode, τ) of a sweep.
#[derive(Clone, Debug, Serialize)]
pub struct SweepRow {
    pub policy: GatePolicy,
    /// The reuse path's mode, for the policies that take it (learned, fusion, oracle).
    pub mode: Option<ReuseMode>,
    pub tau: f32,
    pub jf: f64,
    pub j: f64,
    pub f: f64,
    pub reuse_rate: f64,
    /// Mean of the sequences' FPS (init included).
    pub fps: f64,
    /// GFLOPs per frame of the paths taken (2 × MACs).
    pub gflops: f64,
    /// The folder of this run's masks, relative to the sweep folder.
    pub run: String,
}

impl SweepRow {
    /// The curve this row belongs to: the policy, with the reuse mode when it has one.
    pub fn series(&self) -> String {
        series_name(self.policy, self.mode)
    }

    /// The row as the tables show it: policy, mode, τ, J&F, J, F (%), reuse rate, FPS,
    /// GFLOPs/frame.
    pub fn cells(&self) -> [String; 9] {
        [
            self.policy.to_string(),
            self.mode.map_or_else(|| "–".to_string(), |m| m.to_string()),
            self.tau.to_string(),
            format!("{:.1}", 100.0 * self.jf),
            format!("{:.1}", 100.0 * self.j),
            format!("{:.1}", 100.0 * self.f),
            format!("{:.1} %", 100.0 * self.reuse_rate),
            format!("{:.1}", self.fps),
            format!("{:.2}", self.gflops),
        ]
    }
}

fn series_name(policy: GatePolicy, mode: Option<ReuseMode>) -> String {
    match mode {
        Some(m) => format!("{policy}/{m}"),
        None => policy.to_string(),
    }
}

/// Whether a policy's masks depend on the reuse mode.
pub fn takes_mode(policy: GatePolicy) -> bool {
    matches!(
        policy,
        GatePolicy::Learned | GatePolicy::Fusion | GatePolicy::Oracle
    )
}

/// Runs every policy at every τ over `dataset` into `out/<policy>/tau-<τ>/`. Runs with τ ≥ 1
/// never reuse, whatever the policy, so that one is run once and shared.
#[allow(clippy::too_many_arguments)]
pub fn sweep(
    model: &Model,
    base: &TrackerConfig,
    dataset: &Dataset,
    policies: &[GatePolicy],
    modes: &[ReuseMode],
    taus: &[f32],
    out: &Path,
    jobs: usize,
    tick: &(dyn Fn(&str) + Sync),
) -> Result<Vec<SweepRow>> {
    let mut rows: Vec<SweepRow> = Vec::new();
    for &policy in policies {
        let policy_modes: Vec<Option<ReuseMode>> = if takes_mode(policy) {
            modes.iter().copied().map(Some).collect()
        } else {
            vec![None]
        };
        for &mode in &policy_modes {
            for &tau in taus {
                if tau >= 1.0
                    && let Some(done) = rows.iter().find(|r| r.tau >= 1.0)
                {
                    rows.push(SweepRow {
                        policy,
                        mode,
                        tau,
                        ..done.clone()
                    });
                    continue;
                }
                let rel = format!("{}/tau-{tau}", series_name(policy, mode).replace('/', "-"));
                let dir = out.join(&rel);
                let cfg = TrackerConfig {
                    gate: GateSettings {
                        policy,
                        tau,
                        mode: mode.unwrap_or_default(),
                        ..base.gate
                    },
                    ..base.clone()
                };
                let label = format!("{} τ={tau}", series_name(policy, mode));
                let summary =
                    run_dataset(model, &cfg, dataset, &dir, jobs, None, &|| tick(&label))?;
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
                    policy,
                    mode,
                    tau,
                    jf: g.jf_mean,
                    j: g.j_mean,
                    f: g.f_mean,
                    reuse_rate: summary.reuse_rate,
                    fps: summary.mean_fps,
                    gflops: 2.0 * summary.gmacs_per_frame,
                    run: rel,
                });
            }
        }
    }
    write_outputs(&rows, out)?;
    Ok(rows)
}

/// `sweep.csv`, `sweep.md` and `sweep.svg` in `out`.
pub fn write_outputs(rows: &[SweepRow], out: &Path) -> Result<()> {
    let mut csv = String::from("policy,mode,tau,jf,j,f,reuse_rate,fps,gflops_per_frame,run\n");
    let mut md = String::from(
        "| policy | reuse mode | τ | J&F | J | F | reuse rate | FPS | GFLOPs/frame |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let mode = r.mode.map(|m| m.to_string()).unwrap_or_default();
        csv.push_str(&format!(
            "{},{mode},{},{:.4},{:.4},{:.4},{:.4},{:.2},{:.3},{}\n",
            r.policy, r.tau, r.jf, r.j, r.f, r.reuse_rate, r.fps, r.gflops, r.run
        ));
        md.push_str(&format!("| {} |\n", r.cells().join(" | ")));
    }
    crate::io::atomic::write_bytes(&out.join("sweep.csv"), csv.as_bytes())?;
    crate::io::atomic::write_bytes(&out.join("sweep.md"), md.as_bytes())?;
    let svg = plot(rows).map_err(|e| Error::Invalid(format!("cannot draw the sweep plot: {e}")))?;
    crate::io::atomic::write_bytes(&out.join("sweep.svg"), svg.as_bytes())?;
    Ok(())
}

type Plotted = std::result::Result<String, Box<dyn std::error::Error>>;

/// J&F against FPS (left) and against the reuse rate (right), one line per policy.
pub fn plot(rows: &[SweepRow]) -> Plotted {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 460)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(550);
        let mut series: Vec<String> = Vec::new();
        for r in rows {
            if !series.contains(&r.series()) {
                series.push(r.series());
            }
        }
        let jf: Vec<f64> = rows.iter().map(|r| 100.0 * r.jf).collect();
        let lo = jf.iter().cloned().fold(f64::MAX, f64::min) - 2.0;
        let hi = jf.iter().cloned().fold(f64::MIN, f64::max) + 2.0;
        type Axis = fn(&SweepRow) -> f64;
        let panels: [(_, &str, Axis); 2] = [
            (left, "FPS (mean over sequences)", |r| r.fps),
            (right, "reuse rate (%)", |r| 100.0 * r.reuse_rate),
        ];
        for (area, xdesc, x) in panels {
            let xs: Vec<f64> = rows.iter().map(x).collect();
            let xlo = xs.iter().cloned().fold(f64::MAX, f64::min);
            let xhi = xs.iter().cloned().fold(f64::MIN, f64::max);
            let pad = ((xhi - xlo) * 0.05).max(0.5);
            let mut chart = ChartBuilder::on(&area)
                .caption(format!("J&F vs {xdesc}"), ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d((xlo - pad)..(xhi + pad), lo..hi)?;
            chart
                .configure_mesh()
                .x_desc(xdesc)
                .y_desc("J&F (%)")
                .draw()?;
            for (i, name) in series.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                let mut pts: Vec<(f64, f64)> = rows
                    .iter()
                    .filter(|r| r.series() == *name)
                    .map(|r| (x(r), 100.0 * r.jf))
                    .collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                chart
                    .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
                    .label(name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart.draw_series(pts.into_iter().map(|q| Circle::new(q, 3, color.filled())))?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plot_has_a_line_and_a_legend_entry_per_policy() {
        let row = |policy, tau, jf, fps, reuse_rate| SweepRow {
            policy,
            mode: None,
            tau,
            jf,
            j: jf,
            f: jf,
            reuse_rate,
            fps,
            gflops: 5.0,
            run: String::new(),
        };
        let rows = vec![
            row(GatePolicy::Learned, 1.0, 0.60, 12.0, 0.0),
            row(GatePolicy::Learned, 0.5, 0.58, 18.0, 0.5),
            row(GatePolicy::Copy, 1.0, 0.60, 12.0, 0.0),
            row(GatePolicy::Copy, 0.5, 0.50, 20.0, 0.5),
        ];
        let svg = plot(&rows).expect("plot");
        assert!(svg.starts_with("<svg"), "{}", &svg[..50.min(svg.len())]);
        assert!(
            svg.contains("\nlearned\n") && svg.contains("\ncopy\n"),
            "legend"
        );
        assert_eq!(
            svg.matches("<circle").count(),
            8,
            "a marker per run and panel"
        );
        assert!(
            svg.matches("<polyline").count() >= 4,
            "a line per policy and panel"
        );
    }
}
