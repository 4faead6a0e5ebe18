//! The reuse path of Park et al. (§3.1–3.3): per object, a template from the first frame's
//! stride-8 features and mask; every later frame, template matching of the current stride-8
//! features ⊕ the last computed score map gives dissimilarity features D_t, from which
//!
//! The matching also sees |s8_t − s8_last|, the change of the stride-8 features since the last
//! computed frame (stored per object, 0.8 MB at 480p): without it the first trained gate
//! predicted each sequence's mean IoU, nearly constant however far the last computed frame was
//! (measured on dev: P(reuse) 0.62–0.68 over all of rhino with frame 0 as the last computed one).
//!
//! * the **reuse gate** predicts P(reuse) (two convs, two max-pools, a sigmoid),
//! * the **Δ-generator** predicts the change of the score map (one strided conv, → stride 16),
//! * the **refine-translator** turns the stored decoder state (stride 16) ⊕ Δ into the state
//!   the skipped deep stages would have produced (dilated convs 1/2/3, a 5×5 conv, a residual
//!   block — Fig. 5a).
//!
//! Differences from the reference, on purpose: the gate has one logit and a sigmoid (the
//! reference's two-way softmax is the same function of the logit difference), a ReLU after
//! its first conv instead of a BatchNorm (batches of a few crops make batch statistics noise),
//! and global max ⊕ mean ⊕ on-object mean pooling before its last conv instead of adaptive max
//! pools to 7×7 and 3×3 (any frame size, on both engines; see `gate` for why); every branch is 1×1 → LeakyReLU → grouped 5×5 →
//! LeakyReLU.

use crate::model::decoder::Rrb;
use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::MaxPool2dConfig;
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu, softmax};

#[derive(Config, Debug)]
pub struct ReuseConfig {
    /// Channels of the backbone's stride-8 tap.
    #[config(default = 32)]
    pub feature_channels: usize,
    /// Channels of the template / matching features (the template is key × key).
    #[config(default = 32)]
    pub key_channels: usize,
    /// Channels of the decoder state at stride 16.
    #[config(default = 32)]
    pub state_channels: usize,
    #[config(default = 16)]
    pub gate_channels: usize,
    /// Channels of each dilated branch of the translator.
    #[config(default = 16)]
    pub translator_channels: usize,
    /// P(reuse) of the untrained gate (the paper follows AIG: gates on with 15 %).
    #[config(default = 0.15)]
    pub initial_reuse: f64,
}

/// Convolution with `same` padding (for odd kernels), stride, dilation and groups.
fn conv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    dilation: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    let p = dilation * (k / 2);
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_dilation([dilation, dilation])
        .with_groups(groups)
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .init(device)
}

/// 1×1 reduction then a grouped 5×5 (4 channels per group), LeakyReLU(0.2) after each.
#[derive(Module, Debug)]
pub struct Branch {
    pub reduce: Conv2d,
    pub spread: Conv2d,
}

impl Branch {
    fn new(cin: usize, k: usize, device: &Device) -> Branch {
        Branch {
            reduce: conv(cin, k, 1, 1, 1, 1, device),
            spread: conv(k, k, 5, 1, 1, (k / 4).max(1), device),
        }
    }
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = leaky_relu(self.reduce.forward(x), 0.2);
        leaky_relu(self.spread.forward(h), 0.2)
    }
}

/// All trainable parts of the reuse path.
#[derive(Module, Debug)]
pub struct ReuseNet {
    pub template_key: Branch,
    pub template_value: Branch,
    pub match_key: Branch,
    pub match_feat: Branch,
    /// Grouped 5×5 over (features ⊕ similarity), then 1×1 → D_t.
    pub blend_spread: Conv2d,
    pub blend_reduce: Conv2d,
    pub gate_conv: Conv2d,
    pub gate_out: Conv2d,
    pub delta: Conv2d,
    pub translate_d1: Conv2d,
    pub translate_d2: Conv2d,
    pub translate_d3: Conv2d,
    pub translate_fuse: Conv2d,
    pub translate_rrb: Rrb,
}

impl ReuseConfig {
    pub fn init(&self, device: &Device) -> ReuseNet {
        let (f, k, s, t) = (
            self.feature_channels,
            self.key_channels,
            self.state_channels,
            self.translator_channels,
        );
        // Reads the global max, the global mean and the on-object mean of each gate channel.
        let mut gate_out = conv(3 * self.gate_channels, 1, 1, 1, 1, 1, device);
        // Start with P(reuse) ≈ initial_reuse whatever the input: small weights, biased logit.
        // (Fresh leaf parameters from data: a `map`ped parameter would be a graph node.)
        let small = gate_out.weight.val().mul_scalar(0.1).into_data();
        gate_out.weight = Param::from_data(small, device);
        let p = self.initial_reuse.clamp(1e-3, 1.0 - 1e-3);
        gate_out.bias = Some(Param::from_data(
            TensorData::new(vec![(p / (1.0 - p)).ln() as f32], [1]),
            device,
        ));
        ReuseNet {
            template_key: Branch::new(f + 1, k, device),
            template_value: Branch::new(f + 1, k, device),
            match_key: Branch::new(2 * f + 1, k, device),
            match_feat: Branch::new(2 * f + 1, k, device),
            blend_spread: conv(2 * k, 2 * k, 5, 1, 1, (2 * k / 4).max(1), device),
            blend_reduce: conv(2 * k, k, 1, 1, 1, 1, device),
            gate_conv: conv(k, self.gate_channels, 3, 2, 1, 1, device),
            gate_out,
            delta: conv(k, 1, 3, 2, 1, 1, device),
            translate_d1: conv(s + 1, t, 3, 1, 1, 1, device),
            translate_d2: conv(s + 1, t, 3, 1, 2, 1, device),
            translate_d3: conv(s + 1, t, 3, 1, 3, 1, device),
            translate_fuse: conv(3 * t, s, 5, 1, 1, 1, device),
            translate_rrb: Rrb {
                inner: conv(s, s, 1, 1, 1, 1, device),
                conv_a: conv(s, s, 3, 1, 1, 1, device),
                conv_b: conv(s, s, 3, 1, 1, 1, device),
            },
        }
    }
}

/// What the matching gives for one frame: the gate's logit and Δ.
pub struct GateOutput {
    /// `[B]`: P(reuse) = sigmoid(logit).
    pub logit: Tensor<1>,
    /// `[B, 1, H16, W16]`: the change of the score map.
    pub delta: Tensor<4>,
}

impl ReuseNet {
    /// Key channels (the template is key × key).
    pub fn key_channels(&self) -> usize {
        self.blend_reduce.weight.val().dims()[0]
    }

    /// Value and key maps of the template branch on (s8 ⊕ mask at s8).
    pub fn template_maps(&self, s8: Tensor<4>, mask8: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let x = Tensor::cat(vec![s8, mask8], 1);
        (
            self.template_value.forward(x.clone()),
            self.template_key.forward(x),
        )
    }

    /// The object's template `[B, K, K]`: softmax over key channels of value·keyᵀ / √(H·W).
    pub fn template(&self, s8: Tensor<4>, mask8: Tensor<4>) -> Tensor<3> {
        let (value, key) = self.template_maps(s8, mask8);
        let [b, k, h, w] = value.dims();
        let value = value.reshape([b, k, h * w]);
        let key = key.reshape([b, k, h * w]);
        let logits = value.matmul(key.swap_dims(1, 2)) / ((h * w) as f64).sqrt();
        softmax(logits, 2)
    }

    /// D_t from the current s8 features, those of the last computed frame, its score (resized
    /// to s8) and the template.
    pub fn dissimilarity(
        &self,
        s8: Tensor<4>,
        last_s8: Tensor<4>,
        score8: Tensor<4>,
        template: Tensor<3>,
    ) -> Tensor<4> {
        let change = (s8.clone() - last_s8).abs();
        let x = Tensor::cat(vec![s8, score8, change], 1);
        let key = self.match_key.forward(x.clone());
        let [b, k, h, w] = key.dims();
        let sim = template
            .matmul(key.reshape([b, k, h * w]))
            .reshape([b, k, h, w]);
        let feat = self.match_feat.forward(x);
        let d = self.blend_spread.forward(Tensor::cat(vec![feat, sim], 1));
        relu(self.blend_reduce.forward(d))
    }

    /// The gate's logit and Δ of one frame.
    pub fn gate(
        &self,
        s8: Tensor<4>,
        last_s8: Tensor<4>,
        score8: Tensor<4>,
        template: Tensor<3>,
    ) -> GateOutput {
        let d = self.dissimilarity(s8, last_s8, score8.clone(), template);
        let delta = self.delta.forward(d.clone());
        let b = d.dims()[0];
        // Max-pool to stride 32, conv (→ stride 64), then three poolings: the global max, the
        // global mean, and the mean over where the object was (the last computed score,
        // clamped to [0, 1] and max-pooled the same way). Any frame of at least 32×32 pixels.
        // Why: a global max alone sees only the most changed spot (with a panning camera,
        // every frame), and whole-frame statistics confound object size with motion — a
        // large object moving changes many features yet keeps a high IoU; trained on them the
        // gate gave a cut to another video a higher P(reuse) than the same frame repeated.
        let pool4 = MaxPool2dConfig::new([4, 4]).init();
        let g = relu(self.gate_conv.forward(pool4.forward(d)));
        let where_ = MaxPool2dConfig::new([3, 3])
            .with_strides([2, 2])
            .with_padding(burn::nn::PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init()
            .forward(pool4.forward(score8.clamp(0.0, 1.0)));
        let area = where_.clone().sum_dim(3).sum_dim(2) + 1e-3;
        let on_object = (g.clone() * where_).sum_dim(3).sum_dim(2) / area;
        let g = Tensor::cat(
            vec![
                g.clone().max_dim(3).max_dim(2),
                g.mean_dim(3).mean_dim(2),
                on_object,
            ],
            1,
        );
        let logit = self.gate_out.forward(g).reshape([b]);
        GateOutput { logit, delta }
    }

    /// The decoder state the deep stages would give, from the stored state and Δ.
    pub fn translate(&self, state: Tensor<4>, delta: Tensor<4>) -> Tensor<4> {
        let z = Tensor::cat(vec![state, delta], 1);
        let branches = Tensor::cat(
            vec![
                self.translate_d1.forward(z.clone()),
                self.translate_d2.forward(z.clone()),
                self.translate_d3.forward(z),
            ],
            1,
        );
        self.translate_rrb
            .forward(self.translate_fuse.forward(branches))
    }
}
