//! The `reuse-vos` command line: a thin layer over the library.

mod bench;
mod eval;
mod shared;
mod tools;
mod track;
mod train;

use anyhow::Context;
use bench::{BenchCommand, run_bench};
use clap::{Parser, Subcommand};
use eval::*;
use std::process::ExitCode;
use tools::*;
use track::*;
use train::*;

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
    /// Weight files: import PyTorch checkpoints.
    #[command(subcommand)]
    Weights(WeightsCommand),
    /// Look inside the networks.
    #[command(subcommand)]
    Inspect(InspectCommand),
    /// Segment the objects of a video file or a folder of frames from masks given on any frame.
    Segment(SegmentArgs),
    /// Segment every sequence of a DAVIS split into the DAVIS result layout.
    Run(RunArgs),
    /// Run a split at several reuse thresholds and policies: table (CSV, markdown) and plot.
    Sweep(SweepArgs),
    /// One self-contained HTML report of a segment, run or sweep output folder.
    Report(ReportArgs),
    /// Write one frame of a video as a PNG at its size: the picture to paint a first mask on.
    Frame(FrameArgs),
    /// Train the refinement decoder (backbone frozen) on a DAVIS-2016 split.
    Train(TrainArgs),
    /// Speed benchmarks (median of repeated runs after warm-up).
    #[command(subcommand)]
    Bench(BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval(args) => run_eval(args).context("eval failed"),
        Command::Weights(cmd) => run_weights(cmd),
        Command::Inspect(cmd) => run_inspect(cmd),
        Command::Bench(cmd) => run_bench(cmd),
        Command::Train(args) => run_train(args),
        Command::Segment(args) => run_segment(args),
        Command::Report(args) => reuse_vos::output::report::write(&args.dir, &args.out)
            .map(|()| println!("report written to {}", args.out.display()))
            .map_err(anyhow::Error::from),
        Command::Frame(args) => run_frame(args),
        Command::Run(args) => run_run(args),
        Command::Sweep(args) => run_sweep(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, each said once (our errors already quote the OS error they wrap).
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
