#!/usr/bin/env bash
# The GPU checks of one device lease, from the project's root on a Linux host with an NVIDIA driver and no
# Rust toolchain (docs/BENCHMARKS.md). Prepared here beforehand:
#   ../shared/tools/gpu-prep.sh wgpu                 # .gl/ (Vulkan loader packages) and .gpu/qcs.xz
#   cargo build --release -p qcs-cli --no-default-features --features wgpu,burn/vulkan \
#     && xz -T2 -6 -c target/release/qcs > .gpu/qcs-spirv.xz     # optional: burn's SPIR-V kernels
#   a checkout of github.com/mengxiangming/QCS-SGM at 5d1fd79 in .ref/ (for `bench`), the yardstick
#   checkpoint in .yard/ and scripts/get-data.sh's data/mnist (for `mnist`); all git-ignored.
# usage: scripts/gpu-bench.sh bench|mnist|tables|profile OUTDIR
#   bench: the reference (scripts/reference-bench.py: Langevin steps and training steps) and `qcs bench` one
#          after the other on the same GPU: ngf 128 on 28×28 at batch 1, 10 and 100 in f32, batch 100 in f16,
#          training steps at batch 128 (ngf 32 and 128), and the SPIR-V build's ngf-128 batch-100 cases where
#          .gpu/qcs-spirv.xz exists. About 8 minutes at most (each
#          part has a timeout, and every finished row is kept): a lease is 15 minutes, the mnist mode included.
#   mnist: the 232 × 5 QCS-SGM cell (1 bit, M = 200, σ = 0.05, seed 0) on the first 100 MNIST test digits with
#          the shipped priors (ngf 32, the default of configs/mnist.toml, and ngf 16, the main job's) and with the
#          yardstick, batch 100 (ran on 2026-12-04 with the ngf-16 prior and the yardstick:
#          docs/results/mnist-100-2026-12-04/).
#   tables: scripts/results.sh's grid (docs/RESULTS.md) on the first 100 test images of each dataset, batch 100,
#          JOBS runs at a time (default 4: at these sizes one run leaves the GPU idle between launches), the
#          yardstick's row beside the MNIST prior's where .yard/ holds it. Needs data/fashion-mnist's test images
#          too. It stops after TABLES_S seconds (default 480) and writes every finished cell, with those of
#          earlier leases, to OUTDIR/results.tar.gz; carry that file back as .gpu/results.tar.gz and the next
#          lease resumes at the first unfinished cell (`qcs eval --resume`). Here, once it is complete:
#          mkdir -p out/results && tar -xzf .gpu/results.tar.gz -C out/results && scripts/results.sh out/results
#          (every cell is found finished; the script then writes docs/RESULTS.md). SCHEDULE=116x3 makes the
#          grid about three times cheaper (the header of RESULTS.md then says so).
#   profile: GPU time per kernel family (cubecl's profiling logger, scripts/kernel-profile.py) of one training
#          step (ngf 32, batch 128: 20× the reference's time on the H200) and of one Langevin step at ngf 128,
#          batch 1 and batch 100 (a run each); the summaries as OUTDIR/*.md, the logs gzipped. About 5 minutes.
set -o pipefail
mode=${1:?bench or mnist}; out=${2:?output folder}
case $mode in bench|mnist|tables|profile) ;;
  *) echo "unknown mode $mode (bench, mnist, tables or profile)" >&2; exit 2 ;;
esac
mkdir -p "$out" && out=$(cd "$out" && pwd) || exit 1   # absolute: the reference runs inside .ref/
t0=$(date +%s)
at() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
[ -x /tmp/qcs ] || { xz -dc .gpu/qcs.xz > /tmp/qcs && chmod +x /tmp/qcs; } || exit 1
case $mode in
bench)
  { nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; /tmp/qcs info; } \
    > "$out/machine.txt" 2>&1
  at reference
  (cd .ref && PYTHONUNBUFFERED=1 timeout 100 python3 ../scripts/reference-bench.py --kinds langevin,train \
    --out "$out/reference.json" \
    2>&1 | tee "$out/reference.txt")
  at "qcs, 28×28"
  timeout 100 /tmp/qcs bench --ngf 128 --size 28 --train-batch 0 --out "$out/qcs-wgsl.json" 2>&1 \
    | tee "$out/qcs-wgsl.txt"
  at "qcs, f16"
  timeout 40 /tmp/qcs bench --ngf 128 --batch 100 --size 28 --train-batch 0 --precision f16 --out /tmp/f16.json \
    2>&1 | tee "$out/qcs-wgsl-f16.txt"
  # Training steps at the reference's batch (128): the tracked InstanceNorm++ and ELU, the strided Adam and
  # the channels-last weights (2026-12-05, counted on lavapipe only) timed for the first time on a GPU.
  at "qcs, training"
  timeout 150 /tmp/qcs bench --ngf 32,128 --batch 1 --size 28 --train-batch 128 --repeats 5 --steps 1 \
    --out "$out/qcs-wgsl-train.json" 2>&1 | tee "$out/qcs-wgsl-train.txt"
  if [ -f .gpu/qcs-spirv.xz ]; then
    xz -dc .gpu/qcs-spirv.xz > /tmp/qcs-spirv && chmod +x /tmp/qcs-spirv
    at "qcs, SPIR-V"
    { timeout 100 /tmp/qcs-spirv bench --ngf 128 --batch 100 --size 28 --train-batch 0 --out /tmp/spirv-f32.json
      timeout 50 /tmp/qcs-spirv bench --ngf 128 --batch 100 --size 28 --train-batch 0 --precision f16 \
        --out /tmp/spirv-f16.json
    } 2>&1 | tee "$out/qcs-spirv.txt"
  fi
  ;;
mnist)
  for pair in ngf32:assets/models/mnist-ngf32.safetensors ngf16:assets/models/mnist.safetensors \
    yardstick:.yard/ref_ncsnv2_mnist_ngf64_ema_fp16.safetensors; do
    name=${pair%%:*}; model=${pair#*:}
    at "$name"
    timeout 130 /tmp/qcs eval --config configs/mnist.toml --model "$model" \
      --images data/mnist/t10k-images-idx3-ubyte.gz --count 100 --batch 100 --out "/tmp/eval-$name" \
      --schedules 232x5 --bits 1 --measurements 200 --methods qcs-sgm --matrices gaussian --noise-std 0.05 \
      2>&1 | tail -5
    for f in images.csv results.md run.json; do cp "/tmp/eval-$name/$f" "$out/$name-$f" 2>/dev/null; done
  done
  ;;
tables)
  for ds in mnist fashion-mnist; do
    [ -f "data/$ds/t10k-images-idx3-ubyte.gz" ] || { echo "missing data/$ds/t10k-images-idx3-ubyte.gz" >&2; exit 1; }
  done
  root=/tmp/qcs-results
  rm -rf "$root" && mkdir -p "$root" || exit 1   # a warm machine's earlier copy must not outdate the archive's
  if [ -f .gpu/results.tar.gz ]; then tar -xzf .gpu/results.tar.gz -C "$root" || exit 1; fi
  ref=.yard/ref_ncsnv2_mnist_ngf64_ema_fp16.safetensors
  at "results grid, until ${TABLES_S:-480} s"
  # timeout signals results.sh's whole process group, its background evals too (-k: and kills what lingers)
  QCS=/tmp/qcs COUNT=${COUNT:-100} BATCH=${BATCH:-100} JOBS=${JOBS:-4} REF_MODEL=$([ -f $ref ] && echo $ref) \
    timeout -k 10 "${TABLES_S:-480}" scripts/results.sh "$root" 2>&1 | tail -60
  for _ in $(seq 30); do pgrep -f "^/tmp/qcs eval" >/dev/null || break; sleep 1; done
  at "packing"
  tar -czf "$out/results.tar.gz" -C "$root" . && ls -la "$out/results.tar.gz"
  ;;
profile)
  # profiled NAME TIMEOUT BENCH-ARGS...: one `qcs bench` run in its own folder, whose cubecl.toml turns the
  # profiling logger on; its summary (the last synchronised section: the last timed run, if the run finished,
  # which the summary's first line says) and its gzipped log go to OUTDIR.
  profiled() {
    local name=$1 limit=$2 dir=/tmp/qcs-profile/$1 status
    shift 2
    mkdir -p "$dir"
    printf '[profiling.logger]\nlevel = "basic"\nfile = "%s/kernels.log"\n' "$dir" > "$dir/cubecl.toml"
    at "profile $name"
    (cd "$dir" && timeout "$limit" /tmp/qcs bench --size 28 --repeats 1 --warmup 1 --steps 1 \
      --out "$dir/bench.json" "$@" > "$dir/bench.txt" 2>&1)
    status=$?
    tail -8 "$dir/bench.txt"
    { if [ "$status" = 0 ]; then echo "qcs bench $* finished: the last section is its last timed run."
      else echo "qcs bench $* did NOT finish (status $status): the last section is not a timed run."; fi
      echo
      python3 scripts/kernel-profile.py "$dir/kernels.log" 2>&1
    } > "$out/profile-$name.md"
    gzip -c "$dir/kernels.log" > "$out/profile-$name.log.gz"
  }
  profiled train 150 --ngf 32 --batch 1 --train-batch 128
  profiled sample-b1 60 --ngf 128 --batch 1 --train-batch 0
  profiled sample-b100 75 --ngf 128 --batch 100 --train-batch 0
  ;;
esac
at done
