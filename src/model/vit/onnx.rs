//! Just enough of the ONNX file format (protobuf) to take a network's weights out of it: the
//! graph's f32 initializers and, to name the anonymous ones, its nodes' operators and value
//! names. Nothing here runs the file; the project builds its own network from what it reads.

use crate::error::{Error, Result};
use std::collections::HashMap;

/// A tensor read from the file: its shape and f32 values.
#[derive(Clone, Debug)]
pub struct OnnxTensor {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

/// A node, as far as naming weights needs: operator, inputs, outputs.
#[derive(Clone, Debug)]
pub struct OnnxNode {
    pub op: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

/// What was read of a model.
#[derive(Debug, Default)]
pub struct OnnxGraph {
    pub initializers: HashMap<String, OnnxTensor>,
    pub nodes: Vec<OnnxNode>,
}

/// One protobuf field: its number and payload.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Walks the fields of one protobuf message.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn bad(what: &str) -> Error {
    Error::Invalid(format!("not a readable ONNX file: {what}"))
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| bad("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }

    fn skip(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| bad("field runs past its message"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn next_field(&mut self) -> Result<Option<(u64, Field<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.skip(8)?;
                Field::Fixed
            }
            2 => {
                let n = self.varint()? as usize;
                Field::Bytes(self.skip(n)?)
            }
            5 => {
                self.skip(4)?;
                Field::Fixed
            }
            t => return Err(bad(&format!("wire type {t}"))),
        };
        Ok(Some((key >> 3, field)))
    }
}

fn text(b: &[u8]) -> Result<String> {
    String::from_utf8(b.to_vec()).map_err(|_| bad("a name is not UTF-8"))
}

/// `ModelProto.graph` (field 7): where its key starts, and where the graph message's bytes
/// start and end in the file.
fn graph_bytes(model: &[u8]) -> Result<(usize, usize, usize)> {
    let mut f = Fields::new(model);
    let mut key = 0;
    while let Some((num, field)) = f.next_field()? {
        if let (7, Field::Bytes(b)) = (num, field) {
            return Ok((key, f.pos - b.len(), f.pos));
        }
        key = f.pos;
    }
    Err(bad("no graph"))
}

/// Reads the graph's initializers (f32 only) and nodes.
pub fn read(model: &[u8]) -> Result<OnnxGraph> {
    let (_, start, end) = graph_bytes(model)?;
    let mut graph = OnnxGraph::default();
    let mut f = Fields::new(&model[start..end]);
    while let Some((num, field)) = f.next_field()? {
        match (num, field) {
            (1, Field::Bytes(b)) => graph.nodes.push(node(b)?),
            (5, Field::Bytes(b)) => {
                let (name, t) = tensor(b)?;
                graph.initializers.insert(name, t);
            }
            _ => {}
        }
    }
    Ok(graph)
}

/// `NodeProto`: input 1, output 2, op_type 4.
fn node(b: &[u8]) -> Result<OnnxNode> {
    let mut n = OnnxNode {
        op: String::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
    };
    let mut f = Fields::new(b);
    while let Some((num, field)) = f.next_field()? {
        match (num, field) {
            (1, Field::Bytes(s)) => n.inputs.push(text(s)?),
            (2, Field::Bytes(s)) => n.outputs.push(text(s)?),
            (4, Field::Bytes(s)) => n.op = text(s)?,
            _ => {}
        }
    }
    Ok(n)
}

/// `TensorProto`: dims 1 (packed or not), data_type 2 (1 = float), float_data 4, name 8,
/// raw_data 9 (little-endian), data_location 14 (1 = external: not supported).
fn tensor(b: &[u8]) -> Result<(String, OnnxTensor)> {
    let (mut name, mut dims, mut data_type) = (String::new(), Vec::new(), 0);
    let mut data: Vec<f32> = Vec::new();
    let mut f = Fields::new(b);
    while let Some((num, field)) = f.next_field()? {
        match (num, field) {
            (1, Field::Varint(d)) => dims.push(d as usize),
            (1, Field::Bytes(packed)) => {
                let mut p = Fields::new(packed);
                while p.pos < packed.len() {
                    dims.push(p.varint()? as usize);
                }
            }
            (2, Field::Varint(t)) => data_type = t,
            (4, Field::Bytes(raw)) | (9, Field::Bytes(raw)) => data.extend(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            ),
            (8, Field::Bytes(s)) => name = text(s)?,
            (14, Field::Varint(1)) => return Err(bad(&format!("{name}: external data"))),
            _ => {}
        }
    }
    if data_type != 1 {
        // Not a weight (shape constants and the like): kept empty, never read.
        data.clear();
    }
    let n: usize = dims.iter().product();
    if data_type == 1 && data.len() != n {
        return Err(bad(&format!(
            "{name}: {} values for shape {dims:?}",
            data.len()
        )));
    }
    Ok((name, OnnxTensor { dims, data }))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The model with value `name` added to its graph's outputs (type left for ONNX Runtime to
/// infer): how the original file's intermediate values are compared with the project's.
pub fn with_output(model: &[u8], name: &str) -> Result<Vec<u8>> {
    let (key_start, start, end) = graph_bytes(model)?;
    // ValueInfoProto { name: 1 }, as GraphProto.output (field 12).
    let mut info = Vec::new();
    put_varint(&mut info, (1 << 3) | 2);
    put_varint(&mut info, name.len() as u64);
    info.extend_from_slice(name.as_bytes());
    let mut graph = model[start..end].to_vec();
    put_varint(&mut graph, (12 << 3) | 2);
    put_varint(&mut graph, info.len() as u64);
    graph.extend_from_slice(&info);
    // The graph field's key and length are rewritten for its new length.
    let mut out = model[..key_start].to_vec();
    put_varint(&mut out, (7 << 3) | 2);
    put_varint(&mut out, graph.len() as u64);
    out.extend_from_slice(&graph);
    out.extend_from_slice(&model[end..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made model: one initializer (packed dims, raw data) and one node.
    fn tiny() -> Vec<u8> {
        let mut t = Vec::new();
        put_varint(&mut t, (1 << 3) | 2); // dims, packed
        t.extend_from_slice(&[2, 2, 1]);
        put_varint(&mut t, 2 << 3); // data_type = float
        put_varint(&mut t, 1);
        put_varint(&mut t, (8 << 3) | 2);
        t.extend_from_slice(&[1, b'w']);
        put_varint(&mut t, (9 << 3) | 2);
        put_varint(&mut t, 8);
        t.extend(1.5f32.to_le_bytes());
        t.extend((-2.0f32).to_le_bytes());
        let mut n = Vec::new();
        for (k, s) in [(1, "x"), (1, "w"), (2, "y"), (4, "MatMul")] {
            put_varint(&mut n, (k << 3) | 2);
            put_varint(&mut n, s.len() as u64);
            n.extend_from_slice(s.as_bytes());
        }
        let mut g = Vec::new();
        for (k, m) in [(1u64, &n), (5, &t)] {
            put_varint(&mut g, (k << 3) | 2);
            put_varint(&mut g, m.len() as u64);
            g.extend_from_slice(m);
        }
        let mut model = vec![8, 7]; // ir_version 7
        put_varint(&mut model, (7 << 3) | 2);
        put_varint(&mut model, g.len() as u64);
        model.extend_from_slice(&g);
        model.extend_from_slice(&[8 << 3, 1]); // a field after the graph
        model
    }

    #[test]
    fn reads_initializers_and_nodes_and_adds_outputs() {
        let m = tiny();
        let g = read(&m).unwrap();
        let w = &g.initializers["w"];
        assert_eq!(
            (w.dims.clone(), w.data.clone()),
            (vec![2, 1], vec![1.5, -2.0])
        );
        assert_eq!(g.nodes[0].op, "MatMul");
        assert_eq!(g.nodes[0].inputs, vec!["x", "w"]);
        let more = with_output(&m, "y").unwrap();
        let g2 = read(&more).unwrap();
        assert_eq!(g2.initializers["w"].data, vec![1.5, -2.0]);
        assert_eq!(&more[more.len() - 2..], &[8 << 3, 1]);
        assert!(
            read(&m[..m.len() - 9]).is_err(),
            "a truncated file is refused"
        );
    }
}
