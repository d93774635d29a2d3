#!/usr/bin/env bash
# Installs what is missing and builds everything; fast when nothing changed.
#   bash scripts/setup.sh          runtime needs: libtorch (+ gloo headers), g++, npm packages, the addon, dist/
#   bash scripts/setup.sh --test   also what the tests need (Debian python3-torch for golden values,
#                                  python3-protobuf, python3-pil, python3-scipy, python3-torchvision (encoder goldens),
#                                  chromium for the browser tests,
#                                  python3-onnx and libonnx-dev for the ONNX export tests)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0; [ "${1:-}" = "--test" ] && want_test=1

have_torch() {
  [ -n "${LIBTORCH:-}" ] && return 0
  [ -f /usr/include/ATen/ATen.h ] && return 0
  python3 -c 'import torch,os,sys; sys.exit(0 if os.path.exists(os.path.join(os.path.dirname(torch.__file__),"include","ATen","ATen.h")) else 1)' 2>/dev/null
}

pkgs=()
have_torch || pkgs+=(libtorch-dev)
command -v g++ >/dev/null || pkgs+=(g++)
# Debian's libtorch has Gloo (data-parallel training on CPU) compiled in, but its headers come with
# libgloo-dev, which libtorch-dev does not pull in.
[ -n "${LIBTORCH:-}" ] || [ ! -f /usr/include/ATen/ATen.h ] || [ -f /usr/include/gloo/config.h ] || pkgs+=(libgloo-dev)
# Debian's libtorch links the generic libblas.so.3; without an optimized provider it gets the
# reference BLAS, which makes transposed convolutions ~15x slower. OpenBLAS (OpenMP build, like
# libtorch) registers itself as the libblas.so.3 alternative. Its folder is the multiarch one
# (x86_64-linux-gnu, aarch64-linux-gnu, ...).
multiarch="$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")"
[ -e "/usr/lib/$multiarch/openblas-openmp/libblas.so.3" ] || [ -n "${LIBTORCH:-}" ] || pkgs+=(libopenblas0-openmp)
if [ "$want_test" = 1 ]; then
  /usr/bin/python3 -c 'import torch' 2>/dev/null || pkgs+=(python3-torch)
  /usr/bin/python3 -c 'import google.protobuf' 2>/dev/null || pkgs+=(python3-protobuf)
  /usr/bin/python3 -c 'import PIL' 2>/dev/null || pkgs+=(python3-pil)
  /usr/bin/python3 -c 'import scipy' 2>/dev/null || pkgs+=(python3-scipy)
  /usr/bin/python3 -c 'import torchvision' 2>/dev/null || pkgs+=(python3-torchvision)
  command -v chromium >/dev/null || pkgs+=(chromium)
  /usr/bin/python3 -c 'import onnx' 2>/dev/null || pkgs+=(python3-onnx)
  [ -f /usr/include/onnx/onnx.proto ] || pkgs+=(libonnx-dev)
fi
if [ ${#pkgs[@]} -gt 0 ]; then
  echo "setup: installing ${pkgs[*]} with apt-get (a few minutes the first time)"
  if [ "$(id -u)" != 0 ]; then echo "setup: need root for apt-get; run as root or install: ${pkgs[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
# python3-scipy pulls in OpenBLAS's pthread build, which outranks the OpenMP one as libblas.so.3;
# under libtorch's OpenMP threads it changes results (the data-parallel test against PyTorch DDP
# drifted by 0.44%). Keep the OpenMP build.
for lib in libblas.so.3 liblapack.so.3; do
  alt="/usr/lib/$multiarch/openblas-openmp/$lib"
  if [ -e "$alt" ] && [ "$(readlink -f "/usr/lib/$multiarch/$lib")" != "$alt" ]; then
    if [ "$(id -u)" = 0 ]; then update-alternatives --set "$lib-$multiarch" "$alt" >/dev/null
    else echo "setup: warning: /usr/lib/$multiarch/$lib is not OpenBLAS's OpenMP build; as root: update-alternatives --set $lib-$multiarch $alt" >&2; fi
  fi
done

# npm packages: reinstall only when the lock file changed since the last install. npm ci also runs
# the package's install script, which builds the addon (libtorch is installed by now); the
# build below is then a no-op.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  # onnxruntime-node (a test dependency) would download CUDA binaries on linux/x64: skipped by its
  # environment variable (an .npmrc key makes every npm command warn about an unknown config).
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
fi

node native/build.mjs
npx tsc -p tsconfig.json
# the browser pages (src/web/, src/tracking/client/): type-checked for the DOM, then bundled into
# dist/web/ and dist/dashboard/
npx tsc -p tsconfig.web.json && node scripts/build-web.mjs
