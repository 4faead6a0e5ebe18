//! The Burn engine: the Burn modules on the `flex` CPU backend.

use super::{BackboneEngine, DecoderEngine, EngineKind, ReuseEngine};
use crate::error::Result;
use crate::model::FeatureMap;
use crate::model::backbone::net::{to_map, to_tensor};
use crate::model::backbone::{BackboneSpec, HighFeatures, LowFeatures, MobileNetV2};
use crate::model::decoder::Decoder;
use crate::model::reuse::ReuseNet;
use ::burn::prelude::Device;
use ::burn::prelude::{Tensor, TensorData};

/// The default Burn device: the pure-Rust CPU backend. Its threads come from rayon's global
/// pool (`RAYON_NUM_THREADS`).
pub fn device() -> Device {
    Device::flex()
}

/// MobileNetV2 on Burn.
pub struct BurnBackbone {
    net: MobileNetV2,
    device: Device,
}

impl BurnBackbone {
    pub fn new(spec: &BackboneSpec) -> BurnBackbone {
        let device = device();
        BurnBackbone {
            net: MobileNetV2::from_spec(spec, &device),
            device,
        }
    }

    pub fn net(&self) -> &MobileNetV2 {
        &self.net
    }
}

impl BackboneEngine for BurnBackbone {
    fn kind(&self) -> EngineKind {
        EngineKind::Burn
    }
    fn low(&mut self, image: &FeatureMap) -> Result<LowFeatures> {
        self.net.low(image, &self.device)
    }
    fn high(&mut self, s8: &FeatureMap) -> Result<HighFeatures> {
        self.net.high(s8, &self.device)
    }
}

/// The refinement decoder on Burn.
pub struct BurnDecoder {
    dec: Decoder,
    device: Device,
}

impl BurnDecoder {
    pub fn new(dec: Decoder) -> BurnDecoder {
        BurnDecoder {
            dec,
            device: device(),
        }
    }
}

impl DecoderEngine for BurnDecoder {
    fn deep(
        &mut self,
        s32: &FeatureMap,
        s16: &FeatureMap,
        score: &FeatureMap,
    ) -> Result<FeatureMap> {
        let d = &self.device;
        to_map(
            self.dec
                .forward_deep(to_tensor(s32, d), to_tensor(s16, d), to_tensor(score, d)),
        )
    }
    fn shallow(
        &mut self,
        state: &FeatureMap,
        s8: &FeatureMap,
        s4: &FeatureMap,
        score: &FeatureMap,
    ) -> Result<FeatureMap> {
        let d = &self.device;
        to_map(self.dec.forward_shallow(
            to_tensor(state, d),
            to_tensor(s8, d),
            to_tensor(s4, d),
            to_tensor(score, d),
        ))
    }
}

/// The reuse path on Burn.
pub struct BurnReuse {
    net: ReuseNet,
    device: Device,
}

impl BurnReuse {
    pub fn new(net: ReuseNet) -> BurnReuse {
        BurnReuse {
            net,
            device: device(),
        }
    }
}

fn read(t: Tensor<1>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| crate::Error::Invalid(format!("cannot read a Burn tensor: {e:?}")))
}

impl ReuseEngine for BurnReuse {
    fn template(&mut self, s8: &FeatureMap, mask8: &FeatureMap) -> Result<Vec<f32>> {
        let d = &self.device;
        let t = self.net.template(to_tensor(s8, d), to_tensor(mask8, d));
        let [_, k, _] = t.dims();
        read(t.reshape([k * k]))
    }

    fn gate(
        &mut self,
        s8: &FeatureMap,
        last_s8: &FeatureMap,
        score8: &FeatureMap,
        template: &[f32],
    ) -> Result<(f32, FeatureMap)> {
        let d = &self.device;
        let k = self.net.key_channels();
        let t = Tensor::from_data(TensorData::new(template.to_vec(), [1, k, k]), d);
        let out = self.net.gate(
            to_tensor(s8, d),
            to_tensor(last_s8, d),
            to_tensor(score8, d),
            t,
        );
        let logit = read(out.logit)?[0];
        Ok((logit, to_map(out.delta)?))
    }

    fn translate(&mut self, state: &FeatureMap, delta: &FeatureMap) -> Result<FeatureMap> {
        let d = &self.device;
        to_map(self.net.translate(to_tensor(state, d), to_tensor(delta, d)))
    }
}

/// DINOv2 ViT-S/14 on Burn, with the position embeddings of each grid computed once.
pub struct BurnVit {
    net: crate::model::vit::net::Vit,
    pos: std::collections::HashMap<(usize, usize), FeatureMap>,
    weights: std::sync::Arc<crate::model::vit::VitWeights>,
    device: Device,
}

impl BurnVit {
    pub fn new(weights: std::sync::Arc<crate::model::vit::VitWeights>) -> BurnVit {
        let device = device();
        BurnVit {
            net: crate::model::vit::net::Vit::from_weights(&weights, &device),
            pos: std::collections::HashMap::new(),
            weights,
            device,
        }
    }
}

impl super::VitEngine for BurnVit {
    fn tokens(
        &mut self,
        image: &FeatureMap,
        shape: crate::model::vit::VitShape,
    ) -> Result<FeatureMap> {
        let grid = shape.grid(self.weights.config.patch);
        let pos = self
            .pos
            .entry(grid)
            .or_insert_with(|| crate::model::vit::pos::patch_positions(&self.weights, grid));
        self.net.tokens(image, pos, shape, &self.device)
    }
}
