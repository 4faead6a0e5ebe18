//! The sweep's table and plot: one row per (tracker, policy, reuse mode, τ) run, written as
//! CSV, markdown and an SVG plot of J&F against FPS and against the reuse rate (the paper's
//! Fig. 6–8), and read back by the report.

use super::names::{SWEEP_CSV, SWEEP_MD, SWEEP_SVG};
use crate::error::{Error, Result};
use crate::track::TrackerKind;
use crate::track::gate::{GatePolicy, ReuseMode};
use crate::track::keys::MatchBackbone;
use plotters::prelude::*;
use serde::Serialize;
use std::path::Path;

/// One (tracker, policy, reuse mode, τ) of a sweep.
#[derive(Clone, Debug, Serialize)]
pub struct SweepRow {
    pub tracker: TrackerKind,
    /// What the memory matched (MobileNetV2, or DINOv2 in the quality mode).
    pub backbone: MatchBackbone,
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
    /// All frames over the run's wall time (every frame weighs the same; 0: not recorded).
    pub throughput_fps: f64,
    /// The safety net's bounds the run had (each tracker has its own defaults): most reused
    /// frames in a row and the copy audit's bound. None: net off, or not recorded.
    pub max_streak: Option<usize>,
    pub max_copy_loss: Option<f32>,
    /// GFLOPs per frame of the paths taken (2 × MACs).
    pub gflops: f64,
    /// The most one object's tracker model held, MiB.
    pub object_mib: f64,
    /// Mean time of a computed frame and of a frame where every object reused, ms (0: none).
    pub ms_computed: f64,
    pub ms_reused: f64,
    /// The folder of this run's masks, relative to the sweep folder.
    pub run: String,
}

impl SweepRow {
    /// The curve this row belongs to: the policy, with the reuse mode when it has one.
    pub fn series(&self) -> String {
        series_name(self.tracker, self.backbone, self.policy, self.mode)
    }

    /// The row as the tables show it, under [`HEADER`].
    pub fn cells(&self) -> [String; 16] {
        [
            self.tracker.to_string(),
            self.backbone.to_string(),
            self.policy.to_string(),
            self.mode.map_or_else(|| "–".to_string(), |m| m.to_string()),
            self.tau.to_string(),
            format!("{:.1}", 100.0 * self.jf),
            format!("{:.1}", 100.0 * self.j),
            format!("{:.1}", 100.0 * self.f),
            format!("{:.1} %", 100.0 * self.reuse_rate),
            format!("{:.1}", self.fps),
            match self.throughput_fps {
                0.0 => "–".to_string(),
                fps => format!("{fps:.1}"),
            },
            format!("{:.1}", self.ms_computed),
            match self.ms_reused {
                0.0 => "–".to_string(),
                ms => format!("{ms:.1}"),
            },
            format!("{:.2}", self.gflops),
            format!("{:.1}", self.object_mib),
            match (self.max_streak, self.max_copy_loss) {
                (Some(s), Some(l)) => format!("{s} / {l}"),
                (Some(s), None) => format!("{s} / –"),
                _ => "–".to_string(),
            },
        ]
    }
}

/// The tables' column names.
pub const HEADER: [&str; 16] = [
    "tracker",
    "backbone",
    "policy",
    "reuse mode",
    "τ",
    "J&F",
    "J",
    "F",
    "reuse rate",
    "FPS (mean per sequence)",
    "throughput FPS",
    "ms computed",
    "ms reused",
    "GFLOPs/frame",
    "MiB/object",
    "safety: streak / copy loss",
];

/// The curve of a tracker, matching backbone, policy and mode: `frtm/learned/stored`,
/// `fusion/motion`, `fusion+dinov2s/motion`.
pub fn series_name(
    tracker: TrackerKind,
    backbone: MatchBackbone,
    policy: GatePolicy,
    mode: Option<ReuseMode>,
) -> String {
    let t = match backbone {
        MatchBackbone::Mobilenetv2 => tracker.to_string(),
        b => format!("{tracker}+{b}"),
    };
    match mode {
        Some(m) => format!("{t}/{policy}/{m}"),
        None => format!("{t}/{policy}"),
    }
}

/// Reads `sweep.csv` by its header (older sweeps have no `mode` or `tracker` column).
pub fn read(path: &Path) -> Result<Vec<SweepRow>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, h)| h.split(',').collect())
        .unwrap_or_default();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let mut rows = Vec::new();
    for (k, line) in lines {
        let c: Vec<&str> = line.split(',').collect();
        let bad = || Error::format(path, format!("line {}: not a sweep row", k + 1));
        let cell = |name: &str| col(name).and_then(|i| c.get(i).copied()).ok_or_else(bad);
        let num = |name: &str| cell(name)?.parse::<f64>().map_err(|_| bad());
        let mode = match cell("mode") {
            Ok("") | Err(_) => None,
            Ok(m) => Some(<ReuseMode as clap::ValueEnum>::from_str(m, true).map_err(|_| bad())?),
        };
        let tracker = match cell("tracker") {
            Ok("") | Err(_) => TrackerKind::default(),
            Ok(t) => <TrackerKind as clap::ValueEnum>::from_str(t, true).map_err(|_| bad())?,
        };
        let backbone = match cell("backbone") {
            Ok("") | Err(_) => MatchBackbone::default(),
            Ok(b) => <MatchBackbone as clap::ValueEnum>::from_str(b, true).map_err(|_| bad())?,
        };
        rows.push(SweepRow {
            tracker,
            backbone,
            policy: <GatePolicy as clap::ValueEnum>::from_str(cell("policy")?, true)
                .map_err(|_| bad())?,
            mode,
            tau: num("tau")? as f32,
            jf: num("jf")?,
            j: num("j")?,
            f: num("f")?,
            reuse_rate: num("reuse_rate")?,
            fps: num("fps")?,
            throughput_fps: num("throughput_fps").unwrap_or(0.0),
            max_streak: num("max_streak").ok().map(|v| v as usize),
            max_copy_loss: num("max_copy_loss").ok().map(|v| v as f32),
            gflops: num("gflops_per_frame")?,
            object_mib: num("object_mib").unwrap_or(0.0),
            ms_computed: num("ms_computed").unwrap_or(0.0),
            ms_reused: num("ms_reused").unwrap_or(0.0),
            run: cell("run")?.to_string(),
        });
    }
    Ok(rows)
}

/// `sweep.csv`, `sweep.md` and `sweep.svg` in `out`.
pub fn write_outputs(rows: &[SweepRow], out: &Path) -> Result<()> {
    let mut csv = String::from(
        "tracker,backbone,policy,mode,tau,jf,j,f,reuse_rate,fps,throughput_fps,ms_computed,ms_reused,gflops_per_frame,object_mib,max_streak,max_copy_loss,run\n",
    );
    let mut md = format!(
        "| {} |\n|{}\n",
        HEADER.join(" | "),
        "---|".repeat(HEADER.len())
    );
    for r in rows {
        let mode = r.mode.map(|m| m.to_string()).unwrap_or_default();
        let streak = r.max_streak.map(|s| s.to_string()).unwrap_or_default();
        let loss = r.max_copy_loss.map(|l| l.to_string()).unwrap_or_default();
        csv.push_str(&format!(
            "{},{},{},{mode},{},{:.4},{:.4},{:.4},{:.4},{:.2},{:.2},{:.1},{:.1},{:.3},{:.2},{streak},{loss},{}\n",
            r.tracker,
            r.backbone,
            r.policy,
            r.tau,
            r.jf,
            r.j,
            r.f,
            r.reuse_rate,
            r.fps,
            r.throughput_fps,
            r.ms_computed,
            r.ms_reused,
            r.gflops,
            r.object_mib,
            r.run
        ));
        md.push_str(&format!("| {} |\n", r.cells().join(" | ")));
    }
    crate::io::atomic::write_bytes(&out.join(SWEEP_CSV), csv.as_bytes())?;
    crate::io::atomic::write_bytes(&out.join(SWEEP_MD), md.as_bytes())?;
    let svg = plot(rows).map_err(|e| Error::Invalid(format!("cannot draw the sweep plot: {e}")))?;
    crate::io::atomic::write_bytes(&out.join(SWEEP_SVG), svg.as_bytes())?;
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
            tracker: TrackerKind::Frtm,
            backbone: MatchBackbone::Mobilenetv2,
            policy,
            mode: None,
            tau,
            jf,
            j: jf,
            f: jf,
            reuse_rate,
            fps,
            throughput_fps: fps * 0.5,
            max_streak: Some(6),
            max_copy_loss: Some(0.12),
            gflops: 5.0,
            object_mib: 4.4,
            ms_computed: 80.0,
            ms_reused: 30.0,
            run: format!("{policy}/tau-{tau}"),
        };
        let rows = vec![
            row(GatePolicy::Learned, 1.0, 0.60, 12.0, 0.0),
            row(GatePolicy::Learned, 0.5, 0.58, 18.0, 0.5),
            row(GatePolicy::Copy, 1.0, 0.60, 12.0, 0.0),
            row(GatePolicy::Copy, 0.5, 0.50, 20.0, 0.5),
        ];
        let svg = plot(&rows).expect("plot");
        // The table reads back what it wrote, the safety net's bounds and throughput included.
        let dir = std::env::temp_dir().join(format!("rvos-sweep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut off = rows[3].clone();
        (off.max_streak, off.max_copy_loss) = (None, None);
        let written = [&rows[..3], &[off]].concat();
        write_outputs(&written, &dir).unwrap();
        let back = read(&dir.join(SWEEP_CSV)).unwrap();
        let seen = |r: &SweepRow| {
            (
                r.run.clone(),
                r.throughput_fps,
                r.max_streak,
                r.max_copy_loss,
            )
        };
        assert_eq!(
            back.iter().map(seen).collect::<Vec<_>>(),
            written.iter().map(seen).collect::<Vec<_>>()
        );
        let md = std::fs::read_to_string(dir.join(SWEEP_MD)).unwrap();
        assert!(
            md.contains("| 6 / 0.12 |") && md.contains("| 9.0 |"),
            "{md}"
        );
        std::fs::remove_dir_all(dir).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..50.min(svg.len())]);
        assert!(
            svg.contains("\nfrtm/learned\n") && svg.contains("\nfrtm/copy\n"),
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

    #[test]
    fn sweep_tables_are_read_by_their_header_old_and_new() {
        let dir = std::env::temp_dir().join(format!("rvos-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let old = dir.join("old.csv");
        std::fs::write(
            &old,
            "policy,tau,jf,j,f,reuse_rate,fps,gflops_per_frame,run\ncopy,0.7,0.5910,0.6320,0.5500,0.4160,15.10,4.480,copy/tau-0.7\n",
        )
        .unwrap();
        let rows = read(&old).unwrap();
        assert_eq!(
            (rows[0].policy, rows[0].mode, rows[0].tau),
            (GatePolicy::Copy, None, 0.7)
        );
        // Columns added since read as not recorded.
        assert_eq!(
            (
                rows[0].throughput_fps,
                rows[0].max_streak,
                rows[0].max_copy_loss
            ),
            (0.0, None, None)
        );
        let new = dir.join("new.csv");
        std::fs::write(
            &new,
            "policy,mode,tau,jf,j,f,reuse_rate,fps,gflops_per_frame,run\nlearned,stored,0.7,0.5960,0.6370,0.5540,0.4160,15.70,5.030,learned-stored/tau-0.7\n",
        )
        .unwrap();
        let rows = read(&new).unwrap();
        assert_eq!(rows[0].mode, Some(ReuseMode::Stored));
        assert_eq!(rows[0].series(), "frtm/learned/stored");
        let with_tracker = dir.join("tracker.csv");
        std::fs::write(
            &with_tracker,
            "tracker,policy,mode,tau,jf,j,f,reuse_rate,fps,gflops_per_frame,run\nfrtm,never,,1,0.5930,0.6290,0.5560,0,12.5,5.9,frtm-never/tau-1\n",
        )
        .unwrap();
        let rows = read(&with_tracker).unwrap();
        assert_eq!(
            (rows[0].tracker, rows[0].policy),
            (TrackerKind::Frtm, GatePolicy::Never)
        );
        std::fs::write(&new, "policy,mode,tau\nlearned,stored,x\n").unwrap();
        assert!(read(&new).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
