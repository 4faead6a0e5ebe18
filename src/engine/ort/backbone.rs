//! MobileNetV2 as two ONNX Runtime sessions, split at stride 8.

use super::graph::{GraphBuilder, run};
use crate::engine::{BackboneEngine, EngineKind};
use crate::error::Result;
use crate::model::FeatureMap;
use crate::model::backbone::{
    BackboneSpec, HighFeatures, LOW_BLOCKS, LowFeatures, TAP_S4, TAP_S8, TAP_S16, TAP_S32,
};
use ::ort::operator::Attribute;
use ::ort::session::Session;

/// The output name of `features.<i>`.
fn feature_name(i: usize) -> String {
    format!("features.{i}")
}

/// Adds blocks `range` of the spec, reading `input`; returns the name of the last output.
/// Blocks listed in `outputs` get their `features.<i>` name (and become graph outputs).
fn add_blocks(
    g: &mut GraphBuilder,
    spec: &BackboneSpec,
    input: &str,
    range: std::ops::Range<usize>,
    outputs: &[usize],
) -> Result<String> {
    let mut x = input.to_string();
    for block in &spec.blocks[range] {
        let named = outputs
            .contains(&block.index)
            .then(|| feature_name(block.index));
        let n = block.convs.len();
        let mut y = x.clone();
        for (i, layer) in block.convs.iter().enumerate() {
            let last = i + 1 == n;
            let out = if last && !block.residual {
                named.as_deref()
            } else {
                None
            };
            y = g.conv(&y, layer, out)?;
        }
        if block.residual {
            y = g.node("Add", &[&x, &y], vec![], named.as_deref())?;
        }
        if named.is_some() {
            let channels = block.convs[n - 1].cout;
            g.feature_output(&y, channels);
        }
        x = y;
    }
    Ok(x)
}

/// Builds a session running blocks `range` from an input named `input` with `in_channels`.
pub fn blocks_session(
    spec: &BackboneSpec,
    input: &str,
    in_channels: usize,
    range: std::ops::Range<usize>,
    outputs: &[usize],
    threads: usize,
) -> Result<Session> {
    let mut g = GraphBuilder::new()?;
    g.feature_input(input, in_channels);
    add_blocks(&mut g, spec, input, range, outputs)?;
    g.session(threads)
}

/// A session producing every `features.<i>` output and, when the spec has the classifier,
/// `logits` — for checking the port against torchvision.
pub fn debug_session(spec: &BackboneSpec, threads: usize) -> Result<Session> {
    let mut g = GraphBuilder::new()?;
    g.feature_input("image", 3);
    let all: Vec<usize> = (0..spec.blocks.len()).collect();
    let last = add_blocks(&mut g, spec, "image", 0..spec.blocks.len(), &all)?;
    if let Some((w, b)) = &spec.classifier {
        let pooled = g.node("GlobalAveragePool", &[&last], vec![], None)?;
        let flat = g.node("Flatten", &[&pooled], vec![], None)?;
        let wn = g.constant("fc_w", &[1000, 1280], w)?;
        let bn = g.constant("fc_b", &[1000], b)?;
        let attrs = vec![Attribute::new("transB", 1i64).map_err(super::err)?];
        g.node("Gemm", &[&flat, &wn, &bn], attrs, Some("logits"))?;
        g.output("logits", &[1, 1000]);
    }
    g.session(threads)
}

/// The backbone on ONNX Runtime: the low session (image → s4, s8) and the high one
/// (s8 → s16, s32).
pub struct OrtBackbone {
    low: Session,
    high: Session,
}

impl OrtBackbone {
    pub fn new(spec: &BackboneSpec, threads: usize) -> Result<OrtBackbone> {
        Ok(OrtBackbone {
            low: blocks_session(spec, "image", 3, 0..LOW_BLOCKS, &[TAP_S4, TAP_S8], threads)?,
            high: blocks_session(
                spec,
                "s8",
                spec.blocks[TAP_S8].convs.last().map_or(32, |c| c.cout),
                LOW_BLOCKS..TAP_S32 + 1,
                &[TAP_S16, TAP_S32],
                threads,
            )?,
        })
    }
}

impl BackboneEngine for OrtBackbone {
    fn kind(&self) -> EngineKind {
        EngineKind::Ort
    }

    fn low(&mut self, image: &FeatureMap) -> Result<LowFeatures> {
        let names = [feature_name(TAP_S4), feature_name(TAP_S8)];
        let mut out = run(&mut self.low, &[("image", image)], &[&names[0], &names[1]])?;
        let s8 = out.pop().expect("two outputs");
        Ok(LowFeatures {
            s4: out.pop().expect("two outputs"),
            s8,
        })
    }

    fn high(&mut self, s8: &FeatureMap) -> Result<HighFeatures> {
        let names = [feature_name(TAP_S16), feature_name(TAP_S32)];
        let mut out = run(&mut self.high, &[("s8", s8)], &[&names[0], &names[1]])?;
        let s32 = out.pop().expect("two outputs");
        Ok(HighFeatures {
            s16: out.pop().expect("two outputs"),
            s32,
        })
    }
}
