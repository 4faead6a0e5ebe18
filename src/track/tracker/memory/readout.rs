//! The memory readout: every query cell of the current frame takes the `k` memory cells whose
//! keys are most similar to its own (cosine similarity of L2-normalised backbone features),
//! and reads their values (the object's probability there) weighted by a softmax of those
//! similarities. Each memory frame is searched in its own window: local around the query cell
//! (REMN's local attention: distractors far away cannot vote), or the whole frame.

use super::kernel::{MemoryRow, QueryRow, RowTop, scan};
pub use super::keys::Keys;
use rayon::prelude::*;

/// One frame in memory: its keys, the object's probability per cell and where it is searched.
#[derive(Clone, Debug)]
pub struct MemoryFrame {
    pub keys: Keys,
    pub values: Vec<f32>,
    pub window: Window,
}

/// Where a memory frame is searched for a query cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The whole frame.
    Global,
    /// The cells within this many rows and columns of the query cell.
    Local(usize),
}

impl Window {
    /// The radius that covers this window on an `h × w` grid (a wider one covers no more).
    pub fn radius(self, h: usize, w: usize) -> usize {
        match self {
            Window::Global => h.max(w),
            Window::Local(r) => r.min(h.max(w)),
        }
    }

    /// This window, a local one grown to at least `min` cells.
    pub fn at_least(self, min: usize) -> Window {
        match self {
            Window::Global => Window::Global,
            Window::Local(r) => Window::Local(r.max(min)),
        }
    }
}

/// How the readout searches and weighs.
#[derive(Clone, Copy, Debug)]
pub struct ReadoutConfig {
    /// Candidates kept per query cell.
    pub top_k: usize,
    /// Softmax temperature on cosine similarities.
    pub temperature: f32,
    /// Every local window is searched at least this wide (0: as each frame was written).
    pub min_radius: usize,
}

impl ReadoutConfig {
    /// The radius `frame` is searched with on an `h × w` grid.
    fn radius(&self, frame: &MemoryFrame, h: usize, w: usize) -> usize {
        frame.window.at_least(self.min_radius).radius(h, w)
    }
}

/// Query rows per parallel task.
const BAND: usize = 8;

/// The object's probability at every query cell (h·w), read from `memory`.
///
/// Only the cells that can see the object are computed: a query cell outside every memory
/// frame's window around that frame's object cells has only zero-valued candidates, so its
/// probability is exactly 0 — the readout skips it.
pub fn readout(query: &Keys, memory: &[&MemoryFrame], cfg: &ReadoutConfig) -> Vec<f32> {
    let (h, w) = (query.height, query.width);
    if memory
        .iter()
        .any(|f| (f.keys.height, f.keys.width, f.keys.channels) != (h, w, query.channels))
    {
        // Frames of one video share one grid; only a caller mixing sizes gets here.
        return readout_reference(query, memory, cfg);
    }
    let mut out = vec![0f32; h * w];
    let Some((ys, xs)) = reachable(query, memory, cfg) else {
        return out;
    };
    // Bands of query rows: one memory row, once loaded, serves every row of the band it is
    // in the window of. For each query cell the candidates still come frame by frame, memory
    // row by memory row, left to right.
    out.par_chunks_mut(w * BAND)
        .enumerate()
        .for_each(|(band, rows)| {
            let y0 = band * BAND;
            let band_rows: Vec<usize> = (y0..(y0 + BAND).min(h))
                .filter(|y| ys.contains(y))
                .collect();
            let (Some(&first), Some(&last)) = (band_rows.first(), band_rows.last()) else {
                return;
            };
            let mut tops: Vec<RowTop> = band_rows
                .iter()
                .map(|_| RowTop::new(cfg.top_k, xs.len()))
                .collect();
            for frame in memory {
                let r = cfg.radius(frame, h, w);
                for my in first.saturating_sub(r)..(last + r + 1).min(h) {
                    let memory = MemoryRow {
                        cells: (xs.start, xs.end),
                        keys: frame.keys.row(my),
                        values: &frame.values[my * w..(my + 1) * w],
                        radius: r,
                    };
                    let mut queries: Vec<QueryRow> = band_rows
                        .iter()
                        .zip(tops.iter_mut())
                        .filter(|(y, _)| y.abs_diff(my) <= r)
                        .map(|(&y, top)| QueryRow {
                            keys: query.row(y),
                            top,
                        })
                        .collect();
                    scan(&mut queries, &memory, query);
                }
            }
            for (&y, top) in band_rows.iter().zip(&tops) {
                let row = &mut rows[(y - y0) * w..(y - y0 + 1) * w];
                for (i, o) in row[xs.clone()].iter_mut().enumerate() {
                    *o = top.read(i, cfg.temperature);
                }
            }
        });
    out
}

/// The query rows and columns that can see an object cell: each memory frame's bounding box
/// of the object grown by that frame's radius, all together (everything when a frame holding
/// the object is searched globally); None when no memory frame holds the object.
fn reachable(
    query: &Keys,
    memory: &[&MemoryFrame],
    cfg: &ReadoutConfig,
) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let (h, w) = (query.height, query.width);
    let mut reach: Option<(usize, usize, usize, usize)> = None;
    for f in memory {
        let (mh, mw) = (f.keys.height, f.keys.width);
        let mut bounds: Option<(usize, usize, usize, usize)> = None;
        for (i, _) in f.values.iter().enumerate().filter(|(_, v)| **v > 0.0) {
            // The memory cell's position on the query grid (the grids match unless sizes differ).
            let (y, x) = ((i / mw) * h / mh, (i % mw) * w / mw);
            bounds = Some(match bounds {
                None => (y, y, x, x),
                Some((y0, y1, x0, x1)) => (y0.min(y), y1.max(y), x0.min(x), x1.max(x)),
            });
        }
        let Some((y0, y1, x0, x1)) = bounds else {
            continue;
        };
        // One cell beyond the radius: a margin (the grids match here; see `readout`).
        let r = cfg.radius(f, h, w) + 1;
        let grown = (
            y0.saturating_sub(r),
            (y1 + r + 1).min(h),
            x0.saturating_sub(r),
            (x1 + r + 1).min(w),
        );
        reach = Some(match reach {
            None => grown,
            Some((a, b, c, d)) => (
                a.min(grown.0),
                b.max(grown.1),
                c.min(grown.2),
                d.max(grown.3),
            ),
        });
    }
    reach.map(|(y0, y1, x0, x1)| (y0..y1, x0..x1))
}

/// The readout written as plainly as possible (every candidate scored, sorted, the best `k`
/// kept): the reference the fast path is tested against.
pub fn readout_reference(query: &Keys, memory: &[&MemoryFrame], cfg: &ReadoutConfig) -> Vec<f32> {
    let (h, w) = (query.height, query.width);
    let mut out = Vec::with_capacity(h * w);
    for y in 0..h {
        for x in 0..w {
            let q = query.cell(y, x);
            let mut cands: Vec<(f32, f32)> = Vec::new();
            for f in memory {
                let (mh, mw) = (f.keys.height, f.keys.width);
                let (my, mx) = ((y * mh / h).min(mh - 1), (x * mw / w).min(mw - 1));
                let r = cfg.radius(f, mh, mw);
                for j in 0..mh {
                    for i in 0..mw {
                        if j.abs_diff(my) <= r && i.abs_diff(mx) <= r {
                            let k = f.keys.cell(j, i);
                            let s: f32 = q.iter().zip(&k).map(|(a, b)| a * b).sum();
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
    use crate::model::FeatureMap;
    use rand::{Rng, SeedableRng};

    fn random_map(c: usize, h: usize, w: usize, seed: u64) -> FeatureMap {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let data = (0..c * h * w)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        FeatureMap::new(c, h, w, data)
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    }

    fn frame(seed: u64, window: Window) -> MemoryFrame {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 100);
        MemoryFrame {
            keys: Keys::from_map(&random_map(32, 9, 13, seed)),
            values: (0..9 * 13).map(|_| rng.random_range(0.0..1.0)).collect(),
            window,
        }
    }

    #[test]
    fn the_fast_readout_matches_the_plain_one() {
        let query = Keys::from_map(&random_map(32, 9, 13, 7));
        for (top_k, radius) in [(1, 0), (5, 2), (20, 4)] {
            // A global frame, two local ones, one of them with a wider window.
            let (a, b) = (frame(1, Window::Global), frame(2, Window::Local(radius)));
            let c = frame(3, Window::Local(radius + 1));
            let memory = [&a, &b, &c];
            let cfg = ReadoutConfig {
                top_k,
                temperature: 0.1,
                min_radius: 0,
            };
            let fast = readout(&query, &memory, &cfg);
            let plain = readout_reference(&query, &memory, &cfg);
            let diff = max_diff(&fast, &plain);
            assert!(diff < 1e-4, "top-{top_k} radius {radius}: max diff {diff}");
        }
    }

    #[test]
    fn a_minimum_radius_reads_as_frames_written_that_wide() {
        let query = Keys::from_map(&random_map(32, 9, 13, 7));
        let (a, b) = (frame(1, Window::Global), frame(2, Window::Local(1)));
        let c = frame(3, Window::Local(4));
        let cfg = ReadoutConfig {
            top_k: 5,
            temperature: 0.1,
            min_radius: 3,
        };
        let widened = readout(&query, &[&a, &b, &c], &cfg);
        // The same frames written with the windows the minimum makes of theirs.
        let b3 = MemoryFrame {
            window: Window::Local(3),
            ..b.clone()
        };
        let plain_cfg = ReadoutConfig {
            min_radius: 0,
            ..cfg
        };
        let written = readout(&query, &[&a, &b3, &c], &plain_cfg);
        assert_eq!(widened, written);
        let plain = readout_reference(&query, &[&a, &b, &c], &cfg);
        let diff = max_diff(&widened, &plain);
        assert!(diff < 1e-4, "max diff {diff}");
        let narrow = readout(&query, &[&a, &b, &c], &plain_cfg);
        assert_ne!(widened, narrow, "the minimum widened nothing");
    }

    #[test]
    fn the_fast_readout_matches_the_plain_one_on_a_wide_grid() {
        // Rows of 37 cells: several blocks of 8 query cells, offset groups cut by both edges
        // and by the radius, a globally searched frame.
        let map = |seed| Keys::from_map(&random_map(32, 11, 37, seed));
        let query = map(17);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut frame = |seed, window| MemoryFrame {
            keys: map(seed),
            values: (0..11 * 37).map(|_| rng.random_range(0.0..1.0)).collect(),
            window,
        };
        for (top_k, radius) in [(5, 12), (3, 7), (1, 40)] {
            let (a, b) = (frame(1, Window::Global), frame(2, Window::Local(radius)));
            let cfg = ReadoutConfig {
                top_k,
                temperature: 0.1,
                min_radius: 0,
            };
            let fast = readout(&query, &[&a, &b], &cfg);
            let plain = readout_reference(&query, &[&a, &b], &cfg);
            let diff = max_diff(&fast, &plain);
            assert!(diff < 1e-4, "top-{top_k} radius {radius}: max diff {diff}");
        }
    }

    #[test]
    fn skipping_cells_that_cannot_see_the_object_changes_nothing() {
        let query = Keys::from_map(&random_map(32, 20, 30, 9));
        let mut a = frame(4, Window::Local(2));
        let mut b = frame(5, Window::Local(1));
        a.keys = Keys::from_map(&random_map(32, 20, 30, 4));
        b.keys = Keys::from_map(&random_map(32, 20, 30, 5));
        a.values = vec![0.0; 600];
        b.values = vec![0.0; 600];
        a.values[5 * 30 + 7] = 1.0;
        b.values[6 * 30 + 9] = 0.8;
        let cfg = ReadoutConfig {
            top_k: 3,
            temperature: 0.1,
            min_radius: 0,
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
            window: Window::Global,
        };
        let cfg = ReadoutConfig {
            top_k: 1,
            temperature: 0.1,
            min_radius: 0,
        };
        let out = readout(&Keys::from_map(&map), &[&mem], &cfg);
        assert_eq!(out[12], 1.0);
        assert_eq!(out.iter().filter(|&&v| v == 1.0).count(), 1);
    }
}
