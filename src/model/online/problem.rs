//! The target model's least-squares problem:
//! r = [ a_k · w_k ⊙ (conv3(F, P·X_k) − y_k) for each sample k ;  λ_P·P ;  λ_F·F ]
//! with a_k = data_scale · sqrt(γ_k). Joint over (P, F) at initialisation; over F alone, on
//! already projected features, for updates.

use super::conv::{conv3, conv3_grad, conv3_t};
use super::solver::LeastSquares;
use super::{Sample, TargetConfig};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

pub struct TargetProblem<'a> {
    samples: Vec<&'a Sample>,
    scales: Vec<f32>,
    /// Input channels of the projection; 0 for the filter-only problem.
    cin: usize,
    c: usize,
    reg: [f32; 2],
    precond: [f32; 2],
    projection: Array2<f32>,
    filter: Vec<f32>,
    /// P·X_k at the linearisation point (or X_k itself when filter-only).
    projected: Vec<Array2<f32>>,
}

impl<'a> TargetProblem<'a> {
    fn new(
        samples: Vec<&'a Sample>,
        gammas: &[f32],
        cin: usize,
        c: usize,
        reg: [f32; 2],
        precond: [f32; 2],
        data_scale: f32,
    ) -> Self {
        let scales = gammas.iter().map(|g| data_scale * g.sqrt()).collect();
        let projected = if cin == 0 {
            samples.iter().map(|s| s.features.clone()).collect()
        } else {
            Vec::new()
        };
        TargetProblem {
            samples,
            scales,
            cin,
            c,
            reg,
            precond,
            projection: Array2::zeros((c, cin)),
            filter: vec![0.0; c * 9],
            projected,
        }
    }

    /// Projection and filter together, on backbone features.
    pub fn joint(
        samples: &'a [Sample],
        gammas: &[f32],
        cin: usize,
        c: usize,
        cfg: &TargetConfig,
        data_scale: f32,
    ) -> Self {
        Self::new(
            samples.iter().collect(),
            gammas,
            cin,
            c,
            cfg.reg,
            cfg.precond,
            data_scale,
        )
    }

    /// The filter alone, on projected features.
    pub fn filter_only(
        samples: &[&'a Sample],
        gammas: &[f32],
        c: usize,
        cfg: &TargetConfig,
        data_scale: f32,
    ) -> Self {
        Self::new(
            samples.to_vec(),
            gammas,
            0,
            c,
            [0.0, cfg.filter_reg],
            [1.0, cfg.filter_precond],
            data_scale,
        )
    }

    fn joint_mode(&self) -> bool {
        self.cin > 0
    }

    fn np(&self) -> usize {
        self.c * self.cin
    }

    /// Each sample with its projected features and scale, in parallel, in order.
    fn per_sample(
        &self,
    ) -> impl IndexedParallelIterator<Item = ((&&'a Sample, &Array2<f32>), &f32)> + '_ {
        self.samples
            .par_iter()
            .zip(self.projected.par_iter())
            .zip(self.scales.par_iter())
    }

    fn flat(m: &Array2<f32>) -> std::borrow::Cow<'_, [f32]> {
        match m.as_slice() {
            Some(s) => std::borrow::Cow::Borrowed(s),
            None => std::borrow::Cow::Owned(m.iter().copied().collect()),
        }
    }
}

impl LeastSquares for TargetProblem<'_> {
    fn blocks(&self) -> Vec<(usize, f32)> {
        if self.joint_mode() {
            vec![(self.np(), self.precond[0]), (self.c * 9, self.precond[1])]
        } else {
            vec![(self.c * 9, self.precond[1])]
        }
    }

    fn linearize(&mut self, x: &[f32]) {
        if self.joint_mode() {
            let np = self.np();
            self.projection =
                Array2::from_shape_vec((self.c, self.cin), x[..np].to_vec()).expect("shape");
            self.filter = x[np..].to_vec();
            let projection = &self.projection;
            self.projected = self
                .samples
                .par_iter()
                .map(|s| projection.dot(&s.features))
                .collect();
        } else {
            self.filter = x.to_vec();
        }
    }

    fn residual(&self) -> Vec<f32> {
        // Samples are independent: computed in parallel, concatenated in order (the same
        // numbers as one after the other).
        let parts: Vec<Vec<f32>> = self
            .per_sample()
            .map(|((s, z), a)| {
                let score = conv3(&self.filter, &Self::flat(z), self.c, s.height, s.width);
                (score.iter().zip(&s.label).zip(&s.weight))
                    .map(|((v, y), w)| a * w * (v - y))
                    .collect()
            })
            .collect();
        let mut r = parts.concat();
        if self.joint_mode() {
            r.extend(self.projection.iter().map(|p| self.reg[0] * p));
        }
        r.extend(self.filter.iter().map(|f| self.reg[1] * f));
        r
    }

    fn jvp(&self, dx: &[f32]) -> Vec<f32> {
        let np = if self.joint_mode() { self.np() } else { 0 };
        let (dp, df) = dx.split_at(np);
        let dp = self
            .joint_mode()
            .then(|| ArrayView2::from_shape((self.c, self.cin), dp).expect("shape"));
        let parts: Vec<Vec<f32>> = self
            .per_sample()
            .map(|((s, z), a)| {
                let (h, w) = (s.height, s.width);
                let mut ds = conv3(df, &Self::flat(z), self.c, h, w);
                if let Some(dp) = &dp {
                    let dz = dp.dot(&s.features);
                    let extra = conv3(&self.filter, &Self::flat(&dz), self.c, h, w);
                    ds.iter_mut().zip(extra).for_each(|(d, e)| *d += e);
                }
                ds.iter().zip(&s.weight).map(|(d, wt)| a * wt * d).collect()
            })
            .collect();
        let mut r = parts.concat();
        if self.joint_mode() {
            r.extend(dx[..np].iter().map(|p| self.reg[0] * p));
        }
        r.extend(df.iter().map(|f| self.reg[1] * f));
        r
    }

    fn vjp(&self, r: &[f32]) -> Vec<f32> {
        let np = if self.joint_mode() { self.np() } else { 0 };
        let mut starts = Vec::with_capacity(self.samples.len());
        let mut offset = 0;
        for s in &self.samples {
            starts.push(offset);
            offset += s.height * s.width;
        }
        // Each sample's gradients in parallel, summed in sample order as before.
        let parts: Vec<(Vec<f32>, Option<Array2<f32>>)> = self
            .per_sample()
            .zip(starts.into_par_iter())
            .map(|(((s, z), a), start)| {
                let (h, w) = (s.height, s.width);
                let n = h * w;
                let g: Vec<f32> = r[start..start + n]
                    .iter()
                    .zip(&s.weight)
                    .map(|(v, wt)| a * wt * v)
                    .collect();
                let gf = conv3_grad(&Self::flat(z), &g, self.c, h, w);
                let gp = self.joint_mode().then(|| {
                    Array2::from_shape_vec((self.c, n), conv3_t(&self.filter, &g, self.c, h, w))
                        .expect("shape")
                        .dot(&s.features.t())
                });
                (gf, gp)
            })
            .collect();
        let mut gp = Array2::<f32>::zeros((self.c, self.cin));
        let mut gf = vec![0f32; self.c * 9];
        for (f, p) in parts {
            f.iter().zip(gf.iter_mut()).for_each(|(v, acc)| *acc += v);
            if let Some(p) = p {
                gp += &p;
            }
        }
        let mut out = Vec::with_capacity(np + self.c * 9);
        if self.joint_mode() {
            out.extend(
                gp.iter()
                    .zip(&r[offset..offset + np])
                    .map(|(g, v)| g + self.reg[0] * v),
            );
            offset += np;
        }
        out.extend(
            gf.iter()
                .zip(&r[offset..])
                .map(|(g, v)| g + self.reg[1] * v),
        );
        out
    }
}
