//! Golden vectors computed by the reference PyTorch code (tests/fixtures/likelihood_f64.safetensors).
#![allow(clippy::needless_range_loop)] // index loops read like the formulas they check

use crate::common::*;
use qcs_likelihood::{EpConfig, EpScore, LikelihoodScore, Numerics, QcsSgmScore};

const SIGMA_T: f32 = 0.3;
const NOISE_STD: f32 = 0.05; // noise_var = 0.0025

#[test]
fn qcs_sgm_scores_match_the_reference() {
    for (name, device) in devices() {
        let op = fixture_operator(&device);
        let x_t = fixture_x_t(&device);
        let (y1, shape) = fixture("y_1bit");
        let shape = [shape[0], shape[1]];
        let (y3, _) = fixture("y_3bit");
        let (lo3, _) = fixture("lower_3bit");
        let (up3, _) = fixture("upper_3bit");
        let (z, _) = fixture("z_lin");
        let cases = [
            (
                "score_qcs_1bit",
                one_bit_observation(&y1, shape, NOISE_STD, &device),
            ),
            (
                "score_qcs_3bit",
                bin_observation(&y3, &lo3, &up3, shape, NOISE_STD, &device),
            ),
            (
                "score_linear",
                linear_observation(&z, shape, NOISE_STD, &device),
            ),
        ];
        for (key, obs) in cases {
            let (reference, _) = fixture(key);
            for numerics in [Numerics::Stable, Numerics::Reference, Numerics::Clamped] {
                let ours = host(
                    QcsSgmScore { numerics }
                        .score(&op, &obs, SIGMA_T, x_t.clone())
                        .unwrap(),
                );
                let err = rel_l2(&ours, &reference);
                eprintln!("{name} {key} {numerics:?}: relative error {err:e}");
                assert!(
                    err < 1e-4,
                    "{name} {key} {numerics:?}: relative L2 error {err:e}"
                );
            }
        }
    }
}

#[test]
fn ep_scores_match_the_reference() {
    for (name, device) in devices() {
        let op = fixture_operator(&device);
        let x_t = fixture_x_t(&device);
        let (y1, shape) = fixture("y_1bit");
        let shape = [shape[0], shape[1]];
        let (y3, _) = fixture("y_3bit");
        let (lo3, _) = fixture("lower_3bit");
        let (up3, _) = fixture("upper_3bit");
        let cases = [
            (
                "score_ep_1bit",
                one_bit_observation(&y1, shape, NOISE_STD, &device),
                Some(1),
            ),
            (
                "score_ep_3bit",
                bin_observation(&y3, &lo3, &up3, shape, NOISE_STD, &device),
                Some(3),
            ),
        ];
        for (key, obs, bits) in cases {
            let (reference, _) = fixture(key);
            let score = EpScore {
                config: EpConfig::reference(bits),
            };
            let ours = host(score.score(&op, &obs, SIGMA_T, x_t.clone()).unwrap());
            let err = rel_l2(&ours, &reference);
            eprintln!("{name} {key}: relative error {err:e}");
            assert!(err < 1e-3, "{name} {key}: relative L2 error {err:e}");
        }
    }
}
