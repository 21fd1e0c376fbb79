//! Settings of a denoising-score-matching run.

use burn::config::Config;

use crate::error::ScoreNetError;
use crate::ncsnv2::NcsnV2Config;

/// Everything that determines a training run; saved in every checkpoint, so a run can be resumed
/// and reproduced. The defaults are the reference NCSNv2 settings (Adam with lr 1e-4,
/// β = (0.9, 0.999), ε = 1e-8, EMA rate 0.999, batch 128).
#[derive(Config, Debug)]
pub struct TrainConfig {
    /// The network to train (its noise schedule included).
    pub model: NcsnV2Config,
    /// Total number of optimizer steps of the run.
    pub steps: usize,
    /// Images per batch.
    #[config(default = 128)]
    pub batch_size: usize,
    /// Adam learning rate: the peak of the schedule ([`TrainConfig::learning_rate_at`]), constant
    /// when there is no warm-up and no `learning_rate_end`.
    #[config(default = 1e-4)]
    pub learning_rate: f64,
    /// Steps over which the learning rate rises linearly from `learning_rate / warmup_steps` to
    /// `learning_rate` (`None` or 0: none). Useful where Adam starts afresh on trained weights
    /// (`init`). An `Option` so that checkpoints written before it existed still read.
    pub warmup_steps: Option<usize>,
    /// Where set, the learning rate falls from `learning_rate` after the warm-up to this value at
    /// step `steps`, along half a cosine. Changing `steps` on resume stretches what is left of the
    /// decay.
    pub learning_rate_end: Option<f64>,
    /// Adam `β₁`.
    #[config(default = 0.9)]
    pub beta1: f32,
    /// Adam `β₂`.
    #[config(default = 0.999)]
    pub beta2: f32,
    /// Adam `ε`.
    #[config(default = 1e-8)]
    pub epsilon: f32,
    /// EMA rate `μ` of `θ_ema ← μ θ_ema + (1 − μ) θ`; the EMA weights are the ones for sampling.
    #[config(default = 0.999)]
    pub ema_rate: f64,
    /// Flip each training image left-right with probability ½ (natural images, not digits).
    #[config(default = false)]
    pub horizontal_flip: bool,
    /// Largest global L2 norm of the gradient; larger gradients are scaled down to it.
    pub grad_clip: Option<f32>,
    /// Steps between checkpoints.
    #[config(default = 500)]
    pub checkpoint_every: usize,
    /// Steps between rows of the per-noise-level loss log.
    #[config(default = 100)]
    pub log_every: usize,
    /// Number of noise-level buckets of the loss log (levels split into equal consecutive runs).
    #[config(default = 10)]
    pub level_buckets: usize,
    /// Seed of every random draw of the run: batches, flips, levels, noise, initial weights.
    #[config(default = 0)]
    pub seed: u64,
    /// SafeTensors weights (reference names, any float dtype) to start from instead of random
    /// weights: fine-tuning, continuing a run whose checkpoints are gone, or growing a network
    /// (weights of a smaller ngf that divides the model's are widened first, computing the same
    /// scores: [`crate::widen`]). The EMA starts from them too; Adam starts afresh. Read only when
    /// a run starts, kept for the record.
    pub init: Option<String>,
}

impl TrainConfig {
    /// Checks that the run can work.
    pub fn validate(&self) -> Result<(), ScoreNetError> {
        self.model.validate()?;
        let fail = |msg: String| Err(ScoreNetError::InvalidTrainConfig(msg));
        let positive = [
            ("batch_size", self.batch_size),
            ("checkpoint_every", self.checkpoint_every),
            ("log_every", self.log_every),
            ("level_buckets", self.level_buckets),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return fail(format!("{name} must be positive"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return fail(format!(
                "learning_rate must be positive, got {}",
                self.learning_rate
            ));
        }
        if let Some(end) = self.learning_rate_end {
            if !(end.is_finite() && (0.0..=self.learning_rate).contains(&end)) {
                return fail(format!(
                    "learning_rate_end must be in [0, learning_rate = {}], got {end}",
                    self.learning_rate
                ));
            }
        }
        if self.warmup() > self.steps {
            return fail(format!(
                "warmup_steps ({}) exceeds the run's {} steps",
                self.warmup(),
                self.steps
            ));
        }
        for (name, beta) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return fail(format!("{name} must be in [0, 1), got {beta}"));
            }
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return fail(format!("epsilon must be positive, got {}", self.epsilon));
        }
        if !(0.0..=1.0).contains(&self.ema_rate) {
            return fail(format!("ema_rate must be in [0, 1], got {}", self.ema_rate));
        }
        if let Some(clip) = self.grad_clip {
            if !(clip.is_finite() && clip > 0.0) {
                return fail(format!("grad_clip must be positive, got {clip}"));
            }
        }
        Ok(())
    }

    /// The learning rate of the optimizer step that follows `step` completed steps: a linear
    /// warm-up over `warmup_steps`, then `learning_rate`, or with `learning_rate_end` a half-cosine
    /// decay to it that ends at `steps` (and stays there past it).
    pub fn learning_rate_at(&self, step: usize) -> f64 {
        let (peak, warmup) = (self.learning_rate, self.warmup());
        if step < warmup {
            return peak * (step + 1) as f64 / warmup as f64;
        }
        let Some(end) = self.learning_rate_end else {
            return peak;
        };
        let span = self.steps.saturating_sub(warmup);
        if span == 0 {
            return end;
        }
        let progress = ((step - warmup) as f64 / span as f64).min(1.0);
        end + (peak - end) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }

    /// Steps of warm-up (0 without one).
    fn warmup(&self) -> usize {
        self.warmup_steps.unwrap_or(0)
    }

    /// `[C, H, W]` of the training images.
    pub fn image_shape(&self) -> [usize; 3] {
        let model = &self.model;
        [model.channels, model.image_size, model.image_size]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> TrainConfig {
        TrainConfig::new(NcsnV2Config::new().with_ngf(4), 10)
    }

    #[test]
    fn defaults_are_the_reference_settings() {
        let config = tiny();
        assert_eq!(config.batch_size, 128);
        assert_eq!(config.learning_rate, 1e-4);
        assert_eq!(
            (config.beta1, config.beta2, config.epsilon),
            (0.9, 0.999, 1e-8)
        );
        assert_eq!(config.ema_rate, 0.999);
        assert!(!config.horizontal_flip);
        assert_eq!(config.grad_clip, None);
        config.validate().expect("valid defaults");
    }

    #[test]
    fn json_round_trip_keeps_every_field() {
        let config = tiny().with_grad_clip(Some(1.0)).with_seed(7);
        let json = serde_json::to_string(&config).expect("serializable");
        let back: TrainConfig = serde_json::from_str(&json).expect("deserializable");
        assert_eq!(serde_json::to_string(&back).expect("serializable"), json);
        assert_eq!(back.grad_clip, Some(1.0));
        assert_eq!(back.model.ngf, 4);
    }

    #[test]
    fn a_checkpoint_config_from_before_init_existed_reads_as_a_random_start() {
        let mut json: serde_json::Value =
            serde_json::to_value(tiny().with_init(Some("a.safetensors".into()))).expect("json");
        assert_eq!(json["init"], "a.safetensors");
        json.as_object_mut().expect("object").remove("init");
        let back: TrainConfig = serde_json::from_value(json).expect("deserializable");
        assert_eq!(back.init, None);
    }

    #[test]
    fn a_checkpoint_config_from_before_the_schedule_existed_reads_as_a_constant_rate() {
        let mut json: serde_json::Value = serde_json::to_value(
            tiny()
                .with_warmup_steps(Some(3))
                .with_learning_rate_end(Some(1e-5)),
        )
        .expect("json");
        let object = json.as_object_mut().expect("object");
        assert!(object.remove("warmup_steps").is_some());
        assert!(object.remove("learning_rate_end").is_some());
        let back: TrainConfig = serde_json::from_value(json).expect("deserializable");
        assert_eq!((back.warmup_steps, back.learning_rate_end), (None, None));
        assert!((0..20).all(|step| back.learning_rate_at(step) == 1e-4));
    }

    #[test]
    fn the_schedule_warms_up_linearly_then_follows_half_a_cosine() {
        // 10 steps: warm-up over 2 (rates at steps 0, 1), decay over the other 8 (steps 2..10).
        let config = tiny()
            .with_learning_rate(1e-3)
            .with_warmup_steps(Some(2))
            .with_learning_rate_end(Some(1e-4));
        config.validate().expect("valid");
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-15;
        assert!(close(config.learning_rate_at(0), 5e-4));
        assert!(close(config.learning_rate_at(1), 1e-3));
        assert!(close(config.learning_rate_at(2), 1e-3));
        // Halfway through the decay (step 2 + 4): the mean of peak and end.
        assert!(close(config.learning_rate_at(6), 5.5e-4));
        // A quarter of the way: end + (peak − end)·(1 + cos(π/4))/2.
        let quarter = 1e-4 + 9e-4 * 0.5 * (1.0 + std::f64::consts::FRAC_1_SQRT_2);
        assert!(close(config.learning_rate_at(4), quarter));
        assert!(close(config.learning_rate_at(10), 1e-4));
        assert!(close(config.learning_rate_at(25), 1e-4));
        let rates: Vec<f64> = (2..=10).map(|s| config.learning_rate_at(s)).collect();
        assert!(rates.windows(2).all(|w| w[1] < w[0]), "{rates:?}");
        // Without an end the rate stays at its peak after the warm-up.
        let constant = tiny().with_learning_rate(1e-3).with_warmup_steps(Some(4));
        assert!(close(constant.learning_rate_at(0), 2.5e-4));
        assert!((4..30).all(|s| constant.learning_rate_at(s) == 1e-3));
    }

    #[test]
    fn impossible_settings_are_rejected() {
        for config in [
            tiny().with_batch_size(0),
            tiny().with_learning_rate(0.0),
            tiny().with_beta2(1.0),
            tiny().with_ema_rate(1.5),
            tiny().with_grad_clip(Some(-1.0)),
            tiny().with_checkpoint_every(0),
            tiny().with_learning_rate_end(Some(2e-4)),
            tiny().with_learning_rate_end(Some(-1e-6)),
            tiny().with_learning_rate_end(Some(f64::NAN)),
            tiny().with_warmup_steps(Some(11)),
        ] {
            assert!(matches!(
                config.validate(),
                Err(ScoreNetError::InvalidTrainConfig(_))
            ));
        }
    }
}
