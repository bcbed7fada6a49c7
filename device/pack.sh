#!/usr/bin/env bash
# Packs what a lent GPU machine lacks into .device/ (git ignores it), one folder per `run` call:
# FER2013's zip in three parts (the device tool carries 64 MiB per call, the work tree included) and,
# with the first part, the zip's sha256 and kornia's wheels for the machine's Python 3.12.
#   device/pack.sh [path/to/fer2013.zip]      (PACK=folder instead of .device; NO_WHEELS=1 skips the wheels)
set -euo pipefail
zip=$(realpath -m "${1:-$(dirname "$0")/../../shared/data/fer2013.zip}")
cd "$(dirname "$0")/.."
pack=${PACK:-.device}
[ -f "$zip" ] || { echo "pack.sh: $zip not found" >&2; exit 1; }
rm -rf "$pack" && mkdir -p "$pack/part0/whl" "$pack/part1" "$pack/part2"
split -n 3 -d -a 1 "$zip" "$pack/fer2013.zip.part-"
for i in 0 1 2; do mv "$pack/fer2013.zip.part-$i" "$pack/part$i/"; done
sha256sum "$zip" | cut -d' ' -f1 > "$pack/part0/fer2013.zip.sha256"
[ -n "${NO_WHEELS:-}" ] && exit 0
version() { python -c "import importlib.metadata as m; print(m.version('$1'))"; }
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$pack/part0/whl" "kornia==$(version kornia)" "kornia_rs==$(version kornia_rs)"
du -sh "$pack"/part*
