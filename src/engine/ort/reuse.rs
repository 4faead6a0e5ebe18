//! The reuse path as ONNX Runtime sessions, built from the Burn module's weights: the
//! template's value/key maps (the K×K product is done in Rust, once per object), the
//! matching with gate and Δ, and the refine-translator.

use super::decoder::rrb;
use super::err;
use super::graph::{GraphBuilder, run};
use crate::error::Result;
use crate::model::FeatureMap;
use crate::model::reuse::{Branch, ReuseNet};
use ::ort::operator::Attribute;
use ::ort::session::Session;
use burn::nn::conv::Conv2d;

fn read(t: burn::prelude::Tensor<1>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| crate::Error::Invalid(format!("reuse weight: {e:?}")))
}

/// A Burn convolution as an ONNX Conv node (stride, dilation, groups and padding kept).
fn conv(g: &mut GraphBuilder, x: &str, c: &Conv2d, out: Option<&str>) -> Result<String> {
    let [cout, cin_g, k, _] = c.weight.val().dims();
    let w = g.constant(
        "w",
        &[cout, cin_g, k, k],
        &read(c.weight.val().reshape([cout * cin_g * k * k]))?,
    )?;
    let bias = match &c.bias {
        Some(b) => read(b.val())?,
        None => vec![0.0; cout],
    };
    let b = g.constant("b", &[cout], &bias)?;
    let (s, d) = (c.stride[0] as i64, c.dilation[0] as i64);
    let p = d * (k as i64 / 2);
    let attrs = vec![
        Attribute::new("kernel_shape", vec![k as i64, k as i64]).map_err(err)?,
        Attribute::new("pads", vec![p, p, p, p]).map_err(err)?,
        Attribute::new("strides", vec![s, s]).map_err(err)?,
        Attribute::new("dilations", vec![d, d]).map_err(err)?,
        Attribute::new("group", c.groups as i64).map_err(err)?,
    ];
    g.node("Conv", &[x, &w, &b], attrs, out)
}

fn leaky(g: &mut GraphBuilder, x: &str) -> Result<String> {
    g.node(
        "LeakyRelu",
        &[x],
        vec![Attribute::new("alpha", 0.2f32).map_err(err)?],
        None,
    )
}

fn branch(g: &mut GraphBuilder, b: &Branch, x: &str, out: Option<&str>) -> Result<String> {
    let h = conv(g, x, &b.reduce, None)?;
    let h = leaky(g, &h)?;
    let h = conv(g, &h, &b.spread, None)?;
    g.node(
        "LeakyRelu",
        &[&h],
        vec![Attribute::new("alpha", 0.2f32).map_err(err)?],
        out,
    )
}

fn concat(g: &mut GraphBuilder, xs: &[&str]) -> Result<String> {
    g.node(
        "Concat",
        xs,
        vec![Attribute::new("axis", 1i64).map_err(err)?],
        None,
    )
}

/// The reuse path on ONNX Runtime.
pub struct OrtReuse {
    template: Session,
    gate: Session,
    translate: Session,
    keys: usize,
}

impl OrtReuse {
    pub fn new(net: &ReuseNet, feature_channels: usize, threads: usize) -> Result<OrtReuse> {
        let k = net.key_channels();
        let state_channels = net.translate_fuse.weight.val().dims()[0];

        let mut g = GraphBuilder::new()?;
        g.feature_input("s8", feature_channels);
        g.feature_input("mask8", 1);
        let x = concat(&mut g, &["s8", "mask8"])?;
        branch(&mut g, &net.template_value, &x, Some("value"))?;
        branch(&mut g, &net.template_key, &x, Some("key"))?;
        g.feature_output("value", k);
        g.feature_output("key", k);
        let template = g.session(threads)?;

        let mut g = GraphBuilder::new()?;
        g.feature_input("s8", feature_channels);
        g.feature_input("last_s8", feature_channels);
        g.feature_input("score8", 1);
        // The template arrives as [1, K·K, 1, 1] and becomes the weight of a 1×1 conv: T·key.
        g.feature_input("template", k * k);
        let diff = g.node("Sub", &["s8", "last_s8"], vec![], None)?;
        let change = g.node("Abs", &[&diff], vec![], None)?;
        let x = concat(&mut g, &["s8", "score8", &change])?;
        let key = branch(&mut g, &net.match_key, &x, None)?;
        let shape = g.constant_i64("shape", &[k as i64, k as i64, 1, 1])?;
        let t = g.node("Reshape", &["template", &shape], vec![], None)?;
        let sim = g.node("Conv", &[&key, &t], vec![], None)?;
        let feat = branch(&mut g, &net.match_feat, &x, None)?;
        let both = concat(&mut g, &[&feat, &sim])?;
        let d = conv(&mut g, &both, &net.blend_spread, None)?;
        let d = conv(&mut g, &d, &net.blend_reduce, None)?;
        let d = g.node("Relu", &[&d], vec![], None)?;
        conv(&mut g, &d, &net.delta, Some("delta"))?;
        let pooled = g.node(
            "MaxPool",
            &[&d],
            vec![
                Attribute::new("kernel_shape", vec![4i64, 4]).map_err(err)?,
                Attribute::new("strides", vec![4i64, 4]).map_err(err)?,
            ],
            None,
        )?;
        let h = conv(&mut g, &pooled, &net.gate_conv, None)?;
        let h = g.node("Relu", &[&h], vec![], None)?;
        let hmax = g.node("GlobalMaxPool", &[&h], vec![], None)?;
        let hmean = g.node("GlobalAveragePool", &[&h], vec![], None)?;
        // Mean over where the object was: the last score in [0, 1], pooled as the gate map.
        let zero = g.constant("zero", &[], &[0.0])?;
        let one = g.constant("one", &[], &[1.0])?;
        let w = g.node("Clip", &["score8", &zero, &one], vec![], None)?;
        let w = g.node(
            "MaxPool",
            &[&w],
            vec![
                Attribute::new("kernel_shape", vec![4i64, 4]).map_err(err)?,
                Attribute::new("strides", vec![4i64, 4]).map_err(err)?,
            ],
            None,
        )?;
        let w = g.node(
            "MaxPool",
            &[&w],
            vec![
                Attribute::new("kernel_shape", vec![3i64, 3]).map_err(err)?,
                Attribute::new("strides", vec![2i64, 2]).map_err(err)?,
                Attribute::new("pads", vec![1i64, 1, 1, 1]).map_err(err)?,
            ],
            None,
        )?;
        let hw = g.node("Mul", &[&h, &w], vec![], None)?;
        let axes = g.constant_i64("axes", &[2, 3])?;
        let num = g.node("ReduceSum", &[&hw, &axes], vec![], None)?;
        let den = g.node("ReduceSum", &[&w, &axes], vec![], None)?;
        let eps = g.constant("eps", &[], &[1e-3])?;
        let den = g.node("Add", &[&den, &eps], vec![], None)?;
        let on_object = g.node("Div", &[&num, &den], vec![], None)?;
        let h = concat(&mut g, &[&hmax, &hmean, &on_object])?;
        conv(&mut g, &h, &net.gate_out, Some("logit"))?;
        g.feature_output("delta", 1);
        g.feature_output("logit", 1);
        let gate = g.session(threads)?;

        let mut g = GraphBuilder::new()?;
        g.feature_input("state", state_channels);
        g.feature_input("delta", 1);
        let z = concat(&mut g, &["state", "delta"])?;
        let a = conv(&mut g, &z, &net.translate_d1, None)?;
        let b = conv(&mut g, &z, &net.translate_d2, None)?;
        let c = conv(&mut g, &z, &net.translate_d3, None)?;
        let abc = concat(&mut g, &[&a, &b, &c])?;
        let f = conv(&mut g, &abc, &net.translate_fuse, None)?;
        rrb(&mut g, &net.translate_rrb, &f, Some("out"))?;
        g.feature_output("out", state_channels);
        let translate = g.session(threads)?;
        Ok(OrtReuse {
            template,
            gate,
            translate,
            keys: k,
        })
    }
}

/// softmax(value·keyᵀ / √(H·W)) over key channels, row-major K×K.
pub fn template_product(value: &FeatureMap, key: &FeatureMap) -> Vec<f32> {
    let k = value.channels;
    let n = value.height * value.width;
    let scale = 1.0 / (n as f64).sqrt();
    let mut t = vec![0f32; k * k];
    for i in 0..k {
        let vi = &value.data[i * n..(i + 1) * n];
        let mut row: Vec<f64> = (0..k)
            .map(|j| {
                let kj = &key.data[j * n..(j + 1) * n];
                vi.iter()
                    .zip(kj)
                    .map(|(&a, &b)| f64::from(a * b))
                    .sum::<f64>()
                    * scale
            })
            .collect();
        let max = row.iter().cloned().fold(f64::MIN, f64::max);
        row.iter_mut().for_each(|v| *v = (*v - max).exp());
        let sum: f64 = row.iter().sum();
        for (j, v) in row.into_iter().enumerate() {
            t[i * k + j] = (v / sum) as f32;
        }
    }
    t
}

impl crate::engine::ReuseEngine for OrtReuse {
    fn template(&mut self, s8: &FeatureMap, mask8: &FeatureMap) -> Result<Vec<f32>> {
        let out = run(
            &mut self.template,
            &[("s8", s8), ("mask8", mask8)],
            &["value", "key"],
        )?;
        Ok(template_product(&out[0], &out[1]))
    }

    fn gate(
        &mut self,
        s8: &FeatureMap,
        last_s8: &FeatureMap,
        score8: &FeatureMap,
        template: &[f32],
    ) -> Result<(f32, FeatureMap)> {
        let t = FeatureMap::new(self.keys * self.keys, 1, 1, template.to_vec());
        let mut out = run(
            &mut self.gate,
            &[
                ("s8", s8),
                ("last_s8", last_s8),
                ("score8", score8),
                ("template", &t),
            ],
            &["logit", "delta"],
        )?;
        let delta = out.remove(1);
        Ok((out[0].data[0], delta))
    }

    fn translate(&mut self, state: &FeatureMap, delta: &FeatureMap) -> Result<FeatureMap> {
        let mut out = run(
            &mut self.translate,
            &[("state", state), ("delta", delta)],
            &["out"],
        )?;
        Ok(out.remove(0))
    }
}
