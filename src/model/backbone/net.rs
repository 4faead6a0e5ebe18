//! MobileNetV2 as a Burn module (batch norm folded, so every conv has a bias). Runs on any
//! Burn device; `flex` (CPU) by default.

use super::spec::{BackboneSpec, architecture};
use super::{HighFeatures, LOW_BLOCKS, LowFeatures, TAP_S4, TAP_S8, TAP_S16, TAP_S32};
use crate::model::FeatureMap;
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu6;

/// A convolution, optionally followed by ReLU6.
#[derive(Module, Debug)]
pub struct ConvAct {
    conv: Conv2d,
    relu6: bool,
}

impl ConvAct {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.conv.forward(x);
        if self.relu6 { relu6(y) } else { y }
    }
}

/// `features.<i>`: one or more convolutions with an optional residual connection.
#[derive(Module, Debug)]
pub struct FeatureBlock {
    convs: Vec<ConvAct>,
    residual: bool,
}

impl FeatureBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = x.clone();
        for c in &self.convs {
            y = c.forward(y);
        }
        if self.residual { y + x } else { y }
    }
}

/// The network: `features.0..=18` and, optionally, the ImageNet classifier.
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    blocks: Vec<FeatureBlock>,
    classifier: Option<Linear>,
}

#[derive(Config, Debug)]
pub struct MobileNetV2Config {
    /// Build the 1000-class ImageNet classifier (only needed to check the weights).
    #[config(default = false)]
    pub classifier: bool,
}

impl MobileNetV2Config {
    /// The architecture with freshly initialised weights.
    pub fn init(&self, device: &Device) -> MobileNetV2 {
        let blocks = architecture()
            .into_iter()
            .map(|b| FeatureBlock {
                convs: b
                    .convs
                    .into_iter()
                    .map(|c| {
                        let (k, p) = (c.kernel, (c.kernel - 1) / 2);
                        ConvAct {
                            conv: Conv2dConfig::new([c.cin, c.cout], [k, k])
                                .with_stride([c.stride, c.stride])
                                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                                .with_groups(c.groups)
                                .with_bias(true)
                                .init(device),
                            relu6: c.relu6,
                        }
                    })
                    .collect(),
                residual: b.residual,
            })
            .collect();
        let classifier = self
            .classifier
            .then(|| LinearConfig::new(1280, 1000).init(device));
        MobileNetV2 { blocks, classifier }
    }
}

fn param<const D: usize>(data: &[f32], shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::from_data(
        TensorData::new(data.to_vec(), shape),
        device,
    ))
}

/// A feature map → a batch-1 tensor.
pub fn to_tensor(map: &FeatureMap, device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(map.data.clone(), map.shape()), device)
}

/// A batch-1 tensor → a feature map.
pub fn to_map(t: Tensor<4>) -> crate::Result<FeatureMap> {
    let [_, c, h, w] = t.dims();
    let data = t
        .into_data()
        .try_into_vec::<f32>()
        .map_err(|e| crate::Error::Invalid(format!("cannot read a Burn tensor: {e:?}")))?;
    Ok(FeatureMap::new(c, h, w, data))
}

impl MobileNetV2 {
    /// Builds the network with the folded weights of `spec`, frozen.
    pub fn from_spec(spec: &BackboneSpec, device: &Device) -> MobileNetV2 {
        let mut net = MobileNetV2Config::new()
            .with_classifier(spec.classifier.is_some())
            .init(device);
        for (block, sb) in net.blocks.iter_mut().zip(&spec.blocks) {
            for (c, layer) in block.convs.iter_mut().zip(&sb.convs) {
                let k = layer.kernel;
                c.conv.weight = param(
                    &layer.weight,
                    [layer.cout, layer.cin / layer.groups, k, k],
                    device,
                );
                c.conv.bias = Some(param(&layer.bias, [layer.cout], device));
            }
        }
        if let (Some(lin), Some((w, b))) = (net.classifier.as_mut(), &spec.classifier) {
            // Burn's Linear weight is [in, out]; torch's is [out, in].
            let wt = Tensor::<2>::from_data(TensorData::new(w.clone(), [1000, 1280]), device);
            lin.weight = Param::from_tensor(wt.transpose());
            lin.bias = Some(param(b, [1000], device));
        }
        net.no_grad()
    }

    /// Runs blocks `range` on `x`, returning the outputs of the blocks listed in `taps`.
    pub fn forward_blocks(
        &self,
        mut x: Tensor<4>,
        range: std::ops::Range<usize>,
        taps: &[usize],
    ) -> Vec<Tensor<4>> {
        let mut out = Vec::with_capacity(taps.len());
        for i in range {
            x = self.blocks[i].forward(x);
            if taps.contains(&i) {
                out.push(x.clone());
            }
        }
        out
    }

    /// Blocks 0–6: the stride-4 and stride-8 taps of a normalised image.
    pub fn forward_low(&self, image: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let mut t = self.forward_blocks(image, 0..LOW_BLOCKS, &[TAP_S4, TAP_S8]);
        let s8 = t.pop().expect("tap");
        (t.pop().expect("tap"), s8)
    }

    /// Blocks 7–17: the stride-16 and stride-32 taps from stride 8.
    pub fn forward_high(&self, s8: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let mut t = self.forward_blocks(s8, LOW_BLOCKS..TAP_S32 + 1, &[TAP_S16, TAP_S32]);
        let s32 = t.pop().expect("tap");
        (t.pop().expect("tap"), s32)
    }

    /// Every `features.<i>` output, for checking the port.
    pub fn forward_all(&self, image: Tensor<4>) -> Vec<Tensor<4>> {
        let all: Vec<usize> = (0..self.blocks.len()).collect();
        self.forward_blocks(image, 0..self.blocks.len(), &all)
    }

    /// ImageNet logits from `features.18` (global average pool + linear).
    pub fn classify(&self, f18: Tensor<4>) -> Option<Tensor<2>> {
        let lin = self.classifier.as_ref()?;
        let [_, c, _, _] = f18.dims();
        let pooled = f18.mean_dim(3).mean_dim(2).reshape([1, c]);
        Some(lin.forward(pooled))
    }

    /// Low part on plain feature maps.
    pub fn low(&self, image: &FeatureMap, device: &Device) -> crate::Result<LowFeatures> {
        let (s4, s8) = self.forward_low(to_tensor(image, device));
        Ok(LowFeatures {
            s4: to_map(s4)?,
            s8: to_map(s8)?,
        })
    }

    /// High part on plain feature maps.
    pub fn high(&self, s8: &FeatureMap, device: &Device) -> crate::Result<HighFeatures> {
        let (s16, s32) = self.forward_high(to_tensor(s8, device));
        Ok(HighFeatures {
            s16: to_map(s16)?,
            s32: to_map(s32)?,
        })
    }
}
