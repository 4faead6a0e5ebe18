//! MobileNetV2 as two ONNX Runtime sessions, split at stride 8.

use super::graph::{GraphBuilder, run};
use crate::engine::{BackboneEngine, EngineKind};
use crate::error::Result;
use crate::model::FeatureMap;
use crate::model::backbone::{
    BackboneSpec, Block, HighFeatures, LOW_BLOCKS, LowFeatures, TAP_S4, TAP_S8, TAP_S16, TAP_S32,
};
use crate::model::int8::{Int8Plan, Ranges};
use ::ort::operator::Attribute;
use ::ort::session::Session;

/// The output name of `features.<i>`.
fn feature_name(i: usize) -> String {
    format!("features.{i}")
}

/// How a graph's blocks are built.
#[derive(Clone, Copy)]
pub enum Build<'a> {
    F32,
    /// f32, and every value int8 would quantise is also a graph output named by its key.
    Calibrate,
    /// Int8 (QDQ) as planned.
    Int8(&'a Int8Plan),
}

/// The range key of a block's output.
pub fn output_key(block: &Block) -> String {
    if block.residual {
        format!("{}.add", block.index)
    } else {
        format!("{}.{}", block.index, block.convs.len() - 1)
    }
}

/// Adds blocks `range` of the spec, reading `input`; returns the name of the last output.
/// Blocks listed in `outputs` get their `features.<i>` name (and become graph outputs).
fn add_blocks(
    g: &mut GraphBuilder,
    spec: &BackboneSpec,
    input: &str,
    range: std::ops::Range<usize>,
    outputs: &[usize],
    build: Build,
) -> Result<String> {
    let mut x = input.to_string();
    // The scale `x` is quantised with (None: f32).
    let mut x_scale: Option<f32> = None;
    for block in &spec.blocks[range] {
        // Blocks before `from` stay f32; the first int8 block quantises its input.
        let build = match build {
            Build::Int8(plan) if block.index < plan.from => Build::F32,
            other => other,
        };
        if let Build::Int8(plan) = build
            && x_scale.is_none()
        {
            let key = match block.index {
                0 => "image".to_string(),
                b => output_key(&spec.blocks[b - 1]),
            };
            let q = plan.ranges.q(&key)?;
            x = g.qdq(&x, q, None)?;
            x_scale = Some(q.0);
        }
        let named = outputs
            .contains(&block.index)
            .then(|| feature_name(block.index));
        let n = block.convs.len();
        let (mut y, mut y_scale) = (x.clone(), x_scale);
        for (i, layer) in block.convs.iter().enumerate() {
            let last = i + 1 == n;
            let out = if last && !block.residual {
                named.as_deref()
            } else {
                None
            };
            let key = format!("{}.{i}", block.index);
            if let Build::Int8(plan) = build {
                let q = plan.ranges.q(&key)?;
                // An int8 block's input was quantised just above.
                let scale = y_scale.ok_or_else(|| {
                    crate::Error::Invalid(format!("int8 block {} reads an f32 value", block.index))
                })?;
                y = g.conv_int8(&y, scale, layer, q, out)?;
                y_scale = Some(q.0);
            } else {
                y = g.conv(&y, layer, out)?;
                if let Build::Calibrate = build {
                    g.calibration_output(&y, &key, layer.cout);
                }
            }
        }
        if block.residual {
            let key = format!("{}.add", block.index);
            if let Build::Int8(plan) = build {
                let sum = g.node("Add", &[&x, &y], vec![], None)?;
                let q = plan.ranges.q(&key)?;
                y = g.qdq(&sum, q, named.as_deref())?;
                y_scale = Some(q.0);
            } else {
                y = g.node("Add", &[&x, &y], vec![], named.as_deref())?;
                if let Build::Calibrate = build {
                    g.calibration_output(&y, &key, block.convs[n - 1].cout);
                }
            }
        }
        if named.is_some() {
            let channels = block.convs[n - 1].cout;
            g.feature_output(&y, channels);
        }
        x = y;
        x_scale = y_scale;
    }
    Ok(x)
}

/// Builds a session running blocks `range` from an input named `input` with `in_channels`.
pub fn blocks_session(
    spec: &BackboneSpec,
    (input, in_channels): (&str, usize),
    range: std::ops::Range<usize>,
    outputs: &[usize],
    build: Build,
    threads: usize,
) -> Result<Session> {
    let mut g = GraphBuilder::new()?;
    g.feature_input(input, in_channels);
    add_blocks(&mut g, spec, input, range, outputs, build)?;
    g.session(threads)
}

/// Measures the range of every value int8 quantises, over `images` (normalised frames).
pub fn calibrate(
    spec: &BackboneSpec,
    images: impl Iterator<Item = Result<FeatureMap>>,
    threads: usize,
) -> Result<Ranges> {
    let mut g = GraphBuilder::new()?;
    g.feature_input("image", 3);
    add_blocks(&mut g, spec, "image", 0..TAP_S32 + 1, &[], Build::Calibrate)?;
    let keys = g.calibration_keys();
    let names: Vec<&str> = keys.iter().map(|(_, v)| v.as_str()).collect();
    let mut session = g.session(threads)?;
    let mut ranges = Ranges::default();
    for image in images {
        let image = image?;
        ranges.observe("image", &image.data);
        let out = run(&mut session, &[("image", &image)], &names)?;
        for ((key, _), map) in keys.iter().zip(&out) {
            ranges.observe(key, &map.data);
        }
    }
    Ok(ranges)
}

/// A session producing every `features.<i>` output and, when the spec has the classifier,
/// `logits` — for checking the port against torchvision.
pub fn debug_session(spec: &BackboneSpec, threads: usize) -> Result<Session> {
    let mut g = GraphBuilder::new()?;
    g.feature_input("image", 3);
    let all: Vec<usize> = (0..spec.blocks.len()).collect();
    let last = add_blocks(
        &mut g,
        spec,
        "image",
        0..spec.blocks.len(),
        &all,
        Build::F32,
    )?;
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
    /// The backbone in f32, or int8 as planned.
    pub fn new(
        spec: &BackboneSpec,
        int8: Option<&Int8Plan>,
        threads: usize,
    ) -> Result<OrtBackbone> {
        let build = int8.map_or(Build::F32, Build::Int8);
        let s8_channels = spec.blocks[TAP_S8].convs.last().map_or(32, |c| c.cout);
        Ok(OrtBackbone {
            low: blocks_session(
                spec,
                ("image", 3),
                0..LOW_BLOCKS,
                &[TAP_S4, TAP_S8],
                build,
                threads,
            )?,
            high: blocks_session(
                spec,
                ("s8", s8_channels),
                LOW_BLOCKS..TAP_S32 + 1,
                &[TAP_S16, TAP_S32],
                build,
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
