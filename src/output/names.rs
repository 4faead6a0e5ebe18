//! The names of the files the jobs write, each in one place (the evaluation's CSV names are
//! owned by [`crate::metrics::eval`]).

use std::path::{Path, PathBuf};

/// `segment`: one JSON line per finished frame, what `--resume` continues from.
pub const PROGRESS: &str = "frames.jsonl";
/// `segment`: what the run was asked (input, masks, options), what `--resume` checks.
pub const JOB: &str = "job.json";
/// `segment`: the run's statistics.
pub const STATS: &str = "stats.json";
/// `run`: per-sequence statistics live in this folder, beside the result folders.
pub const STATS_DIR: &str = "stats";
/// `run`: the split's timing.
pub const TIMING: &str = "timing.json";
/// `sweep`: the table (CSV, markdown) and the plot.
pub const SWEEP_CSV: &str = "sweep.csv";
pub const SWEEP_MD: &str = "sweep.md";
pub const SWEEP_SVG: &str = "sweep.svg";

/// `run`: the statistics of one sequence.
pub fn sequence_stats(out: &Path, sequence: &str) -> PathBuf {
    out.join(STATS_DIR).join(format!("{sequence}.json"))
}

/// `run --shard i/n`: the shard's timing file.
pub fn shard_timing(index: usize, count: usize) -> String {
    format!("timing-{index}-of-{count}.json")
}
