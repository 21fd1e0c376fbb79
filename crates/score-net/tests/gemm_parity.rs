//! With every convolution computed as one matrix product (`ConvAlgorithm::Gemm`, the GPU
//! default for large shapes), the network still reproduces the reference PyTorch NCSNv2, on every
//! test backend. Its own test binary: the algorithm is a process-wide setting.

#[path = "score_net/common/mod.rs"]
mod common;

use burn::tensor::{Device, Distribution, Tensor};
use qcs_score_net::{conv2d_gemm, set_conv_algorithm, ConvAlgorithm};

use common::{cifar, mnist, parity, TOLERANCE};

#[test]
fn gemm_convolutions_reproduce_the_reference_network() {
    set_conv_algorithm(ConvAlgorithm::Gemm);
    for (name, device) in qcs_testkit::devices() {
        // The 3-channel network too where it is cheap: on lavapipe each shape autotunes first.
        let mut cases = vec![("ncsnv2_mnist_ngf8", mnist())];
        if name != "wgpu" {
            cases.push(("ncsnv2_cifar_ngf8", cifar()));
        }
        for (stem, config) in cases {
            let error = parity(stem, config, &device);
            assert!(
                error < TOLERANCE,
                "{name}, {stem}: relative L2 error {error:.3e}"
            );
        }
    }
}

/// The gradients of `Σ r·conv(x)` with respect to the input, the weight and the bias agree with
/// those of the backend's convolution, so training through the GEMM form is training the same
/// network (dilated 3×3 "same" convolution, as in NCSNv2's deeper stages).
#[test]
fn gemm_convolution_gradients_match_the_backend_convolution() {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;

    let device = Device::flex().autodiff();
    device.seed(19);
    let normal = Distribution::Normal(0.0, 1.0);
    let x = Tensor::<4>::random([2, 3, 9, 8], normal, &device);
    let weight = Tensor::<4>::random([4, 3, 3, 3], normal, &device);
    let bias = Tensor::<1>::random([4], normal, &device);
    let r = Tensor::<4>::random([2, 4, 9, 8], normal, &device);
    let options = ConvOptions::new([1, 1], [2, 2], [2, 2], 1);

    let grads = |gemm: bool| {
        let (x, weight, bias) = (
            x.clone().require_grad(),
            weight.clone().require_grad(),
            bias.clone().require_grad(),
        );
        let out = if gemm {
            conv2d_gemm(x.clone(), weight.clone(), Some(bias.clone()), &options)
        } else {
            conv2d(
                x.clone(),
                weight.clone(),
                Some(bias.clone()),
                options.clone(),
            )
        };
        let g = (out * r.clone()).sum().backward();
        [
            qcs_testkit::host(x.grad(&g).expect("input gradient")),
            qcs_testkit::host(weight.grad(&g).expect("weight gradient").flatten::<1>(0, 3)),
            qcs_testkit::host(bias.grad(&g).expect("bias gradient")),
        ]
    };
    let (ours, reference) = (grads(true), grads(false));
    for (what, (a, b)) in ["input", "weight", "bias"]
        .iter()
        .zip(ours.iter().zip(&reference))
    {
        let error = qcs_testkit::rel_l2(a, b);
        assert!(
            error < 1e-5,
            "{what} gradient: relative L2 error {error:.3e}"
        );
    }
}
