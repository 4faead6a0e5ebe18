//! DINOv2 ViT-S/14: the quality mode's matching backbone. Its weights are read from the ONNX
//! file of a public package (see [`source`]) with the project's own importer ([`import`]); the
//! network is built from them as a Burn module ([`net`]) and as an ONNX Runtime graph
//! (`engine::ort::vit`). Tokens after a middle layer are the memory's keys.

pub mod import;
pub mod net;
pub mod onnx;
pub mod pos;
pub mod source;

use crate::model::FeatureMap;

/// The architecture (ViT-S/14 as DINOv2 trained it).
#[derive(burn::config::Config, Debug)]
pub struct VitConfig {
    #[config(default = 384)]
    pub dim: usize,
    #[config(default = 6)]
    pub heads: usize,
    #[config(default = 12)]
    pub depth: usize,
    #[config(default = 14)]
    pub patch: usize,
    #[config(default = 1536)]
    pub mlp: usize,
    /// The position grid the embeddings were trained on (37 × 37 patches).
    #[config(default = 37)]
    pub grid: usize,
    #[config(default = 1e-6)]
    pub eps: f64,
}

/// A linear layer as ONNX's MatMul reads it: `y = x · weight + bias`, weight `[inputs, outputs]`
/// row-major (Burn's `Linear` layout too).
#[derive(Clone, Debug)]
pub struct LinearWeights {
    pub inputs: usize,
    pub outputs: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Layer norm's scale and shift.
#[derive(Clone, Debug)]
pub struct NormWeights {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// One transformer block: `x += ls1 · attn(norm1(x)); x += ls2 · mlp(norm2(x))`.
#[derive(Clone, Debug)]
pub struct BlockWeights {
    pub norm1: NormWeights,
    pub query: LinearWeights,
    pub key: LinearWeights,
    pub value: LinearWeights,
    pub proj: LinearWeights,
    pub scale1: Vec<f32>,
    pub norm2: NormWeights,
    pub fc1: LinearWeights,
    pub fc2: LinearWeights,
    pub scale2: Vec<f32>,
}

/// Every weight of the encoder (the saliency head of the source file is not read).
#[derive(Clone, Debug)]
pub struct VitWeights {
    pub config: VitConfig,
    /// `[dim, 3, patch, patch]`.
    pub patch_weight: Vec<f32>,
    pub patch_bias: Vec<f32>,
    pub cls_token: Vec<f32>,
    /// The class token's position embedding.
    pub cls_pos: Vec<f32>,
    /// The patches' position embeddings, `[grid · grid, dim]` in row-major grid order.
    pub pos: Vec<f32>,
    pub blocks: Vec<BlockWeights>,
}

/// Where a ViT runs: input size (a multiple of 14 each way) and the layer whose tokens it gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VitShape {
    pub height: usize,
    pub width: usize,
    /// Blocks run (1..=depth); the tokens after the last of them are the output.
    pub layers: usize,
}

impl VitShape {
    /// The patch grid `(rows, columns)`.
    pub fn grid(&self, patch: usize) -> (usize, usize) {
        (self.height / patch, self.width / patch)
    }
}

impl VitWeights {
    /// Multiply-accumulates of one image through `shape.layers` blocks.
    pub fn macs(&self, shape: VitShape) -> u64 {
        let c = &self.config;
        let (gh, gw) = shape.grid(c.patch);
        let n = gh * gw;
        let t = (n + 1) as u64;
        let d = c.dim as u64;
        let embed = (n * c.dim * 3 * c.patch * c.patch) as u64;
        let block = t * d * d * 4 + 2 * t * t * d + 2 * t * d * c.mlp as u64;
        embed + block * shape.layers as u64
    }
}

/// Patch tokens `[1, T, dim]` (class token first) → a `[dim, rows, cols]` map of the patches.
pub fn tokens_to_map(tokens: &[f32], dim: usize, (gh, gw): (usize, usize)) -> FeatureMap {
    let n = gh * gw;
    let mut data = vec![0.0; dim * n];
    for (i, tok) in tokens[dim..].chunks_exact(dim).enumerate().take(n) {
        for (c, &v) in tok.iter().enumerate() {
            data[c * n + i] = v;
        }
    }
    FeatureMap::new(dim, gh, gw, data)
}

/// The ViT's input: the frame normalised as for MobileNetV2 (ImageNet mean and deviation, as
/// DINOv2 too was trained) and resized bilinearly to `(height, width)`.
pub fn input(frame: &crate::io::Frame, (height, width): (usize, usize)) -> FeatureMap {
    let full = crate::model::backbone::normalize(frame);
    let (h, w) = (full.height, full.width);
    if (h, w) == (height, width) {
        return full;
    }
    let data = full
        .data
        .chunks_exact(h * w)
        .flat_map(|plane| crate::model::tensor::resize_bilinear(plane, h, w, height, width))
        .collect();
    FeatureMap::new(3, height, width, data)
}
