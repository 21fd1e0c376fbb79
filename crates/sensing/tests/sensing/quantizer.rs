//! Quantizers: the fixture's 3-bit bins, and every value inside its own bin.
#![allow(clippy::needless_range_loop)] // index loops read like the formulas they check

use crate::common::fixture_tensor;
use proptest::prelude::*;
use qcs_sensing::quantize::{Quantizer, SignQuantizer, UniformQuantizer};
use qcs_sensing::{QuantizerSpec, SensingError, StepRule};

#[test]
fn three_bit_levels_and_bins_match_the_reference() {
    let (z, _) = fixture_tensor("likelihood_f64.safetensors", "z_lin");
    let (y_ref, _) = fixture_tensor("likelihood_f64.safetensors", "y_3bit");
    let (lo_ref, _) = fixture_tensor("likelihood_f64.safetensors", "lower_3bit");
    let (up_ref, _) = fixture_tensor("likelihood_f64.safetensors", "upper_3bit");
    let (delta, _) = fixture_tensor("likelihood_f64.safetensors", "delta_3bit");
    let delta = delta[0];
    // The reference takes Δ = (max − min)/2^Q over the whole batch: the same as a full-scale width of max − min.
    let zf: Vec<f32> = z.iter().map(|&v| v as f32).collect();
    let q = UniformQuantizer {
        bits: 3,
        step: StepRule::FullScale {
            width: (delta * 8.0) as f32,
        },
    };
    let out = q.quantize(&zf).unwrap();
    assert!((f64::from(out.delta) - delta).abs() < 1e-6);
    for i in 0..zf.len() {
        assert!((f64::from(out.y[i]) - y_ref[i]).abs() < 1e-5, "level {i}");
        // The reference marks open bins with ±1e20·Δ; qcs uses ±∞.
        let open_low = lo_ref[i] < -1e10;
        let open_high = up_ref[i] > 1e10;
        assert_eq!(out.lower[i] == f32::NEG_INFINITY, open_low, "lower {i}");
        assert_eq!(out.upper[i] == f32::INFINITY, open_high, "upper {i}");
        if !open_low {
            assert!((f64::from(out.lower[i]) - lo_ref[i]).abs() < 1e-5);
        }
        if !open_high {
            assert!((f64::from(out.upper[i]) - up_ref[i]).abs() < 1e-5);
        }
    }
    // Over the whole batch the reference's Δ is the data rule.
    let from_data = UniformQuantizer {
        bits: 3,
        step: StepRule::FromData,
    };
    assert!((f64::from(from_data.step_for(&zf).unwrap()) - delta).abs() < 1e-5);
}

#[test]
fn sign_quantizer_gives_half_lines() {
    let out = SignQuantizer.quantize(&[-2.0, 0.0, 3.5]).unwrap();
    assert_eq!(out.y, vec![-1.0, 1.0, 1.0]);
    assert_eq!(out.lower, vec![f32::NEG_INFINITY, 0.0, 0.0]);
    assert_eq!(out.upper, vec![0.0, f32::INFINITY, f32::INFINITY]);
}

#[test]
fn bad_quantizer_settings_are_errors() {
    assert!(matches!(
        QuantizerSpec::from_bits(Some(9), StepRule::FromData),
        Err(SensingError::BitsOutOfRange(9))
    ));
    assert!(matches!(
        QuantizerSpec::from_bits(Some(0), StepRule::FromData),
        Err(SensingError::BitsOutOfRange(0))
    ));
    let constant = UniformQuantizer {
        bits: 2,
        step: StepRule::FromData,
    };
    assert!(matches!(
        constant.quantize(&[1.0, 1.0]),
        Err(SensingError::InvalidSetting(_))
    ));
    let zero_width = QuantizerSpec::Uniform {
        bits: 2,
        step: StepRule::FullScale { width: 0.0 },
    };
    assert!(zero_width.build().is_err());
}

proptest! {
    #[test]
    fn every_value_lands_inside_its_own_bin(
        z in prop::collection::vec(-50.0f32..50.0, 2..64),
        bits in 1u32..=8,
        full_scale in prop::option::of(0.5f32..80.0),
    ) {
        let step = full_scale.map_or(StepRule::FromData, |width| StepRule::FullScale { width });
        let spec = QuantizerSpec::from_bits(Some(bits), step).unwrap();
        let q = spec.build().unwrap();
        let Ok(out) = q.quantize(&z) else {
            // Only a constant vector with the data rule may refuse.
            prop_assert!(full_scale.is_none() && z.iter().all(|v| *v == z[0]));
            return Ok(());
        };
        let mut levels: Vec<f32> = out.y.clone();
        levels.sort_by(f32::total_cmp);
        levels.dedup();
        prop_assert!(levels.len() <= 1 << bits);
        for i in 0..z.len() {
            prop_assert!(out.lower[i] <= z[i] && z[i] <= out.upper[i], "z {} not in [{}, {}]", z[i], out.lower[i], out.upper[i]);
            prop_assert!(out.lower[i] <= out.y[i] && out.y[i] <= out.upper[i]);
            if bits >= 2 && out.lower[i].is_finite() && out.upper[i].is_finite() {
                prop_assert!(((out.upper[i] - out.lower[i]) - out.delta).abs() <= 1e-4 * out.delta.max(1.0));
            }
        }
    }
}
