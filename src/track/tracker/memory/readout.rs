//! The memory readout: every query cell of the current frame takes the `k` memory cells whose
//! keys are most similar to its own (cosine similarity of L2-normalised backbone features),
//! and reads their values (the object's probability there) weighted by a softmax of those
//! similarities. Memory frames are searched either in a local window around the query cell
//! (REMN's local attention: recent frames, so distractors far away cannot vote) or over the
//! whole frame (frames whose mask the user gave).

use crate::model::FeatureMap;
use rayon::prelude::*;

/// One frame's keys: per cell, its L2-normalised feature vector (cell-major: `data[y][x][c]`,
/// one contiguous vector per cell; measured faster here than channel-major runs of
/// multiply-adds, 154 against 330 ms per frame).
#[derive(Clone, Debug)]
pub struct Keys {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    pub data: Vec<f32>,
}

impl Keys {
    /// The keys of a feature map at its own resolution.
    pub fn from_map(map: &FeatureMap) -> Keys {
        let (c, n) = (map.channels, map.height * map.width);
        let mut norm = vec![0f32; n];
        for ch in 0..c {
            for (s, &v) in norm.iter_mut().zip(&map.data[ch * n..(ch + 1) * n]) {
                *s += v * v;
            }
        }
        norm.iter_mut().for_each(|s| *s = 1.0 / s.sqrt().max(1e-6));
        let mut data = vec![0f32; n * c];
        for ch in 0..c {
            for (i, (&v, &k)) in map.data[ch * n..(ch + 1) * n].iter().zip(&norm).enumerate() {
                data[i * c + ch] = v * k;
            }
        }
        Keys {
            height: map.height,
            width: map.width,
            channels: c,
            data,
        }
    }

    /// Cell `i`'s key vector.
    fn cell(&self, i: usize) -> &[f32] {
        &self.data[i * self.channels..(i + 1) * self.channels]
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() * 4
    }
}

/// One frame in memory: its keys and the object's probability per cell.
#[derive(Clone, Debug)]
pub struct MemoryFrame {
    pub keys: Keys,
    pub values: Vec<f32>,
    /// Search the whole frame (else a window of `radius` cells around the query cell).
    pub global: bool,
}

/// How the readout searches and weighs.
#[derive(Clone, Copy, Debug)]
pub struct ReadoutConfig {
    /// Candidates kept per query cell.
    pub top_k: usize,
    /// Softmax temperature on cosine similarities.
    pub temperature: f32,
    /// Window radius in cells for local frames.
    pub radius: usize,
}

/// The object's probability at every query cell (h·w), read from `memory`.
///
/// Only the cells that can see the object are computed: with every frame searched in a local
/// window, a query cell farther than the radius from every object cell of every memory frame
/// has only zero-valued candidates, so its probability is exactly 0 — the readout skips it.
pub fn readout(query: &Keys, memory: &[&MemoryFrame], cfg: &ReadoutConfig) -> Vec<f32> {
    let (h, w) = (query.height, query.width);
    let mut out = vec![0f32; h * w];
    let Some((ys, xs)) = reachable(query, memory, cfg.radius) else {
        return out;
    };
    let fast = fma_available();
    let c = query.channels;
    out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        if !ys.contains(&y) {
            return;
        }
        let q = &query.data[(y * w + xs.start) * c..(y * w + xs.end) * c];
        let row = &mut row[xs.clone()];
        if fast {
            // SAFETY: the CPU has AVX2 and FMA (checked at run time just above).
            unsafe { readout_row_fma(q, (h, w), xs.start, memory, cfg, y, row) }
        } else {
            readout_row(q, (h, w), xs.start, memory, cfg, y, row)
        }
    });
    out
}

/// The query rows and columns that can see an object cell: the object's bounding box over all
/// memory frames, grown by the radius (everything when a frame is searched globally); None
/// when no memory frame holds the object.
fn reachable(
    query: &Keys,
    memory: &[&MemoryFrame],
    radius: usize,
) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let (h, w) = (query.height, query.width);
    let mut bounds: Option<(usize, usize, usize, usize)> = None;
    for f in memory {
        let (mh, mw) = (f.keys.height, f.keys.width);
        for (i, _) in f.values.iter().enumerate().filter(|(_, v)| **v > 0.0) {
            if f.global {
                return Some((0..h, 0..w));
            }
            // The memory cell's position on the query grid (the grids match unless sizes differ).
            let (y, x) = ((i / mw) * h / mh, (i % mw) * w / mw);
            bounds = Some(match bounds {
                None => (y, y, x, x),
                Some((y0, y1, x0, x1)) => (y0.min(y), y1.max(y), x0.min(x), x1.max(x)),
            });
        }
    }
    // A margin of one cell beyond the radius covers the rounding between differing grids.
    let r = radius + 1;
    bounds.map(|(y0, y1, x0, x1)| {
        (
            y0.saturating_sub(r)..(y1 + r + 1).min(h),
            x0.saturating_sub(r)..(x1 + r + 1).min(w),
        )
    })
}

#[cfg(target_arch = "x86_64")]
fn fma_available() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(not(target_arch = "x86_64"))]
fn fma_available() -> bool {
    false
}

/// [`readout_row`] compiled for AVX2 + FMA (the dot products vectorise 8 lanes wide).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn readout_row_fma(
    queries: &[f32],
    size: (usize, usize),
    x0: usize,
    memory: &[&MemoryFrame],
    cfg: &ReadoutConfig,
    y: usize,
    row: &mut [f32],
) {
    readout_row(queries, size, x0, memory, cfg, y, row)
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn readout_row_fma(
    queries: &[f32],
    size: (usize, usize),
    x0: usize,
    memory: &[&MemoryFrame],
    cfg: &ReadoutConfig,
    y: usize,
    row: &mut [f32],
) {
    readout_row(queries, size, x0, memory, cfg, y, row)
}

/// Query cells `x0..x0 + row.len()` of row `y` (`queries`: their key vectors, cell-major).
#[inline(always)]
fn readout_row(
    queries: &[f32],
    (h, w): (usize, usize),
    x0: usize,
    memory: &[&MemoryFrame],
    cfg: &ReadoutConfig,
    y: usize,
    row: &mut [f32],
) {
    let mut best = TopK::new(cfg.top_k.max(1));
    let c = queries.len() / row.len().max(1);
    for (i, o) in row.iter_mut().enumerate() {
        best.clear();
        let x = x0 + i;
        let q = &queries[i * c..(i + 1) * c];
        for frame in memory {
            search(q, (y, x), (h, w), frame, cfg.radius, &mut best);
        }
        *o = best.read(cfg.temperature);
    }
}

/// Offers the candidates of one memory frame for query cell `(y, x)` of a `(h, w)` query grid.
#[inline(always)]
fn search(
    q: &[f32],
    (y, x): (usize, usize),
    (h, w): (usize, usize),
    frame: &MemoryFrame,
    radius: usize,
    best: &mut TopK,
) {
    let keys = &frame.keys;
    let (mh, mw) = (keys.height, keys.width);
    let (y0, y1, x0, x1) = if frame.global {
        (0, mh, 0, mw)
    } else {
        // The query cell's position on the memory grid (the grids match unless sizes differ).
        let my = (y * mh / h.max(1)).min(mh - 1);
        let mx = (x * mw / w.max(1)).min(mw - 1);
        (
            my.saturating_sub(radius),
            (my + radius + 1).min(mh),
            mx.saturating_sub(radius),
            (mx + radius + 1).min(mw),
        )
    };
    let c = keys.channels;
    for my in y0..y1 {
        let start = my * mw;
        let row = &keys.data[(start + x0) * c..(start + x1) * c];
        for (i, k) in row.chunks_exact(c).enumerate() {
            let s = dot(q, k);
            if s > best.floor() {
                best.offer(s, frame.values[start + x0 + i]);
            }
        }
    }
}

/// Dot product; 8 lanes so the compiler vectorises it.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ar.iter().zip(br).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// The `k` most similar candidates seen so far (similarity, value).
struct TopK {
    k: usize,
    sims: Vec<f32>,
    values: Vec<f32>,
}

impl TopK {
    fn new(k: usize) -> TopK {
        TopK {
            k,
            sims: Vec::with_capacity(k),
            values: Vec::with_capacity(k),
        }
    }

    fn clear(&mut self) {
        self.sims.clear();
        self.values.clear();
    }

    /// The similarity a candidate must beat to enter.
    #[inline(always)]
    fn floor(&self) -> f32 {
        if self.sims.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.sims[self.k - 1]
        }
    }

    /// Inserts in descending order (ties keep the earlier candidate first: deterministic).
    #[inline(always)]
    fn offer(&mut self, s: f32, v: f32) {
        let at = self.sims.partition_point(|&e| e >= s);
        if at >= self.k {
            return;
        }
        if self.sims.len() == self.k {
            self.sims.pop();
            self.values.pop();
        }
        self.sims.insert(at, s);
        self.values.insert(at, v);
    }

    /// The softmax-weighted mean value (0 without candidates).
    fn read(&self, temperature: f32) -> f32 {
        let Some(&top) = self.sims.first() else {
            return 0.0;
        };
        let (mut num, mut den) = (0f32, 0f32);
        for (&s, &v) in self.sims.iter().zip(&self.values) {
            let e = ((s - top) / temperature).exp();
            num += e * v;
            den += e;
        }
        num / den
    }
}

/// The readout written as plainly as possible (every candidate scored, sorted, the best `k`
/// kept): the reference the fast path is tested against.
pub fn readout_reference(query: &Keys, memory: &[&MemoryFrame], cfg: &ReadoutConfig) -> Vec<f32> {
    let (h, w) = (query.height, query.width);
    let mut out = Vec::with_capacity(h * w);
    for y in 0..h {
        for x in 0..w {
            let q = query.cell(y * w + x);
            let mut cands: Vec<(f32, f32)> = Vec::new();
            for f in memory {
                let (mh, mw) = (f.keys.height, f.keys.width);
                let (my, mx) = ((y * mh / h).min(mh - 1), (x * mw / w).min(mw - 1));
                for j in 0..mh {
                    for i in 0..mw {
                        let near = j.abs_diff(my) <= cfg.radius && i.abs_diff(mx) <= cfg.radius;
                        if f.global || near {
                            let k = f.keys.cell(j * mw + i);
                            let s: f32 = q.iter().zip(k).map(|(a, b)| a * b).sum();
                            cands.push((s, f.values[j * mw + i]));
                        }
                    }
                }
            }
            cands.sort_by(|a, b| b.0.total_cmp(&a.0));
            cands.truncate(cfg.top_k.max(1));
            let top = cands.first().map_or(0.0, |c| c.0);
            let (num, den) = cands.iter().fold((0f32, 0f32), |(n, d), &(s, v)| {
                let e = ((s - top) / cfg.temperature).exp();
                (n + e * v, d + e)
            });
            out.push(if den > 0.0 { num / den } else { 0.0 });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random_map(c: usize, h: usize, w: usize, seed: u64) -> FeatureMap {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let data = (0..c * h * w)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        FeatureMap::new(c, h, w, data)
    }

    fn frame(seed: u64, global: bool) -> MemoryFrame {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 100);
        MemoryFrame {
            keys: Keys::from_map(&random_map(32, 9, 13, seed)),
            values: (0..9 * 13).map(|_| rng.random_range(0.0..1.0)).collect(),
            global,
        }
    }

    #[test]
    fn the_fast_readout_matches_the_plain_one() {
        let query = Keys::from_map(&random_map(32, 9, 13, 7));
        let (a, b, c) = (frame(1, true), frame(2, false), frame(3, false));
        let memory = [&a, &b, &c];
        for (top_k, radius) in [(1, 0), (5, 2), (20, 4)] {
            let cfg = ReadoutConfig {
                top_k,
                temperature: 0.1,
                radius,
            };
            let fast = readout(&query, &memory, &cfg);
            let plain = readout_reference(&query, &memory, &cfg);
            let diff = fast
                .iter()
                .zip(&plain)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(diff < 1e-4, "top-{top_k} radius {radius}: max diff {diff}");
        }
    }

    #[test]
    fn skipping_cells_that_cannot_see_the_object_changes_nothing() {
        let query = Keys::from_map(&random_map(32, 20, 30, 9));
        let mut a = frame(4, false);
        let mut b = frame(5, false);
        a.keys = Keys::from_map(&random_map(32, 20, 30, 4));
        b.keys = Keys::from_map(&random_map(32, 20, 30, 5));
        a.values = vec![0.0; 600];
        b.values = vec![0.0; 600];
        a.values[5 * 30 + 7] = 1.0;
        b.values[6 * 30 + 9] = 0.8;
        let cfg = ReadoutConfig {
            top_k: 3,
            temperature: 0.1,
            radius: 2,
        };
        let fast = readout(&query, &[&a, &b], &cfg);
        let plain = readout_reference(&query, &[&a, &b], &cfg);
        assert!(fast.iter().zip(&plain).all(|(x, y)| (x - y).abs() < 1e-5));
        assert!(fast.iter().any(|&v| v > 0.0));
    }

    #[test]
    fn a_query_equal_to_a_memory_cell_reads_its_value() {
        let map = random_map(32, 5, 5, 3);
        let mut values = vec![0.0; 25];
        values[12] = 1.0;
        let mem = MemoryFrame {
            keys: Keys::from_map(&map),
            values,
            global: true,
        };
        let cfg = ReadoutConfig {
            top_k: 1,
            temperature: 0.1,
            radius: 0,
        };
        let out = readout(&Keys::from_map(&map), &[&mem], &cfg);
        assert_eq!(out[12], 1.0);
        assert_eq!(out.iter().filter(|&&v| v == 1.0).count(), 1);
    }
}
