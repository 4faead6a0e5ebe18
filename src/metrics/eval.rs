//! The DAVIS semi-supervised evaluation of a results folder against a dataset's annotations,
//! reproducing the official toolkit: first and last frame excluded, objects from the first GT
//! frame, missing result ids zero-padded, an extra id refused, every object weighted equally.

use crate::error::{Error, Result};
use crate::io::frame::stem;
use crate::io::{Dataset, DatasetKind, Mask, atomic};
use crate::metrics::{Stats, db_statistics, f_measure, jaccard};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The names `write_csvs` gives its tables, as the official toolkit does: `<prefix><set>.csv`.
pub const GLOBAL_CSV: &str = "global_results-";
pub const PER_SEQUENCE_CSV: &str = "per-sequence_results-";

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub results: PathBuf,
}

/// The scores of one object over the evaluated frames.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectScores {
    /// `<sequence>_<id>`, as the toolkit names it.
    pub name: String,
    #[serde(rename = "J")]
    pub j: Vec<f64>,
    #[serde(rename = "F")]
    pub f: Vec<f64>,
    #[serde(rename = "J_stats")]
    pub j_stats: [f64; 3],
    #[serde(rename = "F_stats")]
    pub f_stats: [f64; 3],
}

/// The global table: means over all objects.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Global {
    #[serde(rename = "JF_mean")]
    pub jf_mean: f64,
    #[serde(rename = "J_mean")]
    pub j_mean: f64,
    #[serde(rename = "J_recall")]
    pub j_recall: f64,
    #[serde(rename = "J_decay")]
    pub j_decay: f64,
    #[serde(rename = "F_mean")]
    pub f_mean: f64,
    #[serde(rename = "F_recall")]
    pub f_recall: f64,
    #[serde(rename = "F_decay")]
    pub f_decay: f64,
}

/// Everything an evaluation computes.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    #[serde(rename = "global_")]
    pub global: Global,
    /// Objects in evaluation order (sequence order, then id).
    pub objects: Vec<ObjectScores>,
}

fn stats_array(s: Stats) -> [f64; 3] {
    [s.mean, s.recall, s.decay]
}

/// Per-frame scores of one frame for every GT object, and the largest result id seen.
struct FrameScores {
    j: Vec<f64>,
    f: Vec<f64>,
    max_res_id: u8,
}

/// Reads a GT annotation: DAVIS 2016 grey → one object; otherwise ids with void as background.
fn read_gt(path: &Path, kind: DatasetKind) -> Result<Mask> {
    kind.read_annotation(path)
}

fn read_result(path: &Path, kind: DatasetKind, seq: &str) -> Result<Mask> {
    if !path.is_file() {
        return Err(Error::Missing {
            path: path.to_path_buf(),
            what: format!("the result of sequence {seq} for this frame (an indexed PNG)"),
        });
    }
    match kind {
        DatasetKind::Davis2016 => Mask::read_binary(path),
        _ => Mask::read_ids(path),
    }
}

fn evaluate_sequence(
    dataset: &Dataset,
    seq: &str,
    results: &Path,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<Vec<ObjectScores>> {
    let info = dataset.sequence(seq)?;
    let gt_paths: Vec<&PathBuf> = info.annotations.iter().map(|(_, p)| p).collect();
    let first = read_gt(gt_paths[0], dataset.kind)?;
    let n_obj = match dataset.kind {
        DatasetKind::Davis2016 => 1,
        _ => first.max_id(),
    };
    let n = gt_paths.len();
    let evaluated = if n > 2 { &gt_paths[1..n - 1] } else { &[][..] };
    let frames: Vec<FrameScores> = evaluated
        .par_iter()
        .map(|gt_path| {
            let gt = read_gt(gt_path, dataset.kind)?;
            let res_path = results.join(seq).join(format!("{}.png", stem(gt_path)));
            let res = read_result(&res_path, dataset.kind, seq)?;
            res.check_size(gt.width, gt.height, &res_path)?;
            let (w, h) = (gt.width as usize, gt.height as usize);
            let mut s = FrameScores {
                j: Vec::with_capacity(n_obj as usize),
                f: Vec::with_capacity(n_obj as usize),
                max_res_id: res.ids.iter().copied().max().unwrap_or(0),
            };
            for id in 1..=n_obj {
                s.j.push(jaccard(&gt.ids, id, &res.ids, id));
                s.f.push(f_measure(&gt.ids, id, &res.ids, id, w, h));
            }
            if let Some(p) = progress {
                p.inc(1);
            }
            Ok(s)
        })
        .collect::<Result<_>>()?;
    if let Some((i, fs)) = frames
        .iter()
        .enumerate()
        .find(|(_, fs)| fs.max_res_id > n_obj)
    {
        return Err(Error::sequence(
            seq,
            format!(
                "result has an object id above the number of objects in its first GT frame \
                 (id {} in {}, but {} has {n_obj} object(s))",
                fs.max_res_id,
                results
                    .join(seq)
                    .join(format!("{}.png", stem(evaluated[i])))
                    .display(),
                gt_paths[0].display()
            ),
        ));
    }
    Ok((1..=n_obj)
        .map(|id| {
            let k = id as usize - 1;
            let j: Vec<f64> = frames.iter().map(|fs| fs.j[k]).collect();
            let f: Vec<f64> = frames.iter().map(|fs| fs.f[k]).collect();
            ObjectScores {
                name: format!("{seq}_{id}"),
                j_stats: stats_array(db_statistics(&j)),
                f_stats: stats_array(db_statistics(&f)),
                j,
                f,
            }
        })
        .collect())
}

/// Evaluates the results folder (`<results>/<seq>/<frame>.png`) on every sequence of the
/// dataset. Sequences and frames run in parallel; results are in sequence order.
pub fn evaluate(
    dataset: &Dataset,
    opts: &EvalOptions,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<EvalReport> {
    if !opts.results.is_dir() {
        return Err(Error::Missing {
            path: opts.results.clone(),
            what: "the results folder".into(),
        });
    }
    // Errors are reported for the first failing sequence in set order, as the toolkit does.
    let per_seq: Vec<Result<Vec<ObjectScores>>> = dataset
        .sequences
        .par_iter()
        .map(|seq| evaluate_sequence(dataset, seq, &opts.results, progress))
        .collect();
    let mut objects = Vec::new();
    for seq in per_seq {
        objects.extend(seq?);
    }
    let mean = |f: &dyn Fn(&ObjectScores) -> f64| {
        objects.iter().map(f).sum::<f64>() / objects.len() as f64
    };
    let (j_mean, f_mean) = (mean(&|o| o.j_stats[0]), mean(&|o| o.f_stats[0]));
    let global = Global {
        jf_mean: (j_mean + f_mean) / 2.0,
        j_mean,
        j_recall: mean(&|o| o.j_stats[1]),
        j_decay: mean(&|o| o.j_stats[2]),
        f_mean,
        f_recall: mean(&|o| o.f_stats[1]),
        f_decay: mean(&|o| o.f_stats[2]),
    };
    Ok(EvalReport { global, objects })
}

impl EvalReport {
    /// The toolkit's `global_results-<set>.csv` text (`%.3f`).
    pub fn global_csv(&self) -> String {
        let g = &self.global;
        format!(
            "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n\
             {:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3}\n",
            g.jf_mean, g.j_mean, g.j_recall, g.j_decay, g.f_mean, g.f_recall, g.f_decay
        )
    }

    /// The toolkit's `per-sequence_results-<set>.csv` text: one row per object.
    pub fn per_sequence_csv(&self) -> String {
        let mut s = String::from("Sequence,J-Mean,F-Mean\n");
        for o in &self.objects {
            let _ = writeln!(s, "{},{:.3},{:.3}", o.name, o.j_stats[0], o.f_stats[0]);
        }
        s
    }

    /// Writes both CSVs into `dir`, atomically, named for `set`.
    pub fn write_csvs(&self, dir: &Path, set: &str) -> Result<(PathBuf, PathBuf)> {
        let g = dir.join(format!("{GLOBAL_CSV}{set}.csv"));
        let p = dir.join(format!("{PER_SEQUENCE_CSV}{set}.csv"));
        atomic::write_bytes(&g, self.global_csv().as_bytes())?;
        atomic::write_bytes(&p, self.per_sequence_csv().as_bytes())?;
        Ok((g, p))
    }

    /// Per-object values keyed by name, as in the toolkit fixtures (`per_object`).
    pub fn to_json(&self) -> serde_json::Value {
        let per_object: BTreeMap<&str, &ObjectScores> =
            self.objects.iter().map(|o| (o.name.as_str(), o)).collect();
        serde_json::json!({ "global_": self.global, "per_object": per_object })
    }

    /// The global and per-object tables as the toolkit prints them.
    pub fn table(&self, set: &str) -> String {
        let g = &self.global;
        let mut s = format!(
            "--------------------------- Global results for {set} ---------------------------\n"
        );
        let _ = writeln!(
            s,
            "{:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"
        );
        let _ = writeln!(
            s,
            "{:>9.6} {:>9.6} {:>9.6} {:>9.6} {:>9.6} {:>9.6} {:>9.6}",
            g.jf_mean, g.j_mean, g.j_recall, g.j_decay, g.f_mean, g.f_recall, g.f_decay
        );
        let _ = writeln!(
            s,
            "\n---------- Per sequence results for {set} ----------\n{:<24} {:>8} {:>8}",
            "Sequence", "J-Mean", "F-Mean"
        );
        for o in &self.objects {
            let _ = writeln!(
                s,
                "{:<24} {:>8.6} {:>8.6}",
                o.name, o.j_stats[0], o.f_stats[0]
            );
        }
        s
    }
}
