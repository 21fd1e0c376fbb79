#!/usr/bin/env python3
"""Timing benchmark of the authors' PyTorch reference for QCS-SGM (1-bit), for comparison with qcs.

Run from a checkout of github.com/mengxiangming/QCS-SGM (commit 5d1fd79), or point QCS_REFERENCE_DIR at one:
    python3 /path/to/qcs/scripts/reference-bench.py --out ref_bench.json   [--full] [--no-dp]
                        [--no-cudnn-benchmark] [--kinds forward,langevin,asis,train]

The network, the sigma schedule, the 1-bit likelihood score, the DSM loss, the optimizer and the EMA helper are
the reference's own code, imported from that checkout (models/, losses/). The config namespace is built the way
the reference's main.py builds it (yaml -> dict2namespace) from its configs/mnist.yml, with data.image_size /
data.channels / model.ngf / measurements.* overridden per case. docs/BENCHMARKS.md says what each figure means.
"""
import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
import warnings

# The reference checkout (github.com/mengxiangming/QCS-SGM, commit 5d1fd79): its models/, losses/ and
# configs/ are imported from there, never copied into qcs.
HERE = os.path.abspath(os.environ.get("QCS_REFERENCE_DIR", os.getcwd()))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import numpy as np
import torch

# reference code (verbatim copies)
from models import get_sigmas, likelihood_score_onebit_diag, mat_by_vec, anneal_Langevin_dynamics_linear_inverse
from models.ncsnv2 import NCSNv2
from models.ema import EMAHelper
from losses import get_optimizer
from losses.dsm import anneal_dsm_score_estimation

REF_REPO = "mengxiangming/QCS-SGM"
REF_COMMIT = "5d1fd79f6db5dcdb39e0e5be71a100e2821680e1"

NUM_LEVELS = 232          # model.num_classes
STEPS_EACH = 5            # sampling.n_steps_each
NFE = NUM_LEVELS * STEPS_EACH + 1   # 1161, as asked (the reference linear-inverse sampler itself does 1160)
TIMING_LEVEL = 115        # noise level index used for forward / step timings (cost does not depend on it)
PER_CASE_BUDGET_S = 5.0   # cap on timed seconds per case (repeats reduced, never below 3)


def log(*a):
    print(*a, flush=True)


# ----------------------------------------------------------------------------------------------------------
# config, as the reference's main.py builds it
# ----------------------------------------------------------------------------------------------------------
def _mini_yaml(text):
    """Fallback parser for the simple 2-level yml files of the reference (used only if PyYAML is missing)."""
    root = {}
    stack = [(-1, root)]
    for raw in text.splitlines():
        line = raw.split('#', 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(' '))
        key, _, val = line.strip().partition(':')
        key, val = key.strip(), val.strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if val == '':
            d = {}
            parent[key] = d
            stack.append((indent, d))
            continue
        if len(val) >= 2 and val[0] == val[-1] and val[0] in '"\'':
            v = val[1:-1]
        elif val.lower() in ('true', 'false'):
            v = val.lower() == 'true'
        elif val.lower() in ('null', '~', 'none'):
            v = None
        else:
            try:
                v = int(val)
            except ValueError:
                try:
                    v = float(val)
                except ValueError:
                    v = val
        parent[key] = v
    return root


def load_yml(path):
    with open(path, 'r') as f:
        text = f.read()
    try:
        import yaml
        return yaml.safe_load(text), 'pyyaml'
    except ImportError:
        return _mini_yaml(text), 'mini-parser'


def dict2namespace(config):  # verbatim from the reference main.py
    namespace = argparse.Namespace()
    for key, value in config.items():
        if isinstance(value, dict):
            new_value = dict2namespace(value)
        else:
            new_value = value
        setattr(namespace, key, new_value)
    return namespace


def make_config(device, ngf, channels, size, measure_size=200):
    cfg, parser = load_yml(os.path.join(HERE, 'configs', 'mnist.yml'))
    cfg['data']['image_size'] = size
    cfg['data']['channels'] = channels
    if channels == 3:
        cfg['data']['dataset'] = 'CELEBA'   # get_model() in the reference returns NCSNv2 for MNIST/CIFAR10/CELEBA
    cfg['model']['ngf'] = ngf
    cfg['model']['num_classes'] = NUM_LEVELS
    cfg['model']['sigma_begin'] = 50
    cfg['model']['sigma_end'] = 0.01
    cfg['model']['sigma_dist'] = 'geometric'
    cfg['model']['normalization'] = 'InstanceNorm++'
    cfg['model']['nonlinearity'] = 'elu'
    cfg['measurements']['measure_size'] = measure_size
    cfg['measurements']['noise_variance'] = 0.05 ** 2
    cfg['measurements']['quantization'] = True
    cfg['measurements']['quantize_bits'] = 1
    cfg['sampling']['step_lr'] = 0.0002
    cfg['sampling']['n_steps_each'] = STEPS_EACH
    cfg['sampling']['likelihood_scale'] = 1
    cfg['training']['batch_size'] = 128
    cfg['optim']['lr'] = 0.0001
    config = dict2namespace(cfg)
    config.device = device
    return config, parser


def get_model(config, use_dp):
    """As runners/ncsn_runner.py: get_model(config) then torch.nn.DataParallel(score)."""
    if config.data.dataset in ('CIFAR10', 'CELEBA', 'MNIST'):
        score = NCSNv2(config).to(config.device)
    else:
        raise NotImplementedError(config.data.dataset)
    n_params = sum(p.numel() for p in score.parameters())
    if use_dp:
        score = torch.nn.DataParallel(score)
    return score, n_params


def data_transform(config, X):  # verbatim logic of datasets.data_transform (identity for these configs)
    if config.data.uniform_dequantization:
        X = X / 256. * 255. + torch.rand_like(X) / 256.
    if config.data.gaussian_dequantization:
        X = X + torch.randn_like(X) * 0.01
    if config.data.rescaled:
        X = 2 * X - 1.
    elif config.data.logit_transform:
        raise NotImplementedError
    return X


# ----------------------------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------------------------
def sync():
    torch.cuda.synchronize()


def time_it(fn, warmup=3, reps=10, slow=False, budget_s=PER_CASE_BUDGET_S):
    last = None
    for _ in range(warmup):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        last = time.perf_counter() - t0
    n = min(reps, 5) if slow else reps
    n = max(3, min(n, int(budget_s / max(last, 1e-6))))
    times = []
    for _ in range(n):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), times


# ----------------------------------------------------------------------------------------------------------
# the sampler pieces (the loop body of models.anneal_Langevin_dynamics_linear_inverse)
# ----------------------------------------------------------------------------------------------------------
def make_problem(config, batch, seed=0):
    """As NCSNRunner.sample(): init_samples (1,B,C,S,S) uniform, H ~ N(0,1/M), y = sign(H x + noise)."""
    dev = config.device
    C, S, M = config.data.channels, config.data.image_size, config.measurements.measure_size
    g = torch.Generator(device='cpu').manual_seed(seed)
    refer_images = torch.rand(batch, C, S, S, generator=g).to(dev)      # stand-in for the test images
    init_samples = torch.rand(1, batch, C, S, S, device=dev)
    init_samples = data_transform(config, init_samples)
    H_mat = torch.randn(M, S ** 2 * C, generator=g) / np.sqrt(M)
    H_mat = H_mat.to(dev).float()
    y_linear = mat_by_vec(H_mat, refer_images)
    y_linear = y_linear + torch.randn_like(y_linear).to(dev) * np.sqrt(config.measurements.noise_variance)
    y_linear = torch.sign(y_linear)                                      # uniform_quantizer(., 1) is torch.sign
    y_lower = torch.zeros(1).to(dev)
    y_upper = torch.zeros(1).to(dev)
    # as at the top of anneal_Langevin_dynamics_linear_inverse (done once per run)
    diag_values = np.diag(torch.matmul(H_mat, H_mat.t()).cpu().numpy())
    diag_values = torch.from_numpy(diag_values).to(dev)
    x_mod = init_samples.view(-1, init_samples.shape[2], S, S)
    return dict(x0=x_mod, init_samples=init_samples, y=y_linear, y_lower=y_lower, y_upper=y_upper, H=H_mat,
                diag=diag_values)


def make_level_fn(score, sigmas, config, prob, c, asis, sink):
    """One noise level = labels/step_size set-up + n_steps_each Langevin steps, exactly the reference loop body.
    asis=False: no per-step host copy and no prints (pure compute path).
    asis=True : also the reference's per-step images.append(x_mod.to('cpu')) and its three print() lines
                (each formats two CUDA 0-d tensors, i.e. 6 host syncs per step), printed to os.devnull."""
    step_lr = config.sampling.step_lr
    n_steps_each = config.sampling.n_steps_each
    likelihood_scale = config.sampling.likelihood_scale
    noise_var = config.measurements.noise_variance
    y_observe, H, diag_values = prob['y'], prob['H'], prob['diag']
    x_start = prob['x0']

    def run():
        with torch.no_grad():
            images = []
            x_mod = x_start
            sigma = sigmas[c]
            labels = torch.ones(x_mod.shape[0], device=x_mod.device) * c
            labels = labels.long()
            step_size = step_lr * (sigma / sigmas[-1]) ** 2
            for s in range(n_steps_each):
                if asis:
                    images.append(x_mod.to('cpu'))
                noise = torch.randn_like(x_mod) * np.sqrt(step_size * 2)
                grad = score(x_mod, labels)
                likelihood_grad = likelihood_score_onebit_diag(y_observe, x_mod, H, noise_var, sigma, diag_values)
                x_mod = x_mod + step_size * (grad + likelihood_scale * likelihood_grad) + noise
                if asis:
                    print("prior grad: class: {}, step_size: {}, mean {}, max {}".format(
                        c, step_size, grad.abs().mean(), grad.abs().max()), file=sink)
                    print("likelihood grad: class: {}, step_size: {}, mean {}, max {}".format(
                        c, step_size, likelihood_grad.abs().mean(), likelihood_grad.abs().max()), file=sink)
                    print("recovered value: class: {}, step_size: {}, mean {}, max {}".format(
                        c, step_size, x_mod.abs().mean(), x_mod.abs().max()), file=sink)
            return x_mod
    return run


# ----------------------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------------------
def tf32_flags():
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for name, getter in [
            ('cuda.matmul.allow_tf32', lambda: torch.backends.cuda.matmul.allow_tf32),
            ('cudnn.allow_tf32', lambda: torch.backends.cudnn.allow_tf32),
            ('float32_matmul_precision', lambda: torch.get_float32_matmul_precision()),
            ('cuda.matmul.fp32_precision', lambda: torch.backends.cuda.matmul.fp32_precision),
            ('cudnn.fp32_precision', lambda: torch.backends.cudnn.fp32_precision),
            ('cudnn.conv.fp32_precision', lambda: torch.backends.cudnn.conv.fp32_precision),
        ]:
            try:
                v = getter()
                out[name] = v if isinstance(v, (bool, str, int, float)) else str(v)
            except Exception as e:  # attribute absent in this torch version, or API mix error
                out[name] = 'unavailable: {}'.format(type(e).__name__)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default='ref_bench.json')
    ap.add_argument('--full', action='store_true', help='also time one full 1-image run (ngf 128, 28x28)')
    ap.add_argument('--no-dp', action='store_true', help='do not wrap the model in torch.nn.DataParallel')
    ap.add_argument('--no-cudnn-benchmark', action='store_true',
                    help='leave torch.backends.cudnn.benchmark False (the reference main.py sets it True)')
    ap.add_argument('--kinds', default='forward,langevin,asis,train',
                    help='comma list among forward, langevin, asis (reference-as-is step), train')
    ap.add_argument('--seed', type=int, default=12345)
    args = ap.parse_args()
    kinds = set(k.strip() for k in args.kinds.split(',') if k.strip())

    t_start = time.perf_counter()
    if not torch.cuda.is_available():
        log('CUDA is not available; this benchmark needs a GPU.')
        return 2
    device = torch.device('cuda:0')
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.cuda.manual_seed_all(args.seed)
    torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark   # reference main.py: True
    use_dp = not args.no_dp

    props = torch.cuda.get_device_properties(0)
    _, yml_parser = make_config(device, 8, 1, 28)
    meta = {
        'reference_repo': REF_REPO,
        'reference_commit': REF_COMMIT,
        'torch': torch.__version__,
        'cuda': torch.version.cuda,
        'cudnn': torch.backends.cudnn.version(),
        'numpy': np.__version__,
        'python': platform.python_version(),
        'gpu': torch.cuda.get_device_name(0),
        'gpu_capability': '{}.{}'.format(props.major, props.minor),
        'gpu_memory_gib': round(props.total_memory / 2 ** 30, 1),
        'cudnn_benchmark': torch.backends.cudnn.benchmark,
        'tf32': tf32_flags(),
        'dtype': 'float32 (PyTorch defaults, eager)',
        'dataparallel_wrapper': use_dp,
        'yml_parser': yml_parser,
        'timing_level_index': TIMING_LEVEL,
        'nfe_for_images_per_s': NFE,
        'method': 'torch.cuda.synchronize() before every clock read; 3 warm-up runs excluded; median of up to 10 '
                  'timed runs (5 for ngf 128 batch 100; fewer if a case would exceed {}s of timed work, never '
                  'below 3)'.format(PER_CASE_BUDGET_S),
        'started_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(),
        'args': vars(args),
    }
    cases = []

    def dump():
        meta['elapsed_s'] = round(time.perf_counter() - t_start, 2)
        tmp = args.out + '.tmp'
        d = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(d, exist_ok=True)
        with open(tmp, 'w') as f:
            json.dump({'meta': meta, 'cases': cases}, f, indent=1)
        os.replace(tmp, args.out)

    def record(case):
        cases.append(case)
        dump()
        extra = ''
        if case.get('images_per_s') is not None:
            extra = '  -> {:.3f} img/s @NFE {}'.format(case['images_per_s'], NFE)
        if 'error' in case:
            log('  [{:>6.1f}s] {:<22} ngf={:<3} {}x{}x{} b={:<3} FAILED: {}'.format(
                time.perf_counter() - t_start, case['kind'], case['ngf'], case['size'], case['size'],
                case['channels'], case['batch'], case['error'].strip().splitlines()[-1]))
        else:
            log('  [{:>6.1f}s] {:<22} ngf={:<3} {}x{}x{} b={:<3}{} {:>9.3f} ms ({} reps){}'.format(
                time.perf_counter() - t_start, case['kind'], case['ngf'], case['size'], case['size'],
                case['channels'], case['batch'], (' M=%d' % case['m']) if 'm' in case else '',
                case['ms'], case.get('reps'), extra))

    sink = open(os.devnull, 'w')
    log('reference {}@{}  torch {}  cuda {}  {}'.format(REF_REPO, REF_COMMIT[:12], torch.__version__,
                                                      torch.version.cuda, meta['gpu']))
    log('tf32 flags: {}   cudnn.benchmark={}   DataParallel={}'.format(meta['tf32'], meta['cudnn_benchmark'], use_dp))
    dump()

    # ---------------- inference: forward and Langevin steps ----------------
    infer_shapes = [(32, 1, 28), (64, 1, 28), (128, 1, 28), (128, 3, 64)]
    batches = [1, 10, 100]
    for ngf, C, S in infer_shapes:
        if not kinds & {'forward', 'langevin', 'asis'}:
            break
        base = {'ngf': ngf, 'channels': C, 'size': S}
        try:
            config, _ = make_config(device, ngf, C, S)
            score, n_params = get_model(config, use_dp)
            score.eval()
            sigmas = get_sigmas(config).cpu().numpy()   # as NCSNRunner.sample(): numpy sigmas for the sampler
        except Exception:
            for b in batches:
                record(dict(base, kind='build', batch=b, error=traceback.format_exc()))
            continue
        log('model ngf={} {}x{}x{}: {:.2f}M parameters'.format(ngf, S, S, C, n_params / 1e6))
        for b in batches:
            slow = (ngf == 128 and b == 100)
            # forward
            if 'forward' in kinds:
                case = dict(base, kind='forward', batch=b, n_params=n_params)
                try:
                    x = torch.rand(b, C, S, S, device=device)
                    labels = (torch.ones(b, device=device) * TIMING_LEVEL).long()

                    def fwd():
                        with torch.no_grad():
                            return score(x, labels)
                    ms, times = time_it(fwd, slow=slow)
                    case.update(ms=ms, reps=len(times), times_ms=times)
                except Exception:
                    case['error'] = traceback.format_exc()
                record(case)
            # Langevin steps
            ms_list = [200] + ([4000] if C == 3 else [])
            for M in ms_list:
                for variant in ('langevin', 'asis'):
                    if variant not in kinds:
                        continue
                    kind = 'langevin_step' if variant == 'langevin' else 'langevin_step_ref_asis'
                    case = dict(base, kind=kind, batch=b, m=M, n_params=n_params)
                    try:
                        cfg_m, _ = make_config(device, ngf, C, S, measure_size=M)
                        prob = make_problem(cfg_m, b)
                        fn = make_level_fn(score, sigmas, cfg_m, prob, TIMING_LEVEL, variant == 'asis', sink)
                        ms_level, times = time_it(fn, slow=slow)
                        ms = ms_level / STEPS_EACH
                        case.update(ms=ms, ms_per_level_of_5_steps=ms_level, reps=len(times),
                                    times_ms_per_level=times, nfe=NFE,
                                    images_per_s=b / (ms * NFE / 1000.0))
                        del prob
                    except Exception:
                        case['error'] = traceback.format_exc()
                    record(case)
        del score
        torch.cuda.empty_cache()

    # ---------------- full one-image run (reference function itself) ----------------
    if args.full:
        case = {'kind': 'full_run', 'ngf': 128, 'channels': 1, 'size': 28, 'batch': 1, 'm': 200}
        try:
            config, _ = make_config(device, 128, 1, 28)
            score, n_params = get_model(config, use_dp)
            score.eval()
            sigmas = get_sigmas(config).cpu().numpy()
            prob = make_problem(config, 1)
            with torch.no_grad():   # warm the cuDNN autotuner for this shape
                lab = torch.zeros(1, device=device).long()
                for _ in range(3):
                    score(prob['x0'], lab)
            sync()
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(sink):   # its 3 prints per step go to /dev/null
                all_samples = anneal_Langevin_dynamics_linear_inverse(
                    prob['init_samples'], prob['y'], prob['y_lower'], prob['y_upper'],
                    config.measurements.quantize_bits, score, sigmas, prob['H'],
                    config.measurements.noise_variance, config.data.image_size,
                    config.sampling.n_steps_each, config.sampling.step_lr,
                    config.sampling.likelihood_scale, config.measurements.quantization)
            sync()
            total_ms = (time.perf_counter() - t0) * 1e3
            nfe_ref = NUM_LEVELS * STEPS_EACH
            last = all_samples[-1]
            case.update(ms=total_ms, reps=1, nfe=nfe_ref, ms_per_step=total_ms / nfe_ref,
                        images_per_s=1000.0 / total_ms,
                        images_per_s_scaled_to_1161=1000.0 / (total_ms * NFE / nfe_ref),
                        n_params=n_params, n_images_returned=len(all_samples),
                        final_state_finite=bool(torch.isfinite(last).all().item()),
                        note='anneal_Langevin_dynamics_linear_inverse called as NCSNRunner.sample() calls it '
                             '(final_only=False, per-step CPU copies, prints to /dev/null); 232x5 = 1160 NFE, '
                             'no final denoising step')
            del all_samples, score, prob
            torch.cuda.empty_cache()
        except Exception:
            case['error'] = traceback.format_exc()
        record(case)

    # ---------------- training step ----------------
    if 'train' in kinds:
        for ngf in (32, 64, 128):
            case = {'kind': 'train_step', 'ngf': ngf, 'channels': 1, 'size': 28, 'batch': 128}
            try:
                config, _ = make_config(device, ngf, 1, 28)
                score, n_params = get_model(config, use_dp)
                optimizer = get_optimizer(config, score.parameters())
                ema_helper = None
                if config.model.ema:
                    ema_helper = EMAHelper(mu=config.model.ema_rate)
                    ema_helper.register(score)
                sigmas_t = get_sigmas(config)
                B = config.training.batch_size
                X_cpu = torch.rand(B, 1, 28, 28)   # stand-in for a DataLoader batch (CPU tensor)

                def train_step():
                    # the body of NCSNRunner.train()'s inner loop (minus tensorboard/logging I/O, keeping the
                    # loss.item() host sync that its logging line performs)
                    score.train()
                    X = X_cpu.to(config.device)
                    X = data_transform(config, X)
                    loss = anneal_dsm_score_estimation(score, X, sigmas_t, None, config.training.anneal_power, None)
                    _ = loss.item()
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    if ema_helper is not None:
                        ema_helper.update(score)

                ms, times = time_it(train_step, slow=(ngf == 128))
                case.update(ms=ms, reps=len(times), times_ms=times, n_params=n_params,
                            includes_ema=ema_helper is not None,
                            optimizer=repr(optimizer).replace('\n', ' '))
                if ema_helper is not None:
                    ms_ema, t_ema = time_it(lambda: ema_helper.update(score), reps=10)
                    case.update(ema_update_ms=ms_ema, ms_without_ema_estimate=ms - ms_ema)
                del score, optimizer, ema_helper
                torch.cuda.empty_cache()
            except Exception:
                case['error'] = traceback.format_exc()
            record(case)

    meta['finished_utc'] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    dump()
    sink.close()

    # ---------------- table ----------------
    log('')
    log('{:<24}{:>5}{:>10}{:>6}{:>6}{:>12}{:>14}'.format('kind', 'ngf', 'shape', 'batch', 'M', 'ms', 'img/s@1161'))
    for c in cases:
        shape = '{}x{}x{}'.format(c.get('size'), c.get('size'), c.get('channels'))
        if 'error' in c:
            log('{:<24}{:>5}{:>10}{:>6}{:>6}{:>12}'.format(c['kind'], c['ngf'], shape, c['batch'],
                                                           c.get('m', ''), 'FAILED'))
            continue
        ips = c.get('images_per_s')
        if c['kind'] == 'full_run':
            ips = c.get('images_per_s_scaled_to_1161')
        log('{:<24}{:>5}{:>10}{:>6}{:>6}{:>12.3f}{:>14}'.format(
            c['kind'], c['ngf'], shape, c['batch'], c.get('m', ''), c['ms'],
            '' if ips is None else '{:.3f}'.format(ips)))
    log('')
    log('total runtime {:.1f}s; JSON written to {}'.format(time.perf_counter() - t_start, args.out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
