#!/usr/bin/env bash
# Packs what a lent GPU machine lacks into .device/ (git ignores it), one folder per `run` call:
# FER2013's zip in three parts (the device tool carries 64 MiB per call, the work tree included) and,
# with the first part, the zip's sha256 and kornia's wheels for the machine's Python 3.12.
#   device/pack.sh [path/to/fer2013.zip]
set -euo pipefail
cd "$(dirname "$0")/.."
zip=${1:-../shared/data/fer2013.zip}
[ -f "$zip" ] || { echo "pack.sh: $zip not found" >&2; exit 1; }
rm -rf .device && mkdir -p .device/part0/whl .device/part1 .device/part2
split -n 3 -d -a 1 "$zip" .device/fer2013.zip.part-
for i in 0 1 2; do mv ".device/fer2013.zip.part-$i" ".device/part$i/"; done
sha256sum "$zip" | cut -d' ' -f1 > .device/part0/fer2013.zip.sha256
version() { python -c "import importlib.metadata as m; print(m.version('$1'))"; }
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .device/part0/whl "kornia==$(version kornia)" "kornia_rs==$(version kornia_rs)"
du -sh .device/part*
