//! ViT-S/14 as a Burn module, built from [`VitConfig`] and filled with imported weights. The
//! position embeddings come in already resized to the input's grid ([`super::pos`]).

use super::{BlockWeights, LinearWeights, NormWeights, VitConfig, VitShape, VitWeights};
use crate::model::FeatureMap;
use crate::model::backbone::net::{to_map, to_tensor};
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu, softmax};

/// One transformer block.
#[derive(Module, Debug)]
pub struct VitBlock {
    norm1: LayerNorm,
    query: Linear,
    key: Linear,
    value: Linear,
    proj: Linear,
    scale1: Param<Tensor<1>>,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    scale2: Param<Tensor<1>>,
    heads: usize,
}

/// The encoder: patch embedding, class token, blocks.
#[derive(Module, Debug)]
pub struct Vit {
    patch: Conv2d,
    cls: Param<Tensor<3>>,
    cls_pos: Param<Tensor<3>>,
    blocks: Vec<VitBlock>,
}

impl VitConfig {
    /// The architecture with freshly initialised weights.
    pub fn init(&self, device: &Device) -> Vit {
        let (d, p) = (self.dim, self.patch);
        let norm = || LayerNormConfig::new(d).with_epsilon(self.eps).init(device);
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        let ones = || Param::from_tensor(Tensor::ones([d], device));
        Vit {
            patch: Conv2dConfig::new([3, d], [p, p])
                .with_stride([p, p])
                .init(device),
            cls: Param::from_tensor(Tensor::zeros([1, 1, d], device)),
            cls_pos: Param::from_tensor(Tensor::zeros([1, 1, d], device)),
            blocks: (0..self.depth)
                .map(|_| VitBlock {
                    norm1: norm(),
                    query: linear(d, d),
                    key: linear(d, d),
                    value: linear(d, d),
                    proj: linear(d, d),
                    scale1: ones(),
                    norm2: norm(),
                    fc1: linear(d, self.mlp),
                    fc2: linear(self.mlp, d),
                    scale2: ones(),
                    heads: self.heads,
                })
                .collect(),
        }
    }
}

fn param<const D: usize>(data: &[f32], shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::from_data(
        TensorData::new(data.to_vec(), shape),
        device,
    ))
}

fn set_linear(l: &mut Linear, w: &LinearWeights, device: &Device) {
    l.weight = param(&w.weight, [w.inputs, w.outputs], device);
    l.bias = Some(param(&w.bias, [w.outputs], device));
}

fn set_norm(n: &mut LayerNorm, w: &NormWeights, device: &Device) {
    n.gamma = param(&w.gamma, [w.gamma.len()], device);
    n.beta = Some(param(&w.beta, [w.beta.len()], device));
}

impl VitBlock {
    fn load(&mut self, w: &BlockWeights, device: &Device) {
        set_norm(&mut self.norm1, &w.norm1, device);
        set_linear(&mut self.query, &w.query, device);
        set_linear(&mut self.key, &w.key, device);
        set_linear(&mut self.value, &w.value, device);
        set_linear(&mut self.proj, &w.proj, device);
        self.scale1 = param(&w.scale1, [w.scale1.len()], device);
        set_norm(&mut self.norm2, &w.norm2, device);
        set_linear(&mut self.fc1, &w.fc1, device);
        set_linear(&mut self.fc2, &w.fc2, device);
        self.scale2 = param(&w.scale2, [w.scale2.len()], device);
    }

    /// `[1, T, d]` → `[1, T, d]`.
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let (h, hd) = (self.heads, d / self.heads);
        let split = |y: Tensor<3>| y.reshape([b, t, h, hd]).swap_dims(1, 2);
        let n = self.norm1.forward(x.clone());
        let q = split(self.query.forward(n.clone()));
        let k = split(self.key.forward(n.clone()));
        let v = split(self.value.forward(n));
        let att = softmax(q.matmul(k.swap_dims(2, 3)) / (hd as f32).sqrt(), 3);
        let y = att.matmul(v).swap_dims(1, 2).reshape([b, t, d]);
        let x = x + self.proj.forward(y) * self.scale1.val().reshape([1, 1, d]);
        let m = self
            .fc2
            .forward(gelu(self.fc1.forward(self.norm2.forward(x.clone()))));
        x + m * self.scale2.val().reshape([1, 1, d])
    }
}

impl Vit {
    /// Builds the network with imported weights, frozen.
    pub fn from_weights(w: &VitWeights, device: &Device) -> Vit {
        let c = &w.config;
        let (d, p) = (c.dim, c.patch);
        let mut net = c.init(device);
        net.patch.weight = param(&w.patch_weight, [d, 3, p, p], device);
        net.patch.bias = Some(param(&w.patch_bias, [d], device));
        net.cls = param(&w.cls_token, [1, 1, d], device);
        net.cls_pos = param(&w.cls_pos, [1, 1, d], device);
        for (b, bw) in net.blocks.iter_mut().zip(&w.blocks) {
            b.load(bw, device);
        }
        net.no_grad()
    }

    /// Tokens after `shape.layers` blocks of a normalised `[3, H, W]` image, given the patch
    /// position embeddings on its grid: `[dim, rows, cols]` (the class token dropped).
    pub fn forward(&self, image: Tensor<4>, pos: Tensor<4>, layers: usize) -> Tensor<4> {
        let x = self.patch.forward(image) + pos;
        let [b, d, gh, gw] = x.dims();
        let patches = x.reshape([b, d, gh * gw]).swap_dims(1, 2);
        let cls = (self.cls.val() + self.cls_pos.val()).expand([b, 1, d]);
        let mut t = Tensor::cat(vec![cls, patches], 1);
        for block in self.blocks.iter().take(layers) {
            t = block.forward(t);
        }
        let n = gh * gw;
        t.narrow(1, 1, n).swap_dims(1, 2).reshape([b, d, gh, gw])
    }

    /// [`Vit::forward`] on plain maps.
    pub fn tokens(
        &self,
        image: &FeatureMap,
        pos: &FeatureMap,
        shape: VitShape,
        device: &Device,
    ) -> crate::Result<FeatureMap> {
        to_map(self.forward(
            to_tensor(image, device),
            to_tensor(pos, device),
            shape.layers,
        ))
    }
}
