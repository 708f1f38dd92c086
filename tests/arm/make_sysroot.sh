#!/usr/bin/env bash
# An arm64 sysroot for running the device tests under QEMU user mode: Debian 12's python3 (3.11) and
# the stock aarch64 wheels of the runtime's dependencies, pinned to the versions this x86 host has, so
# both sides run the same library versions. Idempotent: each step is skipped once done.
set -euo pipefail
root=${1:?usage: make_sysroot.sh DIR}
python=${PYTHON:-python3}

if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update -qq && apt-get install -y -qq qemu-user-static debootstrap >/dev/null
fi

if [ ! -x "$root/usr/bin/python3" ]; then
  mkdir -p "$(dirname "$root")"
  rm -rf "$root.partial"
  # --foreign only downloads and unpacks the base; the second stage would need binfmt_misc, and
  # python needs nothing from it, so every downloaded package is unpacked by hand instead.
  debootstrap --foreign --arch=arm64 --variant=minbase --include=python3 bookworm "$root.partial" \
    http://deb.debian.org/debian >"$root.debootstrap.log"
  for deb in "$root.partial"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$root.partial"; done
  rm -rf "$root.partial"/var/cache/apt/archives/*.deb
  mv "$root.partial" "$root"
fi

site="$root/usr/local/lib/python3.11/dist-packages"
pins=$("$python" - <<'PY'
from importlib import metadata
print(" ".join(f"{name}=={metadata.version(name)}" for name in ("ai-edge-litert", "numpy", "pillow", "tokenizers")))
PY
)
if [ "$(cat "$site/.pins" 2>/dev/null)" != "$pins" ]; then
  rm -rf "$site"
  # ai-edge-litert's aarch64 wheels are tagged manylinux_2_27 only.
  # shellcheck disable=SC2086
  "$python" -m pip install --quiet --disable-pip-version-check --no-warn-conflicts --root-user-action=ignore --target "$site" --only-binary=:all: \
    --implementation cp --python-version 3.11 --abi cp311 \
    --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64 \
    --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 $pins
  echo "$pins" >"$site/.pins"
fi
echo "arm64 sysroot ready: $root ($pins)"
