//! The Burn engine: the Burn modules on the `flex` CPU backend.

use super::{BackboneEngine, EngineKind};
use crate::error::Result;
use crate::model::FeatureMap;
use crate::model::backbone::{BackboneSpec, HighFeatures, LowFeatures, MobileNetV2};
use ::burn::prelude::Device;

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
