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

/// IoU of two masks of the same size, each pixel tested by `in_a` / `in_b`; two empty masks
/// agree completely. The one IoU of the project (the gate's oracle, training logs and J use it
/// or its fast special case [`jaccard`]).
pub fn iou_of<A, B>(a: &[A], b: &[B], in_a: impl Fn(&A) -> bool, in_b: impl Fn(&B) -> bool) -> f64 {
    let (mut inter, mut union) = (0usize, 0usize);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (in_a(x), in_b(y));
        inter += usize::from(x && y);
        union += usize::from(x || y);
    }
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// IoU of two boolean masks.
pub fn iou(a: &[bool], b: &[bool]) -> f64 {
    iou_of(a, b, |&x| x, |&y| y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_and_empty_convention() {
        assert_eq!(jaccard(&[1, 1, 0, 0], 1, &[1, 0, 1, 0], 1), 1.0 / 3.0);
        assert_eq!(jaccard(&[0, 0], 1, &[0, 0], 1), 1.0);
        assert_eq!(jaccard(&[0, 0], 1, &[1, 0], 1), 0.0);
        assert_eq!(iou(&[true, false], &[true, true]), 0.5);
        assert_eq!(iou(&[false], &[false]), 1.0);
        assert_eq!(
            iou_of(&[0.0f32, 1.0], &[1u8, 1], |&x| x > 0.5, |&y| y == 1),
            0.5
        );
    }
}
