#!/usr/bin/env bash
# Installs what is missing (Debian packages, through apt-get as root or sudo) and builds flowgauge
# with a CMake preset (default: release). Skips packages that are already installed.
set -euo pipefail
preset=${1:-release}
cd "$(dirname "$0")/.."

pkgs=(cmake g++ make pkg-config git libeigen3-dev libboost-dev libhdf5-dev hdf5-tools libfmt-dev
      libtomlplusplus-dev libcli11-dev librandom123-dev libgtest-dev libgmock-dev libbenchmark-dev
      python3 python3-h5py python3-numpy python3-matplotlib
      openmpi-bin libopenmpi-dev)  # MPI: the ci preset builds with FLOWGAUGE_MPI=ON
if [ "$preset" = fuzz ]; then  # libFuzzer: clang and its runtime (tests/fuzz, README "Fuzzing")
  pkgs+=(clang libclang-rt-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j"$(nproc)"
