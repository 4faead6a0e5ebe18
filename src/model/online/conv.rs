//! The 3×3, padding-1, single-output convolution of the target model, its transpose and its
//! weight gradient, on channel-major maps (c × h × w).

/// s[y,x] = Σ_c,dy,dx f[c,dy,dx] · z[c, y+dy−1, x+dx−1] (zero outside).
pub fn conv3(f: &[f32], z: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut s = vec![0f32; h * w];
    for ch in 0..c {
        let zc = &z[ch * h * w..(ch + 1) * h * w];
        for dy in 0..3 {
            for dx in 0..3 {
                let k = f[ch * 9 + dy * 3 + dx];
                if k == 0.0 {
                    continue;
                }
                for_each_tap(h, w, dy, dx, |o, i| s[o] += k * zc[i]);
            }
        }
    }
    s
}

/// The transpose of [`conv3`] with respect to z: g (h × w) → (c × h × w).
pub fn conv3_t(f: &[f32], g: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0f32; c * h * w];
    for ch in 0..c {
        let oc = &mut out[ch * h * w..(ch + 1) * h * w];
        for dy in 0..3 {
            for dx in 0..3 {
                let k = f[ch * 9 + dy * 3 + dx];
                for_each_tap(h, w, dy, dx, |o, i| oc[i] += k * g[o]);
            }
        }
    }
    out
}

/// The gradient of ⟨g, conv3(f, z)⟩ with respect to f: (c × 9).
pub fn conv3_grad(z: &[f32], g: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0f32; c * 9];
    for ch in 0..c {
        let zc = &z[ch * h * w..(ch + 1) * h * w];
        for dy in 0..3 {
            for dx in 0..3 {
                let mut acc = 0f32;
                for_each_tap(h, w, dy, dx, |o, i| acc += g[o] * zc[i]);
                out[ch * 9 + dy * 3 + dx] = acc;
            }
        }
    }
    out
}

/// Calls `f(output index, input index)` for every output pixel whose tap (dy, dx) falls
/// inside the image.
#[inline]
fn for_each_tap(h: usize, w: usize, dy: usize, dx: usize, mut f: impl FnMut(usize, usize)) {
    let (y0, y1) = (1usize.saturating_sub(dy), (h + 1 - dy).min(h));
    let (x0, x1) = (1usize.saturating_sub(dx), (w + 1 - dx).min(w));
    for y in y0..y1 {
        let iy = y + dy - 1;
        for x in x0..x1 {
            f(y * w + x, iy * w + x + dx - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_and_gradient_are_adjoint_to_the_convolution() {
        let (c, h, w) = (2, 4, 5);
        let f: Vec<f32> = (0..c * 9).map(|i| (i as f32 * 0.37).sin()).collect();
        let z: Vec<f32> = (0..c * h * w).map(|i| (i as f32 * 0.71).cos()).collect();
        let g: Vec<f32> = (0..h * w).map(|i| (i as f32 * 1.3).sin()).collect();
        let s = conv3(&f, &z, c, h, w);
        let lhs: f32 = s.iter().zip(&g).map(|(a, b)| a * b).sum();
        let zt = conv3_t(&f, &g, c, h, w);
        let rhs: f32 = zt.iter().zip(&z).map(|(a, b)| a * b).sum();
        let gf = conv3_grad(&z, &g, c, h, w);
        let rhs2: f32 = gf.iter().zip(&f).map(|(a, b)| a * b).sum();
        assert!(
            (lhs - rhs).abs() < 1e-4 && (lhs - rhs2).abs() < 1e-4,
            "{lhs} {rhs} {rhs2}"
        );
        // Centre tap only: the identity.
        let mut id = vec![0f32; 9];
        id[4] = 1.0;
        assert_eq!(conv3(&id, &z[..h * w], 1, h, w), z[..h * w].to_vec());
    }
}
