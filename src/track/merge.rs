//! Merging the objects' probabilities into one label map: soft aggregation in log-odds
//! (RGMP's), not FRTM's softmax of the odds applied twice. Background probability is
//! Π(1 − p_i); each pixel takes the id with the largest aggregated probability.

/// Per-pixel merge of `probs` (one full-resolution map per object, in `ids` order).
/// Returns the label map and each object's aggregated probability masked to its winning
/// pixels (what the target models learn from).
pub fn merge(ids: &[u8], probs: &[Vec<f32>], n: usize) -> (Vec<u8>, Vec<Vec<f32>>) {
    if let ([id], [p]) = (ids, probs) {
        // One object: the aggregation reduces to p > 1/2.
        let labels = p.iter().map(|&v| if v > 0.5 { *id } else { 0 }).collect();
        let soft = p.iter().map(|&v| if v > 0.5 { v } else { 0.0 }).collect();
        return (labels, vec![soft]);
    }
    let mut labels = vec![0u8; n];
    let mut soft = vec![vec![0f32; n]; probs.len()];
    let mut logit = vec![0f32; probs.len() + 1];
    for px in 0..n {
        let (max, total) = log_odds(probs, px, &mut logit);
        let (best, _) = logit
            .iter()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |acc, (i, &l)| if l > acc.1 { (i, l) } else { acc },
            );
        if best > 0 {
            labels[px] = ids[best - 1];
            soft[best - 1][px] = (logit[best] - max).exp() / total;
        }
    }
    (labels, soft)
}

/// The label map of [`merge`] alone (one object: a threshold, no soft map built).
pub fn labels(ids: &[u8], probs: &[Vec<f32>], n: usize) -> Vec<u8> {
    if let ([id], [p]) = (ids, probs) {
        return p.iter().map(|&v| if v > 0.5 { *id } else { 0 }).collect();
    }
    merge(ids, probs, n).0
}

/// Fills `logit` with the log-odds of background (0) and each object at pixel `px`; returns
/// their maximum and Σ exp(logit − max), the softmax's parts.
fn log_odds(probs: &[Vec<f32>], px: usize, logit: &mut [f32]) -> (f32, f32) {
    const EPS: f32 = 1e-7;
    let mut bg = 1f32;
    for (k, p) in probs.iter().enumerate() {
        let v = p[px].clamp(EPS, 1.0 - EPS);
        bg *= 1.0 - v;
        logit[k + 1] = (v / (1.0 - v)).ln();
    }
    let bg = bg.clamp(EPS, 1.0 - EPS);
    logit[0] = (bg / (1.0 - bg)).ln();
    let max = logit.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let total: f32 = logit.iter().map(|l| (l - max).exp()).sum();
    (max, total)
}

/// Each object's aggregated probability at every pixel (the soft aggregation of [`merge`],
/// not masked to the winning pixels): a soft matte per object. One object: its probability.
pub fn aggregate(probs: &[Vec<f32>]) -> Vec<Vec<f32>> {
    if probs.len() <= 1 {
        return probs.to_vec();
    }
    let n = probs[0].len();
    let mut out = vec![vec![0f32; n]; probs.len()];
    let mut logit = vec![0f32; probs.len() + 1];
    for px in 0..n {
        let (max, total) = log_odds(probs, px, &mut logit);
        for (k, o) in out.iter_mut().enumerate() {
            o[px] = (logit[k + 1] - max).exp() / total;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_is_a_threshold_at_one_half() {
        let (l, _) = merge(&[3], &[vec![0.2, 0.49, 0.51, 0.9]], 4);
        assert_eq!(l, vec![0, 0, 3, 3]);
    }

    #[test]
    fn the_most_confident_object_wins() {
        let (l, soft) = merge(&[1, 2], &[vec![0.9, 0.6, 0.1], vec![0.7, 0.8, 0.2]], 3);
        assert_eq!(l, vec![1, 2, 0]);
        assert!(soft[0][0] > 0.5 && soft[1][0] == 0.0);
    }

    #[test]
    fn aggregated_shares_sum_below_one_and_follow_the_winner() {
        let a = aggregate(&[vec![0.9, 0.1], vec![0.7, 0.2]]);
        assert!(a[0][0] > a[1][0] && a[0][0] + a[1][0] < 1.0);
        assert!(a[0][1] < 0.5 && a[1][1] < 0.5);
    }
}
