//! Per-object statistics over the evaluated frames, as the toolkit's `db_statistics`.

use serde::Serialize;

/// Mean, recall (fraction of frames > 0.5) and decay (first quarter minus last quarter).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stats {
    pub mean: f64,
    pub recall: f64,
    pub decay: f64,
}

/// Mean of the non-NaN values (NaN when there are none), like `np.nanmean`.
fn nanmean(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for v in values.filter(|v| !v.is_nan()) {
        sum += v;
        n += 1;
    }
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

/// The toolkit's statistics over the per-frame values `x` (first and last frame already
/// excluded). Decay uses its 4-bin rule: bin edges `uint8(round(linspace(1, T, 5) + 1e-10) - 1)`
/// with numpy's round-half-to-even, bins `x[e_i ..= e_{i+1}]` sharing their endpoints, and
/// D = mean(bin 0) − mean(bin 3). The `uint8` wrap for T > 256 is kept.
pub fn db_statistics(x: &[f64]) -> Stats {
    let mean = nanmean(x.iter().copied());
    let recall = nanmean(x.iter().map(|&v| if v > 0.5 { 1.0 } else { 0.0 }));
    let t = x.len();
    let step = (t as f64 - 1.0) / 4.0;
    let edges: Vec<usize> = (0..5)
        .map(|i| {
            // numpy's linspace: start + i * step, with the last value set to stop exactly.
            let v = if i == 4 {
                t as f64
            } else {
                1.0 + i as f64 * step
            };
            let id = (v + 1e-10).round_ties_even() - 1.0;
            (id as i64).rem_euclid(256) as usize
        })
        .collect();
    let bin = |i: usize| {
        let (a, b) = (edges[i], (edges[i + 1] + 1).min(t));
        nanmean(x.get(a..b).unwrap_or(&[]).iter().copied())
    };
    Stats {
        mean,
        recall,
        decay: bin(0) - bin(3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_bins_share_endpoints() {
        // T = 8: edges round(1, 2.75, 4.5, 6.25, 8) - 1 = 0, 2, 3 (4.5 rounds to 4), 5, 7.
        let x = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let s = db_statistics(&x);
        assert_eq!(s.mean, 3.0 / 8.0);
        assert_eq!(s.recall, 3.0 / 8.0);
        // bin 0 = x[0..=2] = 1, bin 3 = x[5..=7] = 0.
        assert_eq!(s.decay, 1.0);
    }
}
