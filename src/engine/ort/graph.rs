//! A small builder over ort's model editor: feature-map inputs/outputs, f32 initializers,
//! convolutions with ReLU6, additions — what the project's networks are made of.

use super::err;
use crate::error::Result;
use crate::model::FeatureMap;
use crate::model::backbone::ConvLayer;
use ::ort::editor::{Graph, Model, Node, ONNX_DOMAIN, Opset};
use ::ort::memory::Allocator;
use ::ort::operator::Attribute;
use ::ort::session::Session;
use ::ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ::ort::value::{
    Outlet, PrimitiveTensorElementType, Shape, SymbolicDimensions, Tensor, TensorElementType,
    ValueType,
};
use std::sync::atomic::{AtomicUsize, Ordering};

/// ONNX opset the graphs are written for.
const OPSET: u32 = 17;

/// ONNX Runtime's contrib operators (fused attention).
const MS_DOMAIN: &str = "com.microsoft";

/// Builds one ONNX graph.
pub struct GraphBuilder {
    graph: Graph,
    inputs: Vec<Outlet>,
    outputs: Vec<Outlet>,
    counter: usize,
    /// Values exposed for calibration: (range key, value name).
    calibration: Vec<(String, String)>,
}

/// A `[1, C, H, W]` f32 value with dynamic H and W.
fn feature_outlet(name: &str, channels: usize) -> Outlet {
    Outlet::new(
        name,
        ValueType::Tensor {
            ty: TensorElementType::Float32,
            shape: Shape::new([1, channels as i64, -1, -1]),
            dimension_symbols: SymbolicDimensions::new([
                String::new(),
                String::new(),
                format!("{name}_h"),
                format!("{name}_w"),
            ]),
        },
    )
}

fn f32_outlet(name: &str, shape: &[i64]) -> Outlet {
    Outlet::new(
        name,
        ValueType::Tensor {
            ty: TensorElementType::Float32,
            shape: Shape::new(shape.iter().copied()),
            dimension_symbols: SymbolicDimensions::empty(shape.len()),
        },
    )
}

impl GraphBuilder {
    pub fn new() -> Result<GraphBuilder> {
        super::environment()?;
        Ok(GraphBuilder {
            graph: Graph::new().map_err(err)?,
            inputs: Vec::new(),
            outputs: Vec::new(),
            counter: 0,
            calibration: Vec::new(),
        })
    }

    /// A fresh value name.
    fn fresh(&mut self, stem: &str) -> String {
        self.counter += 1;
        format!("{stem}_{}", self.counter)
    }

    /// Declares a `[1, C, H, W]` graph input.
    pub fn feature_input(&mut self, name: &str, channels: usize) {
        self.inputs.push(feature_outlet(name, channels));
    }

    /// Declares a `[1, C, H, W]` graph output.
    pub fn feature_output(&mut self, name: &str, channels: usize) {
        self.outputs.push(feature_outlet(name, channels));
    }

    /// Makes value `name` a graph output too, recorded under range key `key`.
    pub fn calibration_output(&mut self, name: &str, key: &str, channels: usize) {
        self.feature_output(name, channels);
        self.calibration.push((key.to_string(), name.to_string()));
    }

    /// The values [`Self::calibration_output`] exposed: (range key, value name).
    pub fn calibration_keys(&self) -> Vec<(String, String)> {
        self.calibration.clone()
    }

    /// Declares a graph output of fixed shape.
    pub fn output(&mut self, name: &str, shape: &[i64]) {
        self.outputs.push(f32_outlet(name, shape));
    }

    /// Adds a constant f32 tensor (copied into memory ONNX Runtime owns).
    pub fn constant(&mut self, stem: &str, shape: &[usize], data: &[f32]) -> Result<String> {
        self.initializer(stem, shape, data)
    }

    /// Adds a constant i64 tensor (shapes for Reshape).
    pub fn constant_i64(&mut self, stem: &str, data: &[i64]) -> Result<String> {
        self.initializer(stem, &[data.len()], data)
    }

    /// Adds a constant tensor of any element type ONNX Runtime knows.
    pub fn initializer<T: PrimitiveTensorElementType + Copy + std::fmt::Debug>(
        &mut self,
        stem: &str,
        shape: &[usize],
        data: &[T],
    ) -> Result<String> {
        let name = self.fresh(stem);
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let mut t = Tensor::<T>::new(&Allocator::default(), dims).map_err(err)?;
        let (_, buf) = t.extract_tensor_mut();
        if buf.len() != data.len() {
            return Err(crate::Error::Invalid(format!(
                "constant {name}: {} values for shape {shape:?}",
                data.len()
            )));
        }
        buf.copy_from_slice(data);
        self.graph.add_initializer(&name, t, false).map_err(err)?;
        Ok(name)
    }

    /// Adds a node with one output and returns the output's name (or `out` when given).
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attributes: Vec<Attribute>,
        out: Option<&str>,
    ) -> Result<String> {
        let y = match out {
            Some(o) => o.to_string(),
            None => self.fresh(&op.to_ascii_lowercase()),
        };
        let name = self.fresh(&format!("{op}_node"));
        let node =
            Node::new(op, ONNX_DOMAIN, name, inputs, [y.as_str()], attributes).map_err(err)?;
        self.graph.add_node(node).map_err(err)?;
        Ok(y)
    }

    /// Adds a node of ONNX Runtime's own operator set (`com.microsoft`) with one output.
    pub fn ms_node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attributes: Vec<Attribute>,
    ) -> Result<String> {
        let y = self.fresh(&op.to_ascii_lowercase());
        let name = self.fresh(&format!("{op}_node"));
        let node = Node::new(op, MS_DOMAIN, name, inputs, [y.as_str()], attributes).map_err(err)?;
        self.graph.add_node(node).map_err(err)?;
        Ok(y)
    }

    /// Conv (+ bias) and, when the layer has it, ReLU6 (`Clip(0, 6)`).
    pub fn conv(&mut self, x: &str, layer: &ConvLayer, out: Option<&str>) -> Result<String> {
        let k = layer.kernel;
        let w = self.constant(
            "w",
            &[layer.cout, layer.cin / layer.groups, k, k],
            &layer.weight,
        )?;
        let b = self.constant("b", &[layer.cout], &layer.bias)?;
        self.conv_node(x, (&w, &b), layer, out)
    }

    /// The Conv node of `layer` reading weight and bias values `w`, `b`, and its ReLU6.
    fn conv_node(
        &mut self,
        x: &str,
        (w, b): (&str, &str),
        layer: &ConvLayer,
        out: Option<&str>,
    ) -> Result<String> {
        let k = layer.kernel as i64;
        let p = layer.padding() as i64;
        let s = layer.stride as i64;
        let attrs = vec![
            Attribute::new("kernel_shape", vec![k, k]).map_err(err)?,
            Attribute::new("pads", vec![p, p, p, p]).map_err(err)?,
            Attribute::new("strides", vec![s, s]).map_err(err)?,
            Attribute::new("group", layer.groups as i64).map_err(err)?,
        ];
        if !layer.relu6 {
            return self.node("Conv", &[x, w, b], attrs, out);
        }
        let y = self.node("Conv", &[x, w, b], attrs, None)?;
        let lo = self.constant("zero", &[], &[0.0])?;
        let hi = self.constant("six", &[], &[6.0])?;
        self.node("Clip", &[&y, &lo, &hi], vec![], out)
    }

    /// Compiles the graph into a session with `threads` intra-op threads.
    pub fn session(mut self, threads: usize) -> Result<Session> {
        self.graph.set_inputs(self.inputs).map_err(err)?;
        self.graph.set_outputs(self.outputs).map_err(err)?;
        let mut model = Model::new([
            Opset::new(ONNX_DOMAIN, OPSET).map_err(err)?,
            Opset::new(MS_DOMAIN, 1).map_err(err)?,
        ])
        .map_err(err)?;
        model.set_graph(self.graph).map_err(err)?;
        let env = super::environment()?;
        let options = SessionBuilder::new(&env)
            .map_err(err)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| err(e.to_string()))?
            .with_intra_threads(threads.max(1))
            .map_err(|e| err(e.to_string()))?
            // Each session has its own thread pool; spinning threads of one session would
            // steal the cores from the next one (measured: to s32 took 99 ms instead of ~50).
            .with_intra_op_spinning(false)
            .map_err(|e| err(e.to_string()))?;
        // `REUSE_VOS_ORT_PROFILE=<prefix>`: ONNX Runtime's per-operator profile of every
        // session built here, one JSON file each (`<prefix>-<n>_<date>.json`, written when it is dropped).
        let options = match std::env::var_os("REUSE_VOS_ORT_PROFILE").filter(|p| !p.is_empty()) {
            Some(prefix) => {
                static SESSIONS: AtomicUsize = AtomicUsize::new(0);
                let n = SESSIONS.fetch_add(1, Ordering::Relaxed);
                let mut path = prefix;
                path.push(format!("-{n}"));
                options
                    .with_profiling(path)
                    .map_err(|e| err(e.to_string()))?
            }
            None => options,
        };
        model.into_session(&options).map_err(err)
    }
}

/// Runs a session on named feature-map inputs and returns the named outputs.
pub fn run(
    session: &mut Session,
    inputs: &[(&str, &FeatureMap)],
    outputs: &[&str],
) -> Result<Vec<FeatureMap>> {
    let mut values = Vec::with_capacity(inputs.len());
    for (name, map) in inputs {
        let view =
            ::ort::value::TensorRef::from_array_view((map.shape(), &map.data[..])).map_err(err)?;
        values.push((
            std::borrow::Cow::Borrowed(*name),
            ::ort::session::SessionInputValue::from(view),
        ));
    }
    let result = session.run(values).map_err(err)?;
    outputs
        .iter()
        .map(|name| {
            let value = result
                .get(name)
                .ok_or_else(|| err(format!("graph has no output {name}")))?;
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(err)?;
            let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
            let (c, h, w) = match dims.as_slice() {
                [1, c, h, w] => (*c, *h, *w),
                [1, c] => (*c, 1, 1),
                other => return Err(err(format!("output {name} has shape {other:?}"))),
            };
            Ok(FeatureMap::new(c, h, w, data.to_vec()))
        })
        .collect()
}

/// Int8 (QDQ) building blocks: ONNX Runtime's graph optimiser folds DequantizeLinear → Conv →
/// QuantizeLinear into one integer convolution (and a ReLU6 into the quantised range).
impl GraphBuilder {
    /// `x` quantised to u8 with `(scale, zero point)` and back: the value the next integer
    /// operator reads.
    pub fn qdq(&mut self, x: &str, (scale, zp): (f32, u8), out: Option<&str>) -> Result<String> {
        let s = self.initializer("qs", &[], &[scale])?;
        let z = self.initializer("qz", &[], &[zp])?;
        let q = self.node("QuantizeLinear", &[x, &s, &z], vec![], None)?;
        self.node("DequantizeLinear", &[&q, &s, &z], vec![], out)
    }

    /// A constant quantised per output channel (axis 0), dequantised: `q · scale`.
    fn per_channel<T: PrimitiveTensorElementType + Copy + std::fmt::Debug>(
        &mut self,
        stem: &str,
        shape: &[usize],
        q: &[T],
        scales: &[f32],
        zero: T,
    ) -> Result<String> {
        let v = self.initializer(&format!("{stem}q"), shape, q)?;
        let s = self.initializer(&format!("{stem}s"), &[scales.len()], scales)?;
        let z = self.initializer(
            &format!("{stem}z"),
            &[scales.len()],
            &vec![zero; scales.len()],
        )?;
        let axis = Attribute::new("axis", 0i64).map_err(err)?;
        self.node("DequantizeLinear", &[&v, &s, &z], vec![axis], None)
    }

    /// A convolution with int8 weights (per output channel) and an int32 bias, reading `x`
    /// (already quantised with scale `x_scale`) and quantising its output (after ReLU6 when the
    /// layer has it) with `out_q`.
    pub fn conv_int8(
        &mut self,
        x: &str,
        x_scale: f32,
        layer: &ConvLayer,
        out_q: (f32, u8),
        out: Option<&str>,
    ) -> Result<String> {
        let k = layer.kernel;
        let (wq, ws) = crate::model::int8::weights_q(layer);
        let shape = [layer.cout, layer.cin / layer.groups, k, k];
        let w = self.per_channel("w", &shape, &wq, &ws, 0i8)?;
        // The bias in int32 at the scale of the products it is added to.
        let bs: Vec<f32> = ws.iter().map(|s| s * x_scale).collect();
        let bq: Vec<i32> = (layer.bias.iter().zip(&bs))
            .map(|(b, s)| (b / s).round() as i32)
            .collect();
        let b = self.per_channel("b", &[layer.cout], &bq, &bs, 0i32)?;
        let y = self.conv_node(x, (&w, &b), layer, None)?;
        self.qdq(&y, out_q, out)
    }
}
