//! `eval`: the DAVIS semi-supervised metrics over a results folder.

use crate::shared::*;
use reuse_vos::metrics::{EvalOptions, evaluate};
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct EvalArgs {
    /// The ground truth (only Annotations/480p is read; JPEGImages are not needed). With 2016,
    /// all non-zero result ids are merged into the one object.
    #[command(flatten)]
    pub(crate) data: DavisArgs,
    /// Results folder: <results>/<sequence>/<frame>.png, indexed PNGs.
    #[arg(long)]
    pub(crate) results: PathBuf,
    /// Also write every per-frame value at full precision to this JSON file.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// Where to write the two CSVs (default: the results folder, as the toolkit does).
    #[arg(long)]
    pub(crate) csv_dir: Option<PathBuf>,
}

pub(crate) fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    // Outputs that cannot be written are told before the evaluation, not after half of them.
    if let Some(json) = &args.json {
        let dir = json.parent().filter(|d| !d.as_os_str().is_empty());
        if json.is_dir() || dir.is_some_and(|d| !d.is_dir()) {
            anyhow::bail!(
                "--json {}: not a file in an existing folder",
                json.display()
            );
        }
    }
    let dataset = args.data.open()?;
    let frames: u64 = dataset
        .sequences
        .iter()
        .map(|s| {
            std::fs::read_dir(dataset.annotations_dir(s))
                .map(|d| d.count().saturating_sub(2) as u64)
                .unwrap_or(0)
        })
        .sum();
    let bar = progress_bar(frames, "eval");
    let start = std::time::Instant::now();
    let report = evaluate(
        &dataset,
        &EvalOptions {
            results: args.results.clone(),
        },
        Some(&bar),
    )?;
    bar.finish_and_clear();
    let label = args.data.label();
    let csv_dir = args.csv_dir.as_deref().unwrap_or(&args.results);
    // The JSON first: if the CSVs then fail, the JSON goes too (all outputs, or none).
    if let Some(json) = &args.json {
        let text = serde_json::to_string_pretty(&report.to_json())?;
        reuse_vos::io::atomic::write_bytes(json, text.as_bytes())?;
    }
    let (g, p) = match report.write_csvs(csv_dir, &label) {
        Ok(paths) => paths,
        Err(e) => {
            if let Some(json) = &args.json {
                let _ = std::fs::remove_file(json);
            }
            return Err(e.into());
        }
    };
    print!("{}", report.table(&label));
    eprintln!(
        "evaluated {} objects in {} sequences in {:.2} s; wrote {} and {}",
        report.objects.len(),
        dataset.sequences.len(),
        start.elapsed().as_secs_f64(),
        g.display(),
        p.display()
    );
    Ok(())
}
