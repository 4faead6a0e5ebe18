//! The `reuse-vos` command line: a thin layer over the library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use reuse_vos::io::{Dataset, DatasetKind};
use reuse_vos::metrics::{EvalOptions, evaluate};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "reuse-vos",
    version,
    about = "Semi-supervised video object segmentation on the CPU with a learned reuse gate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate results with the DAVIS semi-supervised metrics (J, F), as the official toolkit.
    Eval(EvalArgs),
}

#[derive(clap::Args)]
struct EvalArgs {
    /// DAVIS root (holds Annotations/480p; JPEGImages are not needed).
    #[arg(long)]
    davis: PathBuf,
    /// Results folder: <results>/<sequence>/<frame>.png, indexed PNGs.
    #[arg(long)]
    results: PathBuf,
    /// Set name (ImageSets/2017/<set>.txt, or ImageSets/480p/<set>.txt with --year 2016) or a
    /// list file. Default: every annotated sequence.
    #[arg(long, conflicts_with = "sequences")]
    set: Option<String>,
    /// Comma-separated sequence names.
    #[arg(long, value_delimiter = ',')]
    sequences: Option<Vec<String>>,
    /// 2017: palette annotations, ids 1..N. 2016: grey annotations, one object, all non-zero
    /// result ids merged.
    #[arg(long, default_value_t = 2017, value_parser = clap::value_parser!(u16).range(2016..=2017))]
    year: u16,
    /// Also write every per-frame value at full precision to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where to write the two CSVs (default: the results folder, as the toolkit does).
    #[arg(long)]
    csv_dir: Option<PathBuf>,
}

fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
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

/// The name a set is reported under: the set name, a list file's stem, or "all".
fn set_label(set: Option<&str>, sequences: bool) -> String {
    match set {
        Some(s) => Path::new(s)
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| s.to_string()),
        None if sequences => "custom".into(),
        None => "all".into(),
    }
}

fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    let kind = if args.year == 2016 {
        DatasetKind::Davis2016
    } else {
        DatasetKind::Davis2017
    };
    let dataset = Dataset::open(
        &args.davis,
        kind,
        args.set.as_deref(),
        args.sequences.as_deref(),
    )?;
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
    let label = set_label(args.set.as_deref(), args.sequences.is_some());
    let csv_dir = args.csv_dir.as_deref().unwrap_or(&args.results);
    let (g, p) = report.write_csvs(csv_dir, &label)?;
    if let Some(json) = &args.json {
        let text = serde_json::to_string_pretty(&report.to_json())?;
        reuse_vos::io::atomic::write_bytes(json, text.as_bytes())?;
    }
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval(args) => run_eval(args).context("eval failed"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
