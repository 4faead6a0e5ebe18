//! The networks a session runs, and reading/writing their weights. Every weight file has its
//! Burn `Config` saved beside it as JSON (`decoder.safetensors` → `decoder.json`), so a network
//! is built from what it was trained as, never guessed from tensor shapes.

use super::backbone::BackboneSpec;
use super::decoder::{Decoder, DecoderConfig};
use super::int8::Int8Plan;
use super::reuse::{ReuseConfig, ReuseNet};
use super::weights::Weights;
use crate::error::{Error, Result};
use burn::module::Module;
use burn::prelude::Device;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// The trained decoder embedded in the binary (see `weights/MANIFEST.md`), and its config.
static DECODER_SAFETENSORS: &[u8] = include_bytes!("../../weights/decoder.safetensors");
static DECODER_CONFIG: &str = include_str!("../../weights/decoder.json");
/// The decoders trained on the memory tracker's and the fusion tracker's scores (empty until
/// trained: those trackers then read through the FRTM decoder).
static DECODER_MEMORY_SAFETENSORS: &[u8] =
    include_bytes!("../../weights/decoder-memory.safetensors");
static DECODER_MEMORY_CONFIG: &str = include_str!("../../weights/decoder-memory.json");
static DECODER_FUSION_SAFETENSORS: &[u8] =
    include_bytes!("../../weights/decoder-fusion.safetensors");
static DECODER_FUSION_CONFIG: &str = include_str!("../../weights/decoder-fusion.json");
/// The fusion decoder trained on the memory matching DINOv2's tokens (the quality mode).
static DECODER_FUSION_DINOV2_SAFETENSORS: &[u8] =
    include_bytes!("../../weights/decoder-fusion-dinov2s.safetensors");
static DECODER_FUSION_DINOV2_CONFIG: &str =
    include_str!("../../weights/decoder-fusion-dinov2s.json");
/// The trained reuse path (see `weights/MANIFEST.md`), and its config.
static REUSE_SAFETENSORS: &[u8] = include_bytes!("../../weights/reuse.safetensors");
static REUSE_CONFIG: &str = include_str!("../../weights/reuse.json");

/// The networks a session runs: the backbone, the trained decoder and reuse path.
#[derive(Clone, Debug)]
pub struct Model {
    pub backbone: BackboneSpec,
    pub decoder: Decoder,
    pub decoder_config: DecoderConfig,
    /// None: only the full path (`--gate never`).
    pub reuse: Option<ReuseNet>,
    /// How the backbone runs in int8 (None: it has not been calibrated).
    pub int8: Option<Int8Plan>,
    /// The matching backbone (DINOv2 ViT-S/14), when loaded (`--backbone dinov2s`).
    pub vit: Option<std::sync::Arc<crate::model::vit::VitWeights>>,
}

impl Model {
    /// The embedded backbone, decoder and reuse path.
    pub fn embedded() -> Result<Model> {
        let origin = "embedded decoder.safetensors";
        let config: DecoderConfig = parse_config(DECODER_CONFIG, origin)?;
        let decoder = load_decoder(DECODER_SAFETENSORS, &config, origin)?;
        let reuse_origin = "embedded reuse.safetensors";
        let reuse_config: ReuseConfig = parse_config(REUSE_CONFIG, reuse_origin)?;
        Ok(Model {
            backbone: BackboneSpec::embedded()?,
            decoder,
            decoder_config: config,
            reuse: Some(load_reuse(REUSE_SAFETENSORS, &reuse_config, reuse_origin)?),
            int8: Int8Plan::embedded()?,
            vit: None,
        })
    }

    /// The embedded networks with the decoder trained for `tracker`'s score (`"frtm"`,
    /// `"memory"`, `"fusion"`); a tracker without one of its own reads through FRTM's.
    pub fn embedded_for(tracker: &str) -> Result<Model> {
        Model::embedded_matching(tracker, "mobilenetv2")
    }

    /// [`Model::embedded_for`] when the memory matches `matching`'s features (`"mobilenetv2"`,
    /// `"dinov2s"`): the fusion decoder trained on DINOv2's propagation for the latter.
    pub fn embedded_matching(tracker: &str, matching: &str) -> Result<Model> {
        let mut model = Model::embedded()?;
        let (bytes, config, name) = match (tracker, matching) {
            ("memory", _) => (DECODER_MEMORY_SAFETENSORS, DECODER_MEMORY_CONFIG, "memory"),
            ("fusion", "dinov2s") => (
                DECODER_FUSION_DINOV2_SAFETENSORS,
                DECODER_FUSION_DINOV2_CONFIG,
                "fusion-dinov2s",
            ),
            ("fusion", _) => (DECODER_FUSION_SAFETENSORS, DECODER_FUSION_CONFIG, "fusion"),
            _ => return Ok(model),
        };
        if bytes.is_empty() {
            return Ok(model);
        }
        let origin = format!("embedded decoder-{name}.safetensors");
        let config: DecoderConfig = parse_config(config, &origin)?;
        model.decoder = load_decoder(bytes, &config, &origin)?;
        model.decoder_config = config;
        Ok(model)
    }

    /// The channels of the backbone taps the decoder reads (strides 32, 16, 8, 4).
    pub fn feature_channels(&self) -> [usize; 4] {
        self.decoder_config.feature_channels
    }

    /// With a decoder read from a file: safetensors (shipped weights) or a training checkpoint
    /// (`checkpoint-model.bpk`), each with its config beside it. The reuse path is dropped: it
    /// was trained over another decoder (give one with [`Model::with_reuse_file`]).
    pub fn with_decoder_file(mut self, path: &Path) -> Result<Model> {
        let config: DecoderConfig = read_config(path)?;
        self.decoder = if path.extension().is_some_and(|e| e == "bpk") {
            config
                .init(&Device::flex())
                .try_load_file(path)
                .map_err(|e| Error::format(path, format!("not a decoder checkpoint: {e}")))?
        } else {
            let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
            load_decoder(&bytes, &config, &path.display().to_string())?
        };
        self.decoder_config = config;
        self.reuse = None;
        Ok(self)
    }

    /// With reuse-path weights from a safetensors file (and its config beside it).
    pub fn with_reuse_file(mut self, path: &Path) -> Result<Model> {
        let config: ReuseConfig = read_config(path)?;
        let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
        self.reuse = Some(load_reuse(&bytes, &config, &path.display().to_string())?);
        Ok(self)
    }

    /// With the int8 plan from a JSON file (`reuse-vos weights calibrate`).
    pub fn with_int8_plan(mut self, path: &Path) -> Result<Model> {
        self.int8 = Some(Int8Plan::load(path)?);
        Ok(self)
    }

    /// With backbone weights from a safetensors file instead of the embedded ones (the
    /// embedded int8 ranges do not hold for them).
    pub fn with_backbone_weights(mut self, path: &Path) -> Result<Model> {
        self.backbone = BackboneSpec::from_weights(&Weights::load(path)?)?;
        self.int8 = None;
        Ok(self)
    }
}

/// Where the config of a weight file lives: beside it, `.json` for its extension.
pub fn config_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

fn parse_config<C: DeserializeOwned>(text: &str, origin: &str) -> Result<C> {
    serde_json::from_str(text).map_err(|e| Error::Format {
        path: origin.into(),
        reason: format!("not a network config: {e}"),
    })
}

/// Reads the config saved beside a weight file.
pub fn read_config<C: DeserializeOwned>(weights: &Path) -> Result<C> {
    let path = config_path(weights);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Format {
        path: weights.into(),
        reason: format!(
            "its config {} cannot be read ({}); every weight file needs the JSON config it was \
             trained with beside it (`reuse-vos train` writes both)",
            path.display(),
            e
        ),
    })?;
    parse_config(&text, &path.display().to_string())
}

/// Writes a module's weights as safetensors and its config beside them.
pub fn save_with_config<M: Module, C: Serialize>(
    module: &M,
    config: &C,
    path: &Path,
) -> Result<()> {
    save_config(config, path)?;
    let mut store = SafetensorsStore::from_file(path).overwrite(true);
    module
        .save_into(&mut store)
        .map_err(|e| Error::Invalid(format!("{}: cannot save weights: {e}", path.display())))
}

/// Writes a config beside the weight file `weights` (atomically).
pub fn save_config<C: Serialize>(config: &C, weights: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(config).map_err(|e| Error::Invalid(e.to_string()))?;
    crate::io::atomic::write_bytes(&config_path(weights), text.as_bytes())
}

/// Decoder weights (safetensors bytes) into a decoder built from `config`.
pub fn load_decoder(bytes: &[u8], config: &DecoderConfig, origin: &str) -> Result<Decoder> {
    load_decoder_on(bytes, config, &Device::flex(), origin)
}

/// As [`load_decoder`], on a given device (training loads onto its autodiff device).
pub fn load_decoder_on(
    bytes: &[u8],
    config: &DecoderConfig,
    device: &Device,
    origin: &str,
) -> Result<Decoder> {
    let mut dec = config.init(device);
    let mut store = SafetensorsStore::from_bytes(Some(bytes.to_vec()));
    dec.load_from(&mut store).map_err(|e| Error::Format {
        path: origin.into(),
        reason: format!("not decoder weights for {config:?}: {e}"),
    })?;
    Ok(dec)
}

/// Reuse-path weights (safetensors bytes) into a reuse path built from `config`.
pub fn load_reuse(bytes: &[u8], config: &ReuseConfig, origin: &str) -> Result<ReuseNet> {
    let mut net = config.init(&Device::flex());
    let mut store = SafetensorsStore::from_bytes(Some(bytes.to_vec()));
    net.load_from(&mut store).map_err(|e| Error::Format {
        path: origin.into(),
        reason: format!("not reuse-path weights for {config:?}: {e}"),
    })?;
    Ok(net)
}
