//! Every score equals the numerical gradient (f64) of the log-likelihood it differentiates.
#![allow(clippy::needless_range_loop)] // index loops read like the formulas they check

use crate::common::*;
use burn::prelude::*;
use qcs_likelihood::{EpConfig, EpScore, LikelihoodScore, Observation, QcsSgmScore};
use qcs_sensing::operator::DenseOperator;
use qcs_sensing::quantize::{Quantizer, SignQuantizer, UniformQuantizer};
use qcs_sensing::{Family, StepRule};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

const B: usize = 2;
const M: usize = 7;
const N: usize = 12;

struct Problem {
    a: Vec<f64>,
    x_t: Vec<f64>,
    y: Vec<f64>,
    lower: Vec<f64>,
    upper: Vec<f64>,
}

fn problem(
    bits: Option<u32>,
    family: Family,
    seed: u64,
    device: &Device,
) -> (DenseOperator, Problem) {
    let op = DenseOperator::generate(&spec(family, M, [1, 3, 4], seed), device).unwrap();
    let a = host(op.matrix());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x_true: Vec<f64> = (0..B * N).map(|_| rng.random_range(0.0..1.0)).collect();
    let x_t: Vec<f64> = x_true
        .iter()
        .map(|v| v + 0.4 * rng.sample::<f64, _>(StandardNormal))
        .collect();
    let z: Vec<f32> = (0..B * M)
        .map(|k| {
            let (b, m) = (k / M, k % M);
            let dot: f64 = (0..N).map(|j| a[m * N + j] * x_true[b * N + j]).sum();
            (dot + 0.1 * rng.sample::<f64, _>(StandardNormal)) as f32
        })
        .collect();
    let (mut y, mut lower, mut upper) = (vec![], vec![], vec![]);
    for row in z.chunks(M) {
        let q = match bits {
            None => qcs_sensing::quantize::Quantized {
                y: row.to_vec(),
                lower: row.to_vec(),
                upper: row.to_vec(),
                delta: 0.0,
            },
            Some(1) => SignQuantizer.quantize(row).unwrap(),
            Some(b) => UniformQuantizer {
                bits: b,
                step: StepRule::FromData,
            }
            .quantize(row)
            .unwrap(),
        };
        y.extend(q.y.iter().map(|&v| f64::from(v)));
        lower.extend(q.lower.iter().map(|&v| f64::from(v)));
        upper.extend(q.upper.iter().map(|&v| f64::from(v)));
    }
    (
        op,
        Problem {
            a,
            x_t,
            y,
            lower,
            upper,
        },
    )
}

fn observation(p: &Problem, bits: Option<u32>, noise_std: f32, device: &Device) -> Observation {
    match bits {
        None => linear_observation(&p.y, [B, M], noise_std, device),
        Some(_) => bin_observation(&p.y, &p.lower, &p.upper, [B, M], noise_std, device),
    }
}

/// Σ_m log P_m with per-measurement means μ_m = (A·x)_m + shift_m and standard deviations s_m.
fn log_likelihood(p: &Problem, x: &[f64], shift: &[f64], std: &[f64], linear: bool) -> f64 {
    let mut total = 0.0;
    for b in 0..B {
        for m in 0..M {
            let k = b * M + m;
            let mu: f64 = (0..N).map(|j| p.a[m * N + j] * x[b * N + j]).sum::<f64>() + shift[k];
            total += if linear {
                -0.5 * (p.y[k] - mu).powi(2) / std[k].powi(2)
            } else {
                log_bin_mass((p.lower[k] - mu) / std[k], (p.upper[k] - mu) / std[k])
            };
        }
    }
    total
}

fn numerical_gradient(p: &Problem, shift: &[f64], std: &[f64], linear: bool) -> Vec<f64> {
    let h = 1e-5;
    (0..B * N)
        .map(|i| {
            let (mut plus, mut minus) = (p.x_t.clone(), p.x_t.clone());
            plus[i] += h;
            minus[i] -= h;
            (log_likelihood(p, &plus, shift, std, linear)
                - log_likelihood(p, &minus, shift, std, linear))
                / (2.0 * h)
        })
        .collect()
}

fn x_tensor(p: &Problem, device: &Device) -> Tensor<4> {
    let v: Vec<f32> = p.x_t.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(v, [B, 1, 3, 4]), device)
}

#[test]
fn qcs_sgm_scores_match_finite_differences() {
    let (sigma_t, noise_std) = (0.5f32, 0.1f32);
    for (name, device) in devices() {
        for bits in [None, Some(1), Some(2), Some(3)] {
            for seed in 0..3 {
                let (op, p) = problem(bits, Family::Gaussian, seed, &device);
                let obs = observation(&p, bits, noise_std, &device);
                let ours = host(
                    QcsSgmScore::default()
                        .score(&op, &obs, sigma_t, x_tensor(&p, &device))
                        .unwrap(),
                );
                let std: Vec<f64> = (0..B * M)
                    .map(|k| {
                        let m = k % M;
                        let norm: f64 = (0..N).map(|j| p.a[m * N + j].powi(2)).sum();
                        (f64::from(noise_std).powi(2) + f64::from(sigma_t).powi(2) * norm).sqrt()
                    })
                    .collect();
                let fd = numerical_gradient(&p, &[0.0; B * M], &std, bits.is_none());
                let err = rel_l2(&ours, &fd);
                eprintln!("relative error {err:e}");
                assert!(
                    err < 1e-4,
                    "{name} bits {bits:?} seed {seed}: relative error {err:e}"
                );
            }
        }
    }
}

#[test]
fn ep_scores_match_finite_differences_under_their_cavity() {
    let (sigma_t, noise_std) = (0.5f32, 0.1f32);
    for (name, device) in devices() {
        for bits in [Some(1), Some(3)] {
            for family in [Family::Gaussian, Family::IllConditioned { kappa: 1000.0 }] {
                let (op, p) = problem(bits, family, 4, &device);
                let obs = observation(&p, bits, noise_std, &device);
                let ep = EpScore {
                    config: EpConfig::for_bits(bits),
                };
                let x = x_tensor(&p, &device);
                let ours = host(ep.score(&op, &obs, sigma_t, x.clone()).unwrap());
                let (h, tau) = ep.messages(&op, &obs, sigma_t, x).unwrap();
                let (h, tau) = (host(h), host(tau));
                let shift: Vec<f64> = (0..B * M).map(|k| h[k] / tau[k / M]).collect();
                let std: Vec<f64> = (0..B * M).map(|k| 1.0 / tau[k / M].sqrt()).collect();
                let fd = numerical_gradient(&p, &shift, &std, false);
                let err = rel_l2(&ours, &fd);
                eprintln!("relative error {err:e}");
                assert!(
                    err < 1e-4,
                    "{name} bits {bits:?} {family:?}: relative error {err:e}"
                );
            }
        }
    }
}

#[test]
fn ep_with_linear_measurements_is_the_exact_gaussian_likelihood() {
    // log p(y | x_t) = −½ (y − A·x)ᵀ (σ_t² A·Aᵀ + σ² I)⁻¹ (y − A·x): its gradient is Aᵀ·C⁻¹·(y − A·x).
    let (sigma_t, noise_std) = (0.5f32, 0.1f32);
    let device = qcs_testkit::device();
    let (op, p) = problem(None, Family::Gaussian, 9, &device);
    let obs = observation(&p, None, noise_std, &device);
    let ours = host(
        EpScore::default()
            .score(&op, &obs, sigma_t, x_tensor(&p, &device))
            .unwrap(),
    );
    // Solve C·v = r on the host by Gaussian elimination.
    let c: Vec<f64> = (0..M * M)
        .map(|k| {
            let (i, l) = (k / M, k % M);
            let dot: f64 = (0..N).map(|j| p.a[i * N + j] * p.a[l * N + j]).sum();
            f64::from(sigma_t).powi(2) * dot
                + if i == l {
                    f64::from(noise_std).powi(2)
                } else {
                    0.0
                }
        })
        .collect();
    let mut expected = vec![0.0; B * N];
    for b in 0..B {
        let mut aug: Vec<Vec<f64>> = (0..M)
            .map(|i| {
                let ax: f64 = (0..N).map(|j| p.a[i * N + j] * p.x_t[b * N + j]).sum();
                let mut row: Vec<f64> = c[i * M..(i + 1) * M].to_vec();
                row.push(p.y[b * M + i] - ax);
                row
            })
            .collect();
        for col in 0..M {
            let pivot = (col..M)
                .max_by(|&x, &y| aug[x][col].abs().total_cmp(&aug[y][col].abs()))
                .unwrap();
            aug.swap(col, pivot);
            for row in 0..M {
                if row != col {
                    let f = aug[row][col] / aug[col][col];
                    let pivot_row = aug[col].clone();
                    for (v, pv) in aug[row].iter_mut().zip(&pivot_row) {
                        *v -= f * pv;
                    }
                }
            }
        }
        let v: Vec<f64> = (0..M).map(|i| aug[i][M] / aug[i][i]).collect();
        for j in 0..N {
            expected[b * N + j] = (0..M).map(|i| p.a[i * N + j] * v[i]).sum();
        }
    }
    let err = rel_l2(&ours, &expected);
    assert!(err < 1e-4, "relative error {err:e}");
}

/// vᵀ·(−∇² log p)·v by central second differences of the f64 log-likelihood.
fn curvature_along(p: &Problem, v: &[f64], std: &[f64], linear: bool) -> f64 {
    let h = 1e-3;
    let at = |t: f64| {
        let x: Vec<f64> = p.x_t.iter().zip(v).map(|(x, d)| x + t * d).collect();
        log_likelihood(p, &x, &[0.0; B * M], std, linear)
    };
    -(at(h) - 2.0 * at(0.0) + at(-h)) / (h * h)
}

#[test]
fn curvature_bound_holds_is_tight_for_linear_data_and_is_absent_for_gaussian_one_bit() {
    let noise_std = 0.1f32;
    let device = qcs_testkit::device();
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for bits in [None, Some(2), Some(3)] {
        let (op, p) = problem(bits, Family::Gaussian, 5, &device);
        let obs = observation(&p, bits, noise_std, &device);
        let bound = QcsSgmScore::default()
            .curvature(&op, &obs)
            .unwrap()
            .expect("a bound for linear and Q-bit measurements");
        let norms: Vec<f64> = (0..M)
            .map(|m| (0..N).map(|j| p.a[m * N + j].powi(2)).sum())
            .collect();
        let min_norm = norms.iter().copied().fold(f64::INFINITY, f64::min);
        assert!((bound.min_row_norm_sq - min_norm).abs() < 1e-5 * min_norm);
        // ‖A‖² on the host: power iteration on AᵀA, run to convergence.
        let mut top = vec![1.0; N];
        for _ in 0..2000 {
            let az: Vec<f64> = (0..M)
                .map(|m| (0..N).map(|j| p.a[m * N + j] * top[j]).sum())
                .collect();
            top = (0..N)
                .map(|j| (0..M).map(|m| p.a[m * N + j] * az[m]).sum())
                .collect();
            let norm = top.iter().map(|v| v * v).sum::<f64>().sqrt();
            top.iter_mut().for_each(|v| *v /= norm);
        }
        let exact: f64 = (0..M)
            .map(|m| (0..N).map(|j| p.a[m * N + j] * top[j]).sum::<f64>().powi(2))
            .sum();
        assert!(
            (bound.operator_norm_sq - exact).abs() < 0.02 * exact,
            "‖A‖² {} against {exact}",
            bound.operator_norm_sq
        );
        for sigma_t in [0.0f64, 0.05, 0.5, 5.0] {
            let limit = bound.at(sigma_t);
            let std: Vec<f64> = (0..B * M)
                .map(|k| (f64::from(noise_std).powi(2) + sigma_t.powi(2) * norms[k % M]).sqrt())
                .collect();
            for _ in 0..20 {
                let v: Vec<f64> = (0..B * N).map(|_| rng.sample(StandardNormal)).collect();
                let q = curvature_along(&p, &v, &std, bits.is_none())
                    / v.iter().map(|x| x * x).sum::<f64>();
                assert!(
                    q <= limit * 1.001,
                    "bits {bits:?} σ_t {sigma_t}: curvature {q} above the bound {limit}"
                );
            }
            if bits.is_none() && sigma_t == 0.0 {
                // Every s_m = σ: the Hessian is AᵀA/σ², and the bound is its largest eigenvalue.
                let v: Vec<f64> = top.iter().chain(top.iter()).copied().collect();
                let q = curvature_along(&p, &v, &std, true) / 2.0;
                assert!((q - limit).abs() < 0.02 * limit, "{q} against {limit}");
            }
        }
    }
    let (op, p) = problem(Some(1), Family::Gaussian, 5, &device);
    let obs = observation(&p, Some(1), noise_std, &device);
    assert_eq!(QcsSgmScore::default().curvature(&op, &obs).unwrap(), None);
    // 1-bit with strongly overlapping rows: the pulls add up from both sides, and the bound applies.
    let spec = spec(Family::IllConditioned { kappa: 1000.0 }, 40, [1, 8, 8], 5);
    let op = DenseOperator::generate(&spec, &device).unwrap();
    let signs: Vec<f64> = (0..40)
        .map(|m| if m % 3 == 0 { -1.0 } else { 1.0 })
        .collect();
    let obs = one_bit_observation(&signs, [1, 40], noise_std, &device);
    let bound = QcsSgmScore::default().curvature(&op, &obs).unwrap();
    assert!(
        bound.is_some_and(|b| b.operator_norm_sq > 4.0 * b.min_row_norm_sq),
        "{bound:?}"
    );
    let (op, p) = problem(Some(3), Family::Gaussian, 5, &device);
    let obs = observation(&p, Some(3), noise_std, &device);
    let reference = QcsSgmScore {
        numerics: qcs_likelihood::Numerics::Reference,
    };
    assert_eq!(reference.curvature(&op, &obs).unwrap(), None);
    // The clamped formula under qcs's step control takes the stable numerics' bound.
    let clamped = QcsSgmScore {
        numerics: qcs_likelihood::Numerics::Clamped,
    };
    let stable_bound = QcsSgmScore::default().curvature(&op, &obs).unwrap();
    assert!(stable_bound.is_some());
    assert_eq!(clamped.curvature(&op, &obs).unwrap(), stable_bound);
}
