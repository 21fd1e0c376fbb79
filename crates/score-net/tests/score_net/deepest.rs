//! NCSNv2Deepest, the reference's 256×256 topology (`NCSNv2Deepest` in ermongroup/ncsnv2
//! `models/ncsnv2.py`): its state dict, written out here from the reference constructors, is
//! exactly what qcs saves, and the network runs on 256×256 images.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::Module;
use burn::store::{ModuleStore, SafetensorsStore};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use qcs_score_net::{load_safetensors, save_safetensors, Architecture, NcsnV2, NcsnV2Config};

/// Parameter name → shape.
type StateDict = BTreeMap<String, Vec<usize>>;

/// A 3×3 or 1×1 convolution `c_in → c_out`, with or without bias.
fn conv(dict: &mut StateDict, name: &str, [c_in, c_out]: [usize; 2], kernel: usize, bias: bool) {
    dict.insert(format!("{name}.weight"), vec![c_out, c_in, kernel, kernel]);
    if bias {
        dict.insert(format!("{name}.bias"), vec![c_out]);
    }
}

/// The reference's `InstanceNorm2dPlus(c)`: `alpha`, `gamma`, `beta`.
fn norm(dict: &mut StateDict, name: &str, channels: usize) {
    for param in ["alpha", "gamma", "beta"] {
        dict.insert(format!("{name}.{param}"), vec![channels]);
    }
}

/// The reference's `ResidualBlock(c_in, c_out, resample='down' if down, dilation)`: the mean-pool
/// convolutions (`ConvMeanPool`) hold their convolution as `.conv`; a dilated block uses dilated
/// 3×3 convolutions everywhere, the shortcut included; the shortcut exists only when the block
/// resamples or changes the channels.
fn residual(
    dict: &mut StateDict,
    name: &str,
    [c_in, c_out]: [usize; 2],
    down: bool,
    dilated: bool,
) {
    let c_mid = if down { c_in } else { c_out };
    norm(dict, &format!("{name}.normalize1"), c_in);
    conv(dict, &format!("{name}.conv1"), [c_in, c_mid], 3, true);
    norm(dict, &format!("{name}.normalize2"), c_mid);
    let mean_pooled = down && !dilated;
    let conv2 = if mean_pooled { "conv2.conv" } else { "conv2" };
    conv(dict, &format!("{name}.{conv2}"), [c_mid, c_out], 3, true);
    if down || c_in != c_out {
        let (shortcut, kernel) = match (mean_pooled, dilated) {
            (true, _) => ("shortcut.conv", 1),
            (false, true) => ("shortcut", 3),
            (false, false) => ("shortcut", 1),
        };
        conv(
            dict,
            &format!("{name}.{shortcut}"),
            [c_in, c_out],
            kernel,
            true,
        );
    }
}

/// A stage of the reference: `nn.ModuleList([ResidualBlock(c_in, c_out, resample, dilation),
/// ResidualBlock(c_out, c_out, None, dilation)])`.
fn stage(dict: &mut StateDict, name: &str, [c_in, c_out]: [usize; 2], down: bool, dilated: bool) {
    residual(dict, &format!("{name}.0"), [c_in, c_out], down, dilated);
    residual(dict, &format!("{name}.1"), [c_out, c_out], false, dilated);
}

/// The reference's `RCUBlock(c, n_blocks, 2)`: bias-free 3×3 convolutions `{i}_{j}_conv`.
fn rcu(dict: &mut StateDict, name: &str, channels: usize, n_blocks: usize) {
    for i in 1..=n_blocks {
        for j in 1..=2 {
            conv(
                dict,
                &format!("{name}.{i}_{j}_conv"),
                [channels; 2],
                3,
                false,
            );
        }
    }
}

/// The reference's `RefineBlock(in_planes, features, start=len == 1, end)`.
fn refine(dict: &mut StateDict, name: &str, in_planes: &[usize], features: usize, end: bool) {
    for (i, &planes) in in_planes.iter().enumerate() {
        rcu(dict, &format!("{name}.adapt_convs.{i}"), planes, 2);
    }
    rcu(
        dict,
        &format!("{name}.output_convs"),
        features,
        if end { 3 } else { 1 },
    );
    if in_planes.len() > 1 {
        for (i, &planes) in in_planes.iter().enumerate() {
            conv(
                dict,
                &format!("{name}.msf.convs.{i}"),
                [planes, features],
                3,
                true,
            );
        }
    }
    for i in 0..2 {
        conv(
            dict,
            &format!("{name}.crp.convs.{i}"),
            [features; 2],
            3,
            false,
        );
    }
}

/// What `NCSNv2.__init__` and `NCSNv2Deepest.__init__` share: the noise levels, the input and
/// output convolutions and the final normalization.
fn ends(dict: &mut StateDict, g: usize, channels: usize, levels: usize) {
    dict.insert("sigmas".into(), vec![levels]);
    conv(dict, "begin_conv", [channels, g], 3, true);
    norm(dict, "normalizer", g);
    conv(dict, "end_conv", [g, channels], 3, true);
}

/// The state dict of the reference's `NCSNv2` (image sizes other than 28).
fn reference_ncsnv2(g: usize, channels: usize, levels: usize) -> StateDict {
    let mut dict = StateDict::new();
    ends(&mut dict, g, channels, levels);
    stage(&mut dict, "res1", [g, g], false, false);
    stage(&mut dict, "res2", [g, 2 * g], true, false);
    stage(&mut dict, "res3", [2 * g, 2 * g], true, true);
    stage(&mut dict, "res4", [2 * g, 2 * g], true, true);
    refine(&mut dict, "refine1", &[2 * g], 2 * g, false);
    refine(&mut dict, "refine2", &[2 * g, 2 * g], 2 * g, false);
    refine(&mut dict, "refine3", &[2 * g, 2 * g], g, false);
    refine(&mut dict, "refine4", &[g, g], g, true);
    dict
}

/// The state dict of the reference's `NCSNv2Deepest`.
fn reference_deepest(g: usize, channels: usize, levels: usize) -> StateDict {
    let mut dict = StateDict::new();
    ends(&mut dict, g, channels, levels);
    stage(&mut dict, "res1", [g, g], false, false);
    stage(&mut dict, "res2", [g, 2 * g], true, false);
    stage(&mut dict, "res3", [2 * g, 2 * g], true, false);
    stage(&mut dict, "res31", [2 * g, 2 * g], true, false);
    stage(&mut dict, "res4", [2 * g, 4 * g], true, true);
    stage(&mut dict, "res5", [4 * g, 4 * g], true, true);
    refine(&mut dict, "refine1", &[4 * g], 4 * g, false);
    refine(&mut dict, "refine2", &[4 * g, 4 * g], 2 * g, false);
    refine(&mut dict, "refine31", &[2 * g, 2 * g], 2 * g, false);
    refine(&mut dict, "refine3", &[2 * g, 2 * g], 2 * g, false);
    refine(&mut dict, "refine4", &[2 * g, 2 * g], g, false);
    refine(&mut dict, "refine5", &[g, g], g, true);
    dict
}

fn count(dict: &StateDict) -> usize {
    dict.values()
        .map(|shape| shape.iter().product::<usize>())
        .sum()
}

/// The names and shapes of a SafeTensors file.
fn saved_state_dict(path: &Path) -> StateDict {
    let mut store = SafetensorsStore::from_file(path);
    store
        .get_all_tensors()
        .expect("readable safetensors")
        .iter()
        .map(|(name, tensor)| (name.clone(), tensor.shape.as_slice().to_vec()))
        .collect()
}

/// FFHQ's settings (3 channels, 256×256) with `ngf` and `levels` noise levels.
fn ffhq(ngf: usize, levels: usize) -> NcsnV2Config {
    NcsnV2Config::new()
        .with_ngf(ngf)
        .with_channels(3)
        .with_image_size(256)
        .with_num_levels(levels)
        .with_sigma_begin(348.0)
}

fn outputs(net: &NcsnV2, x: &Tensor<4>, device: &Device) -> TensorData {
    net.forward(x.clone(), Tensor::<1, Int>::from_ints([3], device))
        .into_data()
}

#[test]
fn the_reference_rules_reproduce_the_ncsnv2_fixture_state_dict() {
    // Checks the transcription of the reference constructors above on the network whose state
    // dict the reference code wrote into index.json.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/index.json"
    );
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("index.json")).expect("JSON");
    let fixture: StateDict =
        serde_json::from_value(index["ncsnv2_mnist_ngf8"]["state_dict"].clone()).expect("shapes");
    assert_eq!(reference_ncsnv2(8, 1, 10), fixture);
}

#[test]
fn deepest_saves_exactly_the_reference_state_dict() {
    let device = Device::flex();
    let config = ffhq(4, 5);
    assert_eq!(config.architecture(), Architecture::NcsnV2Deepest);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("deepest.safetensors");
    save_safetensors(&config.init(&device).expect("valid config"), &path).expect("saved");
    assert_eq!(saved_state_dict(&path), reference_deepest(4, 3, 5));
}

#[test]
fn deepest_has_the_reference_parameter_count_at_ngf_128() {
    // NCSNv2Deepest with ngf = g = 128 and C = 3 channels, summed from the reference
    // constructors (k×k convolution a → b: 9ab + b with bias, 9ab without; InstanceNorm++ on c:
    // 3c; an RCU unit on c: 18c²):
    //   begin_conv 3 584 + normalizer 384 + end_conv 3 459                =      7 427
    //   res1 (g → g, g → g)                                                =    591 872
    //   res2 (g → 2g down by mean pooling, 1×1 shortcut; 2g → 2g)          =  1 658 240
    //   res3, res31 (2g → 2g down by mean pooling; 2g → 2g), each          =  2 429 184
    //   res4 (2g → 4g down, dilation 2, dilated 3×3 shortcut; 4g → 4g)     =  7 674 624
    //   res5 (4g → 4g down, dilation 4, dilated shortcut; 4g → 4g)         = 11 805 184
    //   refine1 ([4g] → 4g: 2 adapt units, CRP, 1 output unit)             = 18 874 368
    //   refine2 ([4g, 4g] → 2g, MSF convolutions with bias)                = 23 593 472
    //   refine31, refine3 ([2g, 2g] → 2g), each                            =  8 258 048
    //   refine4 ([2g, 2g] → g)                                             =  5 898 496
    //   refine5 ([g, g] → g, 3 output units)                               =  2 654 464
    // Total 94 132 611 trained parameters (the "94M" of ALGORITHM.md §5), plus the buffer of
    // the L = 2311 FFHQ noise levels.
    const REFERENCE: usize = 94_132_611;
    let levels = 2311;
    assert_eq!(
        count(&reference_deepest(128, 3, levels)),
        REFERENCE + levels
    );
    let net = ffhq(128, levels)
        .init(&Device::flex())
        .expect("valid config");
    assert_eq!(net.num_params(), REFERENCE + levels);
}

#[test]
fn deepest_output_at_256_pixels_has_the_input_shape_and_is_finite() {
    let device = Device::flex();
    device.seed(31);
    let net = ffhq(4, 5).init(&device).expect("valid config");
    let x = Tensor::<4>::random([1, 3, 256, 256], Distribution::Default, &device);
    let out = net.forward(x, Tensor::<1, Int>::from_ints([2], &device));
    assert_eq!(out.dims(), [1, 3, 256, 256]);
    let values = out.into_data().try_to_vec::<f32>().expect("f32 output");
    assert!(values.iter().all(|v| v.is_finite()));
    assert!(values.iter().any(|&v| v != 0.0));
}

#[test]
fn deepest_safetensors_round_trip_keeps_the_outputs() {
    let device = Device::flex();
    device.seed(37);
    let config = ffhq(4, 5);
    let net = config.init(&device).expect("valid config");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("deepest.safetensors");
    save_safetensors(&net, &path).expect("saved");
    let reloaded = load_safetensors(&config, &path, &device).expect("reloaded");
    // A 64×64 input runs through every stage (down to 8×8) at a sixteenth of the cost.
    let x = Tensor::<4>::random([1, 3, 64, 64], Distribution::Default, &device);
    outputs(&reloaded, &x, &device).assert_eq(&outputs(&net, &x, &device), true);
}
