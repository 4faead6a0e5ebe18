//! The ViT's weights out of the source ONNX file (a Hugging Face `Dinov2Model` export): named
//! initializers by their state-dict names; the anonymous ones (the linear layers' transposed
//! weights, the position embeddings) by the node that reads them.

use super::onnx::{OnnxGraph, OnnxTensor};
use super::{BlockWeights, LinearWeights, NormWeights, VitConfig, VitWeights};
use crate::error::{Error, Result};

fn missing(what: &str) -> Error {
    Error::Invalid(format!("the DINOv2 file has no {what}"))
}

struct Reader<'a> {
    g: &'a OnnxGraph,
    config: &'a VitConfig,
}

impl Reader<'_> {
    /// A named initializer of `dims`.
    fn named(&self, name: &str, dims: &[usize]) -> Result<Vec<f32>> {
        let t = self.g.initializers.get(name).ok_or_else(|| missing(name))?;
        check(name, t, dims)?;
        Ok(t.data.clone())
    }

    /// The initializer a MatMul reads whose output starts with `prefix` (e.g.
    /// `/backbone/encoder/layer.3/mlp/fc1/MatMul`).
    fn matmul(&self, prefix: &str, dims: &[usize]) -> Result<Vec<f32>> {
        let node = self
            .g
            .nodes
            .iter()
            .find(|n| n.op == "MatMul" && n.outputs.iter().any(|o| o.starts_with(prefix)))
            .ok_or_else(|| missing(prefix))?;
        let (name, t) = node
            .inputs
            .iter()
            .find_map(|i| self.g.initializers.get(i).map(|t| (i, t)))
            .ok_or_else(|| missing(&format!("weight of {prefix}")))?;
        check(name, t, dims)?;
        Ok(t.data.clone())
    }

    fn linear(
        &self,
        layer: usize,
        part: &str,
        state: &str,
        io: (usize, usize),
    ) -> Result<LinearWeights> {
        Ok(LinearWeights {
            inputs: io.0,
            outputs: io.1,
            weight: self.matmul(
                &format!("/backbone/encoder/layer.{layer}/{part}/MatMul"),
                &[io.0, io.1],
            )?,
            bias: self.named(
                &format!("backbone.encoder.layer.{layer}.{state}.bias"),
                &[io.1],
            )?,
        })
    }

    fn norm(&self, prefix: &str) -> Result<NormWeights> {
        let d = self.config.dim;
        Ok(NormWeights {
            gamma: self.named(&format!("{prefix}.weight"), &[d])?,
            beta: self.named(&format!("{prefix}.bias"), &[d])?,
        })
    }

    fn block(&self, i: usize) -> Result<BlockWeights> {
        let (d, m) = (self.config.dim, self.config.mlp);
        let p = format!("backbone.encoder.layer.{i}");
        let att = |part: &str| {
            self.linear(
                i,
                &format!("attention/attention/{part}"),
                &format!("attention.attention.{part}"),
                (d, d),
            )
        };
        Ok(BlockWeights {
            norm1: self.norm(&format!("{p}.norm1"))?,
            query: att("query")?,
            key: att("key")?,
            value: att("value")?,
            proj: self.linear(
                i,
                "attention/output/dense",
                "attention.output.dense",
                (d, d),
            )?,
            scale1: self.named(&format!("{p}.layer_scale1.lambda1"), &[d])?,
            norm2: self.norm(&format!("{p}.norm2"))?,
            fc1: self.linear(i, "mlp/fc1", "mlp.fc1", (d, m))?,
            fc2: self.linear(i, "mlp/fc2", "mlp.fc2", (m, d))?,
            scale2: self.named(&format!("{p}.layer_scale2.lambda1"), &[d])?,
        })
    }

    /// The position embeddings: the patches' `[1, grid², dim]` table a Reshape reads, and the
    /// class token's `[1, 1, dim]` entry a Concat puts in front of the resized table.
    fn positions(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let d = self.config.dim;
        let n = self.config.grid * self.config.grid;
        let read_by = |op: &str, dims: &[usize]| {
            self.g
                .nodes
                .iter()
                .filter(|node| node.op == op)
                .filter_map(|node| node.inputs.first())
                .filter(|i| *i != "backbone.embeddings.cls_token")
                .find_map(|i| self.g.initializers.get(i).filter(|t| t.dims == dims))
                .map(|t| t.data.clone())
        };
        let pos = read_by("Reshape", &[1, n, d]).ok_or_else(|| missing("position table"))?;
        let cls = read_by("Concat", &[1, 1, d])
            .ok_or_else(|| missing("class-token position embedding"))?;
        Ok((pos, cls))
    }
}

fn check(name: &str, t: &OnnxTensor, dims: &[usize]) -> Result<()> {
    if t.dims != dims || t.data.len() != dims.iter().product::<usize>() {
        return Err(Error::Invalid(format!(
            "the DINOv2 file's {name} has shape {:?}, expected {dims:?}",
            t.dims
        )));
    }
    Ok(())
}

/// Reads a ViT-S/14 encoder's weights from a parsed ONNX graph.
pub fn vit_weights(g: &OnnxGraph, config: VitConfig) -> Result<VitWeights> {
    let r = Reader { g, config: &config };
    let (d, p) = (config.dim, config.patch);
    let (pos, cls_pos) = r.positions()?;
    let blocks = (0..config.depth)
        .map(|i| r.block(i))
        .collect::<Result<Vec<_>>>()?;
    Ok(VitWeights {
        patch_weight: r.named(
            "backbone.embeddings.patch_embeddings.projection.weight",
            &[d, 3, p, p],
        )?,
        patch_bias: r.named("backbone.embeddings.patch_embeddings.projection.bias", &[d])?,
        cls_token: r.named("backbone.embeddings.cls_token", &[1, 1, d])?,
        cls_pos,
        pos,
        blocks,
        config,
    })
}
