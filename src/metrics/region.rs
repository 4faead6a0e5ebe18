//! J, the region similarity: intersection over union of two masks.

/// J between the pixels of `gt` equal to `gt_id` and the pixels of `res` equal to `res_id`.
/// Both empty gives 1, as in the toolkit's `db_eval_iou`.
pub fn jaccard(gt: &[u8], gt_id: u8, res: &[u8], res_id: u8) -> f64 {
    let (mut inter, mut union) = (0u64, 0u64);
    // Chunks small enough for u16 counters, so the inner loop vectorises.
    for (g, r) in gt.chunks(1 << 15).zip(res.chunks(1 << 15)) {
        let (mut i, mut u) = (0u16, 0u16);
        for (&g, &r) in g.iter().zip(r) {
            let (g, r) = ((g == gt_id) as u16, (r == res_id) as u16);
            i += g & r;
            u += g | r;
        }
        inter += u64::from(i);
        union += u64::from(u);
    }
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_and_empty_convention() {
        assert_eq!(jaccard(&[1, 1, 0, 0], 1, &[1, 0, 1, 0], 1), 1.0 / 3.0);
        assert_eq!(jaccard(&[0, 0], 1, &[0, 0], 1), 1.0);
        assert_eq!(jaccard(&[0, 0], 1, &[1, 0], 1), 0.0);
    }
}
