#!/usr/bin/env bash
# Installs what tlcl needs to build and test on Debian (12 or newer),
# idempotently and without questions: packages already present are not
# touched, and apt's lists are refreshed only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  ocl-icd-opencl-dev opencl-c-headers ocl-icd-libopencl1 clinfo
  pocl-opencl-icd mesa-opencl-icd oclgrind
  libclblast-dev libyaml-dev libcjson-dev libstb-dev libhdf5-dev zlib1g-dev
  libopenblas-dev libplplot-dev plplot-driver-cairo
  libcurl4-openssl-dev
  clang libclang-rt-dev
  libjpeg62-turbo-dev
  libopenmpi-dev openmpi-bin
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
else
  echo "setup: all ${#PACKAGES[@]} packages present"
fi
