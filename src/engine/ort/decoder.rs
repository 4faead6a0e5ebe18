//! The refinement decoder as ONNX Runtime sessions, built from the Burn module's weights:
//! the deep part (s32, s16, score → state) and the shallow part (state, s8, s4, score → logits).

use super::err;
use super::graph::{GraphBuilder, run};
use crate::error::Result;
use crate::model::FeatureMap;
use crate::model::backbone::ConvLayer;
use crate::model::decoder::{Cab, Decoder, Level, Rrb, Tse};
use ::ort::operator::Attribute;
use ::ort::session::Session;
use burn::nn::conv::Conv2d;

/// A Burn convolution (stride 1, same padding) as a layer description.
fn layer(conv: &Conv2d) -> Result<ConvLayer> {
    let [cout, cin_g, k, _] = conv.weight.val().dims();
    let read = |t: burn::prelude::Tensor<1>| {
        t.into_data()
            .try_into_vec::<f32>()
            .map_err(|e| crate::Error::Invalid(format!("decoder weight: {e:?}")))
    };
    let weight = read(conv.weight.val().reshape([cout * cin_g * k * k]))?;
    let bias = match &conv.bias {
        Some(b) => read(b.val())?,
        None => vec![0.0; cout],
    };
    Ok(ConvLayer {
        weight,
        bias,
        cin: cin_g * conv.groups,
        cout,
        kernel: k,
        stride: 1,
        groups: conv.groups,
        relu6: false,
    })
}

/// Conv then ReLU.
fn conv_relu(g: &mut GraphBuilder, x: &str, c: &Conv2d) -> Result<String> {
    let y = g.conv(x, &layer(c)?, None)?;
    g.node("Relu", &[&y], vec![], None)
}

fn conv_plain(g: &mut GraphBuilder, x: &str, c: &Conv2d) -> Result<String> {
    g.conv(x, &layer(c)?, None)
}

/// Bilinear resize of `x` to the spatial size of `like` (half-pixel, as Burn and PyTorch).
fn resize_like(g: &mut GraphBuilder, x: &str, like: &str) -> Result<String> {
    let nc = g.node(
        "Shape",
        &[x],
        vec![
            Attribute::new("start", 0i64).map_err(err)?,
            Attribute::new("end", 2i64).map_err(err)?,
        ],
        None,
    )?;
    let hw = g.node(
        "Shape",
        &[like],
        vec![
            Attribute::new("start", 2i64).map_err(err)?,
            Attribute::new("end", 4i64).map_err(err)?,
        ],
        None,
    )?;
    let sizes = g.node(
        "Concat",
        &[&nc, &hw],
        vec![Attribute::new("axis", 0i64).map_err(err)?],
        None,
    )?;
    g.node(
        "Resize",
        &[x, "", "", &sizes],
        vec![
            Attribute::new("mode", String::from("linear")).map_err(err)?,
            Attribute::new("coordinate_transformation_mode", String::from("half_pixel"))
                .map_err(err)?,
        ],
        None,
    )
}

fn tse(g: &mut GraphBuilder, t: &Tse, f: &str, score: &str) -> Result<String> {
    let s = resize_like(g, score, f)?;
    let h = conv_relu(g, f, &t.reduce1)?;
    let h = conv_plain(g, &h, &t.reduce2)?;
    let h = g.node(
        "Concat",
        &[&h, &s],
        vec![Attribute::new("axis", 1i64).map_err(err)?],
        None,
    )?;
    let h = conv_relu(g, &h, &t.fuse1)?;
    conv_relu(g, &h, &t.fuse2)
}

fn cab(g: &mut GraphBuilder, c: &Cab, shallow: &str, deep_up: &str) -> Result<String> {
    let a = g.node("GlobalAveragePool", &[shallow], vec![], None)?;
    let b = g.node("GlobalAveragePool", &[deep_up], vec![], None)?;
    let pooled = g.node(
        "Concat",
        &[&a, &b],
        vec![Attribute::new("axis", 1i64).map_err(err)?],
        None,
    )?;
    let att = conv_relu(g, &pooled, &c.att1)?;
    let att = conv_plain(g, &att, &c.att2)?;
    let att = g.node("Sigmoid", &[&att], vec![], None)?;
    let m = g.node("Mul", &[shallow, &att], vec![], None)?;
    g.node("Add", &[&m, deep_up], vec![], None)
}

pub(super) fn rrb(g: &mut GraphBuilder, r: &Rrb, x: &str, out: Option<&str>) -> Result<String> {
    let y = conv_plain(g, x, &r.inner)?;
    let t = conv_relu(g, &y, &r.conv_a)?;
    let t = conv_plain(g, &t, &r.conv_b)?;
    let s = g.node("Add", &[&y, &t], vec![], None)?;
    g.node("Relu", &[&s], vec![], out)
}

fn level(
    g: &mut GraphBuilder,
    l: &Level,
    f: &str,
    score: &str,
    prev: Option<&str>,
    out: Option<&str>,
) -> Result<String> {
    let x = tse(g, &l.tse, f, score)?;
    let x = match (prev, &l.cab) {
        (Some(p), Some(c)) => {
            let p = match &l.adapt {
                Some(a) => conv_plain(g, p, a)?,
                None => p.to_string(),
            };
            let up = resize_like(g, &p, &x)?;
            cab(g, c, &x, &up)?
        }
        _ => x,
    };
    rrb(g, &l.rrb, &x, out)
}

/// The decoder on ONNX Runtime.
pub struct OrtDecoder {
    deep: Session,
    shallow: Session,
}

impl OrtDecoder {
    pub fn new(dec: &Decoder, feature_channels: [usize; 4], threads: usize) -> Result<OrtDecoder> {
        let state_channels = dec.levels[1].rrb.inner.weight.val().dims()[0];
        let mut g = GraphBuilder::new()?;
        g.feature_input("s32", feature_channels[0]);
        g.feature_input("s16", feature_channels[1]);
        let score_channels = dec.levels[0].tse.fuse1.weight.val().dims()[1]
            - dec.levels[0].tse.reduce2.weight.val().dims()[0];
        g.feature_input("score", score_channels);
        let x = level(&mut g, &dec.levels[0], "s32", "score", None, None)?;
        level(
            &mut g,
            &dec.levels[1],
            "s16",
            "score",
            Some(&x),
            Some("state"),
        )?;
        g.feature_output("state", state_channels);
        let deep = g.session(threads)?;

        let mut g = GraphBuilder::new()?;
        g.feature_input("state", state_channels);
        g.feature_input("s8", feature_channels[2]);
        g.feature_input("s4", feature_channels[3]);
        g.feature_input("score", score_channels);
        let x = level(&mut g, &dec.levels[2], "s8", "score", Some("state"), None)?;
        let x = level(&mut g, &dec.levels[3], "s4", "score", Some(&x), None)?;
        let h = conv_relu(&mut g, &x, &dec.head1)?;
        g.conv(&h, &layer(&dec.head2)?, Some("logits"))?;
        g.feature_output("logits", 1);
        let shallow = g.session(threads)?;
        Ok(OrtDecoder { deep, shallow })
    }
}

impl crate::engine::DecoderEngine for OrtDecoder {
    fn deep(
        &mut self,
        s32: &FeatureMap,
        s16: &FeatureMap,
        score: &FeatureMap,
    ) -> Result<FeatureMap> {
        let mut out = run(
            &mut self.deep,
            &[("s32", s32), ("s16", s16), ("score", score)],
            &["state"],
        )?;
        Ok(out.remove(0))
    }

    fn shallow(
        &mut self,
        state: &FeatureMap,
        s8: &FeatureMap,
        s4: &FeatureMap,
        score: &FeatureMap,
    ) -> Result<FeatureMap> {
        let mut out = run(
            &mut self.shallow,
            &[("state", state), ("s8", s8), ("s4", s4), ("score", score)],
            &["logits"],
        )?;
        Ok(out.remove(0))
    }
}
