//! ViT-S/14 as ONNX Runtime graphs, built from the imported weights: one session per input size
//! (the position embeddings, resized in Rust, are a constant of it) and stopping layer.

use super::err;
use super::graph::{GraphBuilder, run};
use crate::error::Result;
use crate::model::FeatureMap;
use crate::model::vit::{BlockWeights, LinearWeights, NormWeights, VitShape, VitWeights, pos};
use ::ort::operator::Attribute;
use ::ort::session::Session;
use std::collections::HashMap;
use std::sync::Arc;

/// The graph's pieces, over a builder.
struct VitGraph<'a> {
    g: GraphBuilder,
    w: &'a VitWeights,
}

impl VitGraph<'_> {
    fn linear(&mut self, x: &str, l: &LinearWeights) -> Result<String> {
        let w = self.g.constant("lw", &[l.inputs, l.outputs], &l.weight)?;
        let b = self.g.constant("lb", &[l.outputs], &l.bias)?;
        let y = self.g.node("MatMul", &[x, &w], vec![], None)?;
        self.g.node("Add", &[&y, &b], vec![], None)
    }

    fn norm(&mut self, x: &str, n: &NormWeights) -> Result<String> {
        let d = n.gamma.len();
        let g = self.g.constant("ng", &[d], &n.gamma)?;
        let b = self.g.constant("nb", &[d], &n.beta)?;
        let attrs = vec![
            Attribute::new("axis", -1i64).map_err(err)?,
            Attribute::new("epsilon", self.w.config.eps as f32).map_err(err)?,
        ];
        self.g.node("LayerNormalization", &[x, &g, &b], attrs, None)
    }

    fn reshape(&mut self, x: &str, shape: &[i64]) -> Result<String> {
        let s = self.g.constant_i64("shape", shape)?;
        self.g.node("Reshape", &[x, &s], vec![], None)
    }

    fn transpose(&mut self, x: &str, perm: &[i64]) -> Result<String> {
        let attrs = vec![Attribute::new("perm", perm.to_vec()).map_err(err)?];
        self.g.node("Transpose", &[x], attrs, None)
    }

    fn scale(&mut self, x: &str, s: &[f32]) -> Result<String> {
        let c = self.g.constant("ls", &[s.len()], s)?;
        self.g.node("Mul", &[x, &c], vec![], None)
    }

    /// Six-head self-attention in ONNX Runtime's fused operator (on the CPU it streams the
    /// scores block by block instead of writing the `T × T` matrix of every head).
    fn attention(&mut self, x: &str, b: &BlockWeights) -> Result<String> {
        let heads = self.w.config.heads as i64;
        let q = self.linear(x, &b.query)?;
        let k = self.linear(x, &b.key)?;
        let v = self.linear(x, &b.value)?;
        let attrs = vec![Attribute::new("num_heads", heads).map_err(err)?];
        let y = self.g.ms_node("MultiHeadAttention", &[&q, &k, &v], attrs)?;
        self.linear(&y, &b.proj)
    }

    /// Exact GELU: `x · (1 + erf(x / √2)) / 2`.
    fn gelu(&mut self, x: &str) -> Result<String> {
        let r = self
            .g
            .constant("r2", &[], &[std::f32::consts::FRAC_1_SQRT_2])?;
        let half = self.g.constant("half", &[], &[0.5])?;
        let one = self.g.constant("one", &[], &[1.0])?;
        let y = self.g.node("Mul", &[x, &r], vec![], None)?;
        let y = self.g.node("Erf", &[&y], vec![], None)?;
        let y = self.g.node("Add", &[&y, &one], vec![], None)?;
        let y = self.g.node("Mul", &[x, &y], vec![], None)?;
        self.g.node("Mul", &[&y, &half], vec![], None)
    }

    fn block(&mut self, x: &str, b: &BlockWeights) -> Result<String> {
        let n = self.norm(x, &b.norm1)?;
        let a = self.attention(&n, b)?;
        let a = self.scale(&a, &b.scale1)?;
        let x = self.g.node("Add", &[x, &a], vec![], None)?;
        let n = self.norm(&x, &b.norm2)?;
        let m = self.linear(&n, &b.fc1)?;
        let m = self.gelu(&m)?;
        let m = self.linear(&m, &b.fc2)?;
        let m = self.scale(&m, &b.scale2)?;
        self.g.node("Add", &[&x, &m], vec![], None)
    }
}

/// The graph of `shape`: input `image` `[1, 3, H, W]`, output `tokens` `[1, dim, rows, cols]`.
fn build(w: &VitWeights, shape: VitShape, threads: usize) -> Result<Session> {
    let c = &w.config;
    let (d, p) = (c.dim, c.patch);
    let (gh, gw) = shape.grid(p);
    let n = gh * gw;
    let mut v = VitGraph {
        g: GraphBuilder::new()?,
        w,
    };
    v.g.feature_input("image", 3);
    let pw = v.g.constant("pw", &[d, 3, p, p], &w.patch_weight)?;
    let pb = v.g.constant("pb", &[d], &w.patch_bias)?;
    let k = p as i64;
    let attrs = vec![
        Attribute::new("kernel_shape", vec![k, k]).map_err(err)?,
        Attribute::new("strides", vec![k, k]).map_err(err)?,
    ];
    let x = v.g.node("Conv", &["image", &pw, &pb], attrs, None)?;
    let positions = pos::patch_positions(w, (gh, gw));
    let pe = v.g.constant("pos", &[1, d, gh, gw], &positions.data)?;
    let x = v.g.node("Add", &[&x, &pe], vec![], None)?;
    let x = v.reshape(&x, &[1, d as i64, n as i64])?;
    let patches = v.transpose(&x, &[0, 2, 1])?;
    let cls: Vec<f32> = (w.cls_token.iter().zip(&w.cls_pos))
        .map(|(a, b)| a + b)
        .collect();
    let cls = v.g.constant("cls", &[1, 1, d], &cls)?;
    let axis1 = || Attribute::new("axis", 1i64).map_err(err);
    let mut t =
        v.g.node("Concat", &[&cls, &patches], vec![axis1()?], None)?;
    for b in w.blocks.iter().take(shape.layers) {
        t = v.block(&t, b)?;
    }
    let starts = v.g.constant_i64("st", &[1])?;
    let ends = v.g.constant_i64("en", &[(n + 1) as i64])?;
    let axes = v.g.constant_i64("ax", &[1])?;
    let t =
        v.g.node("Slice", &[&t, &starts, &ends, &axes], vec![], None)?;
    let t = v.transpose(&t, &[0, 2, 1])?;
    let shape4 =
        v.g.constant_i64("shape", &[1, d as i64, gh as i64, gw as i64])?;
    v.g.node("Reshape", &[&t, &shape4], vec![], Some("tokens"))?;
    v.g.feature_output("tokens", d);
    v.g.session(threads)
}

/// The ViT on ONNX Runtime: a session per shape, built on first use.
pub struct OrtVit {
    weights: Arc<VitWeights>,
    sessions: HashMap<VitShape, Session>,
    threads: usize,
}

impl OrtVit {
    pub fn new(weights: Arc<VitWeights>, threads: usize) -> Result<OrtVit> {
        super::environment()?;
        Ok(OrtVit {
            weights,
            sessions: HashMap::new(),
            threads,
        })
    }

    /// Tokens of a normalised image of `shape`'s size.
    pub fn tokens(&mut self, image: &FeatureMap, shape: VitShape) -> Result<FeatureMap> {
        if !self.sessions.contains_key(&shape) {
            let s = build(&self.weights, shape, self.threads)?;
            self.sessions.insert(shape, s);
        }
        let session = self
            .sessions
            .get_mut(&shape)
            .ok_or_else(|| err("no ViT session"))?;
        let mut out = run(session, &[("image", image)], &["tokens"])?;
        out.pop().ok_or_else(|| err("the ViT gave no tokens"))
    }
}

/// The source file itself, run by ONNX Runtime up to the tokens after `layers` blocks (its
/// input is fixed at 224 × 224): what the project's graphs are checked against.
pub fn source_tokens(model: &[u8], image: &FeatureMap, layers: usize) -> Result<FeatureMap> {
    let name = format!(
        "/backbone/encoder/layer.{}/Add_1_output_0",
        layers.max(1) - 1
    );
    let bytes = crate::model::vit::onnx::with_output(model, &name)?;
    let env = super::environment()?;
    let mut session = Session::builder(&env)
        .map_err(err)?
        .commit_from_memory(&bytes)
        .map_err(err)?;
    let view =
        ::ort::value::TensorRef::from_array_view((image.shape(), &image.data[..])).map_err(err)?;
    let out = session
        .run(::ort::inputs!["input_image" => view])
        .map_err(err)?;
    let (shape, data) = out[name.as_str()]
        .try_extract_tensor::<f32>()
        .map_err(err)?;
    let d = shape[2] as usize;
    let g = (image.height / 14, image.width / 14);
    Ok(crate::model::vit::tokens_to_map(data, d, g))
}
