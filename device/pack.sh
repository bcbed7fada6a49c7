#!/usr/bin/env bash
# Packs what a lent GPU machine lacks into .device/ (git ignores it), one folder per `run` call: FER2013's zip
# in as many parts as it takes for each call (the work tree plus one part) to fit the 64 MiB the device tool
# carries, and, with the first part, kornia's wheels for the machine's Python 3.12, the zip's sha256 and the
# number of parts. Run it again after the work tree grows (e.g. new shipped weights).
#   device/pack.sh [path/to/fer2013.zip]      (PACK=folder instead of .device; NO_WHEELS=1 skips the wheels;
#                                              PARTS=N splits into N parts, at most 10)
set -euo pipefail
zip=$(realpath -m "${1:-$(dirname "$0")/../../shared/data/fer2013.zip}")
cd "$(dirname "$0")/.."
pack=${PACK:-.device}
[ -f "$zip" ] || { echo "pack.sh: $zip not found" >&2; exit 1; }
rm -rf "$pack" && mkdir -p "$pack/part0/whl"
if [ -z "${NO_WHEELS:-}" ]; then
    version() { python -c "import importlib.metadata as m; print(m.version('$1'))"; }
    python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$pack/part0/whl" "kornia==$(version kornia)" "kornia_rs==$(version kornia_rs)"
fi
# What travels with every call: tracked files and untracked ones git does not ignore.
tree=$(git ls-files -co --exclude-standard -z | xargs -0 stat -c %s | awk '{s += $1} END {print s + 0}')
wheels=$(du -sb "$pack/part0" | cut -f1)
room=$((64 * 1048576 - tree - wheels - 2 * 1048576))  # 2 MiB to spare
[ "$room" -gt 4194304 ] || { echo "pack.sh: the work tree ($tree bytes) leaves no room in a 64 MiB call" >&2; exit 1; }
parts=${PARTS:-$((($(stat -c %s "$zip") + room - 1) / room))}
[ "$parts" -le 10 ] || { echo "pack.sh: $parts parts; at most 10" >&2; exit 1; }
split -n "$parts" -d -a 1 "$zip" "$pack/fer2013.zip.part-"
for ((i = 0; i < parts; i++)); do
    mkdir -p "$pack/part$i" && mv "$pack/fer2013.zip.part-$i" "$pack/part$i/"
done
sha256sum "$zip" | cut -d' ' -f1 > "$pack/part0/fer2013.zip.sha256"
echo "$parts" > "$pack/part0/fer2013.zip.parts"
du -sh "$pack"/part*
