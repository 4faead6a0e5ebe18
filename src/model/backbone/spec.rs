//! MobileNetV2 as a list of convolutions with batch norm folded in: the one description that
//! both engines (Burn and ONNX Runtime) build their networks from.

use crate::error::{Error, Result};
use crate::model::Weights;

/// torchvision's BatchNorm2d epsilon.
const BN_EPS: f64 = 1e-5;

/// One convolution with its batch norm folded in, optionally followed by ReLU6.
#[derive(Clone, Debug)]
pub struct ConvLayer {
    /// `[out, in / groups, k, k]`, row-major.
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
    pub relu6: bool,
}

impl ConvLayer {
    /// torchvision pads by (k − 1) / 2 on every side.
    pub fn padding(&self) -> usize {
        (self.kernel - 1) / 2
    }

    /// Multiply-accumulates for an output of `oh`×`ow`.
    pub fn macs(&self, oh: usize, ow: usize) -> u64 {
        (self.cout * (self.cin / self.groups) * self.kernel * self.kernel * oh * ow) as u64
    }
}

/// `features.<index>`: a stem/head convolution or an inverted-residual block.
#[derive(Clone, Debug)]
pub struct Block {
    pub index: usize,
    pub convs: Vec<ConvLayer>,
    /// Adds the block input to its output (stride 1, same channels).
    pub residual: bool,
}

/// The whole network: `features.0..=18` and the ImageNet classifier.
#[derive(Clone, Debug)]
pub struct BackboneSpec {
    pub blocks: Vec<Block>,
    /// `[1000, 1280]` weight and `[1000]` bias.
    pub classifier: Option<(Vec<f32>, Vec<f32>)>,
}

/// torchvision's inverted-residual settings (expansion t, channels c, repeats n, stride s).
const SETTINGS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// The shape of one convolution, without weights.
#[derive(Clone, Copy, Debug)]
pub struct ConvShape {
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
    pub relu6: bool,
}

const fn conv(
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    relu6: bool,
) -> ConvShape {
    ConvShape {
        cin,
        cout,
        kernel,
        stride,
        groups,
        relu6,
    }
}

/// The shape of one block: its convolutions and whether it is residual.
#[derive(Clone, Debug)]
pub struct BlockShape {
    pub convs: Vec<ConvShape>,
    pub residual: bool,
}

/// The architecture without weights, `features.0..=18`.
pub fn architecture() -> Vec<BlockShape> {
    let mut blocks = vec![BlockShape {
        convs: vec![conv(3, 32, 3, 2, 1, true)],
        residual: false,
    }];
    let mut cin = 32;
    for (t, c, n, s) in SETTINGS {
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let hidden = cin * t;
            let mut convs = Vec::new();
            if t != 1 {
                convs.push(conv(cin, hidden, 1, 1, 1, true));
            }
            convs.push(conv(hidden, hidden, 3, stride, hidden, true));
            convs.push(conv(hidden, c, 1, 1, 1, false));
            blocks.push(BlockShape {
                convs,
                residual: stride == 1 && cin == c,
            });
            cin = c;
        }
    }
    blocks.push(BlockShape {
        convs: vec![conv(320, 1280, 1, 1, 1, true)],
        residual: false,
    });
    blocks
}

/// Folds `<conv>.weight` and the batch norm `<bn>.{weight,bias,running_mean,running_var}`.
fn fold(w: &Weights, conv: &str, bn: &str, shape: ConvShape) -> Result<ConvLayer> {
    let ConvShape {
        cin,
        cout,
        kernel,
        stride,
        groups,
        relu6,
    } = shape;
    let weight = w.get(&format!("{conv}.weight"))?;
    let want = vec![cout, cin / groups, kernel, kernel];
    if weight.shape != want {
        return Err(Error::Format {
            path: w.origin.clone().into(),
            reason: format!(
                "{conv}.weight has shape {:?}, MobileNetV2 needs {want:?}",
                weight.shape
            ),
        });
    }
    let get = |name: &str| -> Result<&[f32]> {
        let t = w.get(&format!("{bn}.{name}"))?;
        if t.data.len() != cout {
            return Err(Error::Format {
                path: w.origin.clone().into(),
                reason: format!("{bn}.{name} has {} values, expected {cout}", t.data.len()),
            });
        }
        Ok(&t.data)
    };
    let (gamma, beta, mean, var) = (
        get("weight")?,
        get("bias")?,
        get("running_mean")?,
        get("running_var")?,
    );
    let per_out = weight.data.len() / cout;
    let mut folded = weight.data.clone();
    let mut bias = vec![0f32; cout];
    for o in 0..cout {
        let scale = gamma[o] as f64 / (var[o] as f64 + BN_EPS).sqrt();
        for v in &mut folded[o * per_out..(o + 1) * per_out] {
            *v = (*v as f64 * scale) as f32;
        }
        bias[o] = (beta[o] as f64 - mean[o] as f64 * scale) as f32;
    }
    Ok(ConvLayer {
        weight: folded,
        bias,
        cin,
        cout,
        kernel,
        stride,
        groups,
        relu6,
    })
}

impl BackboneSpec {
    /// Builds the folded network from torchvision's state-dict names.
    pub fn from_weights(w: &Weights) -> Result<BackboneSpec> {
        let arch = architecture();
        let last = arch.len() - 1;
        let mut blocks = Vec::with_capacity(arch.len());
        for (index, BlockShape { convs, residual }) in arch.into_iter().enumerate() {
            let layers = if index == 0 || index == last {
                vec![fold(
                    w,
                    &format!("features.{index}.0"),
                    &format!("features.{index}.1"),
                    convs[0],
                )?]
            } else {
                // Inverted residual: ConvBNReLU modules `conv.i.0/1`, then a plain conv + BN.
                let n = convs.len();
                let mut layers = Vec::with_capacity(n);
                for (i, shape) in convs.into_iter().enumerate() {
                    let p = format!("features.{index}.conv");
                    layers.push(if i + 1 < n {
                        fold(w, &format!("{p}.{i}.0"), &format!("{p}.{i}.1"), shape)?
                    } else {
                        fold(w, &format!("{p}.{i}"), &format!("{p}.{}", i + 1), shape)?
                    });
                }
                layers
            };
            blocks.push(Block {
                index,
                convs: layers,
                residual,
            });
        }
        let classifier = match (
            w.tensors.get("classifier.1.weight"),
            w.tensors.get("classifier.1.bias"),
        ) {
            (Some(cw), Some(cb)) if cw.shape == [1000, 1280] && cb.shape == [1000] => {
                Some((cw.data.clone(), cb.data.clone()))
            }
            _ => None,
        };
        Ok(BackboneSpec { blocks, classifier })
    }

    /// The default weights: torchvision's ImageNet MobileNetV2, embedded in the binary.
    pub fn embedded() -> Result<BackboneSpec> {
        Self::from_weights(&crate::model::weights::embedded_backbone()?)
    }

    /// Output size of one conv applied to `h`×`w`.
    pub fn conv_out(layer: &ConvLayer, h: usize, w: usize) -> (usize, usize) {
        let p = layer.padding();
        (
            (h + 2 * p - layer.kernel) / layer.stride + 1,
            (w + 2 * p - layer.kernel) / layer.stride + 1,
        )
    }

    /// Multiply-accumulates of blocks `range` for an input of `h`×`w` (at the first block's
    /// input resolution), and the output size.
    pub fn macs(&self, range: std::ops::Range<usize>, h: usize, w: usize) -> (u64, usize, usize) {
        let (mut h, mut w, mut macs) = (h, w, 0u64);
        for block in &self.blocks[range] {
            for layer in &block.convs {
                let (oh, ow) = Self::conv_out(layer, h, w);
                macs += layer.macs(oh, ow);
                h = oh;
                w = ow;
            }
        }
        (macs, h, w)
    }
}
