//! Training with the loop closed: the memory's training propagation writes a decoder's masks
//! into memory, as the tracker writes its memory at run time, and training fine-tunes that
//! decoder. Trained on the memory's own propagation instead, a decoder learns to trim an
//! over-grown memory score — and at run time, fed a memory written with its own already
//! trimmed masks, trims again on every frame.

use super::TrainConfig;
use super::data::SequenceData;
use super::propagate;
use crate::error::{Error, Result};
use crate::model::decoder::DecoderConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Training with the loop closed (see [`TrainConfig::closed_loop`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClosedLoop {
    /// The decoder's weights (safetensors, its config beside it); `{fold}` is replaced by the
    /// fold's name (`fold-0`, …) in a cross-validation.
    pub decoder: PathBuf,
    /// The engine the decoder runs on while propagating, and its threads.
    #[serde(skip, default = "default_engine")]
    pub engine: crate::engine::EngineKind,
    #[serde(skip)]
    pub threads: usize,
    /// Rounds: each propagates with the previous round's result and fine-tunes it again (one
    /// round learns a memory written by the *starting* decoder, then writes masks of its own).
    #[serde(default = "one")]
    pub rounds: usize,
}

fn one() -> usize {
    1
}

/// The folder of round `round` (1-based) of a run into `out` with several rounds.
pub fn round_dir(out: &Path, round: usize) -> PathBuf {
    out.join(format!("round-{round}"))
}

fn default_engine() -> crate::engine::EngineKind {
    crate::engine::EngineKind::Burn
}

impl ClosedLoop {
    /// The decoder file for the fold named `fold` (the path as given outside a cross-validation).
    pub fn path(&self, fold: Option<&str>) -> PathBuf {
        let text = self.decoder.to_string_lossy();
        match fold {
            Some(name) => PathBuf::from(text.replace("{fold}", name)),
            None => self.decoder.clone(),
        }
    }

    /// The decoder round `round` starts from: the given one (the fold's) for the first, the
    /// previous round's result after it.
    pub fn start_of(&self, round: usize, fold: Option<&str>, out: &Path) -> PathBuf {
        if round <= 1 {
            self.path(fold)
        } else {
            round_dir(out, round - 1).join("decoder.safetensors")
        }
    }
}

/// With the loop closed: propagates the memory of `seqs` writing the masks of the decoder at
/// `path`, and returns that decoder to start training from.
pub(super) fn close_loop(
    seqs: &mut [&mut SequenceData],
    cfg: &TrainConfig,
    closed: &ClosedLoop,
    path: &Path,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<u8>> {
    if cfg.score.tracker == crate::track::TrackerKind::Frtm {
        return Err(Error::Invalid(
            "--closed-loop: the FRTM decoder reads no memory (train the memory or fusion decoder)"
                .into(),
        ));
    }
    let config: DecoderConfig = crate::model::load::read_config(path)?;
    let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
    let decoder = crate::model::load::load_decoder(&bytes, &config, &path.display().to_string())?;
    let mut engine = crate::engine::decoder(
        &decoder,
        config.feature_channels,
        closed.engine,
        closed.threads,
    )?;
    progress.set_message(format!(
        "propagating the memory from every reference, written by {}",
        path.display()
    ));
    propagate::propagate_closed(seqs, &cfg.score, cfg.max_gap, engine.as_mut())?;
    Ok(bytes)
}
