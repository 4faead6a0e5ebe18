//! What every training loop shares: the run folder (checkpoints, `loss.csv`, snapshots, the
//! final weights, each with its config), resuming, the per-iteration seed, the optimiser step,
//! the progress bar. A trainer supplies only its step: the loss of one batch.

use super::{RunFiles, TrainState, checkpoint, open_log, start_or_resume};
use crate::error::Result;
use crate::model::load::{save_config, save_with_config};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use rand::SeedableRng;
use serde::Serialize;
use std::io::Write;
use std::time::Instant;

/// How a loop runs.
pub struct LoopSpec<'a> {
    pub iterations: usize,
    pub seed: u64,
    pub checkpoint_minutes: f64,
    /// Also keep the weights every this many iterations (`<name>-<iteration>.safetensors`);
    /// 0 = only at the end.
    pub snapshot_every: usize,
    /// The weights' file stem: `<name>.safetensors` at the end.
    pub name: &'a str,
    /// The CSV columns between `iteration` and `seconds`.
    pub log_columns: &'a str,
}

/// One iteration's loss, learning rate and what it logs.
pub struct Step {
    pub loss: Tensor<1>,
    pub lr: f64,
    /// The CSV cells between `iteration` and `seconds`.
    pub log: String,
    /// The progress bar's message.
    pub message: String,
}

/// The run folder, the time the run started and the seconds spent before training (caching).
pub struct Run<'a> {
    pub files: RunFiles,
    pub started: Instant,
    pub prep_seconds: f64,
    pub resume: bool,
    pub progress: &'a indicatif::ProgressBar,
}

impl<'a> Run<'a> {
    /// A run writing into `out` (made if missing), started at `started`: what came before now
    /// (caching) counts as preparation, not training.
    pub fn start(
        out: &std::path::Path,
        started: Instant,
        resume: bool,
        progress: &'a indicatif::ProgressBar,
    ) -> Result<Run<'a>> {
        std::fs::create_dir_all(out).map_err(|e| crate::error::Error::write(out, e))?;
        Ok(Run {
            files: RunFiles {
                dir: out.to_path_buf(),
            },
            started,
            prep_seconds: started.elapsed().as_secs_f64(),
            resume,
            progress,
        })
    }
}

/// Trains `model` (built from `config`) for the spec's iterations, resuming from the run
/// folder's checkpoint when asked. `step` gets the model, a generator seeded from the
/// iteration (so a resumed run draws what an uninterrupted one would) and the state.
pub fn train_loop<M: Module, C: Serialize>(
    run: &Run,
    spec: &LoopSpec,
    config: &C,
    model: M,
    mut step: impl FnMut(&M, &mut rand_chacha::ChaCha8Rng, &TrainState) -> Result<Step>,
) -> Result<TrainState> {
    let files = &run.files;
    let (mut model, mut optim, mut state) = start_or_resume(files, model, run.resume)?;
    // The checkpoint can be used as a network (`--decoder checkpoint-model.bpk`): its config
    // beside it.
    save_config(config, &files.model())?;
    let header = format!("iteration,{},seconds", spec.log_columns);
    let mut log = open_log(files, &header, state.iteration == 0)?;
    run.progress.set_length(spec.iterations as u64);
    run.progress.set_position(state.iteration as u64);
    let mut last_ckpt = Instant::now();
    let base_seconds = state.seconds;
    while state.iteration < spec.iterations {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
            spec.seed.wrapping_mul(1_000_003) ^ state.iteration as u64,
        );
        let s = step(&model, &mut rng, &state)?;
        let grads = GradientsParams::from_grads(s.loss.backward(), &model);
        model = optim.step(s.lr, model, grads);
        state.iteration += 1;
        state.seconds = base_seconds + run.started.elapsed().as_secs_f64() - run.prep_seconds;
        let _ = writeln!(log, "{},{},{:.1}", state.iteration, s.log, state.seconds);
        run.progress.set_position(state.iteration as u64);
        run.progress.set_message(s.message);
        if spec.snapshot_every > 0 && state.iteration.is_multiple_of(spec.snapshot_every) {
            let name = format!("{}-{:05}.safetensors", spec.name, state.iteration);
            save_with_config(&model.valid(), config, &files.dir.join(name))?;
        }
        let done = state.iteration == spec.iterations;
        if done || last_ckpt.elapsed().as_secs_f64() > 60.0 * spec.checkpoint_minutes {
            checkpoint(&model, &optim, &state, files)?;
            last_ckpt = Instant::now();
        }
    }
    let weights = files.dir.join(format!("{}.safetensors", spec.name));
    save_with_config(&model.valid(), config, &weights)?;
    Ok(state)
}

/// An exponential moving average of logged values, for the progress bar.
#[derive(Default)]
pub struct Smoothed {
    values: Vec<f64>,
}

impl Smoothed {
    /// Adds a step's values; returns the averages.
    pub fn add(&mut self, now: &[f64]) -> &[f64] {
        if self.values.len() != now.len() {
            self.values = now.to_vec();
        } else {
            for (a, v) in self.values.iter_mut().zip(now) {
                *a = 0.98 * *a + 0.02 * v;
            }
        }
        &self.values
    }
}
