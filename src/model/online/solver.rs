//! Gauss–Newton with preconditioned conjugate gradient for nonlinear least squares
//! min ½‖r(x)‖², as FRTM learns its target model: per GN step, CG solves JᵀJ Δ = −Jᵀr with a
//! constant diagonal preconditioner per parameter block, Polak–Ribière directions restarted at
//! every GN step, and x += Δ.

/// A least-squares problem over a flat parameter vector made of blocks.
pub trait LeastSquares {
    /// Length and preconditioner value of each parameter block, in order.
    fn blocks(&self) -> Vec<(usize, f32)>;
    /// Fixes the point the Jacobian is taken at.
    fn linearize(&mut self, x: &[f32]);
    /// r(x) at the linearisation point.
    fn residual(&self) -> Vec<f32>;
    /// J·dx.
    fn jvp(&self, dx: &[f32]) -> Vec<f32>;
    /// Jᵀ·r.
    fn vjp(&self, r: &[f32]) -> Vec<f32>;
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

fn loss(r: &[f32]) -> f64 {
    0.5 * dot(r, r)
}

/// Runs one GN step per entry of `cg_iters` (that many CG iterations each), updating `x`.
/// Returns the loss before the first step and after each step.
pub fn gauss_newton_cg<P: LeastSquares>(
    problem: &mut P,
    x: &mut [f32],
    cg_iters: &[usize],
) -> Vec<f64> {
    let blocks = problem.blocks();
    let precond: Vec<f32> = blocks
        .iter()
        .flat_map(|&(len, m)| std::iter::repeat_n(m, len))
        .collect();
    assert_eq!(precond.len(), x.len(), "parameter blocks do not cover x");
    let mut losses = Vec::with_capacity(cg_iters.len() + 1);
    problem.linearize(x);
    for &iters in cg_iters {
        let f0 = problem.residual();
        losses.push(loss(&f0));
        // b = −Jᵀ f0; solve (JᵀJ) Δ = b from Δ = 0.
        let mut r: Vec<f32> = problem.vjp(&f0).into_iter().map(|v| -v).collect();
        let mut delta = vec![0f32; x.len()];
        let mut p = vec![0f32; x.len()];
        let (mut rho, mut r_prev) = (1f64, Vec::new());
        for i in 0..iters {
            let z: Vec<f32> = r.iter().zip(&precond).map(|(a, m)| a / m).collect();
            let rho_prev = rho;
            rho = dot(&r, &z);
            if rho.abs() < 1e-30 {
                break;
            }
            if i == 0 {
                p.copy_from_slice(&z);
            } else {
                // Polak–Ribière, clipped at 0.
                let beta = ((rho - dot(&r_prev, &z)) / rho_prev).max(0.0) as f32;
                for (pi, zi) in p.iter_mut().zip(&z) {
                    *pi = zi + beta * *pi;
                }
            }
            let q = problem.vjp(&problem.jvp(&p));
            let pq = dot(&p, &q);
            if pq <= 0.0 {
                break;
            }
            let alpha = (rho / pq) as f32;
            for (d, pi) in delta.iter_mut().zip(&p) {
                *d += alpha * pi;
            }
            if i + 1 < iters {
                r_prev = r.clone();
                for (ri, qi) in r.iter_mut().zip(&q) {
                    *ri -= alpha * qi;
                }
            }
        }
        for (xi, d) in x.iter_mut().zip(&delta) {
            *xi += d;
        }
        problem.linearize(x);
    }
    losses.push(loss(&problem.residual()));
    losses
}
