#!/usr/bin/env bash
# On the lent GPU machine: stages what this call carried (.device/partN, see pack.sh) under /tmp, where it
# outlives the call while the machine stays warm; once all the parts are there, rebuilds fer2013.zip,
# checks its sha256 and prepares the cache. Then runs the given command with the package importable.
#   device/run.sh COMMAND...     e.g. device/run.sh python3 benchmarks/train_throughput.py --device cuda
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=${RESDROPNET_STAGE:-/tmp/resdropnet-device}
mkdir -p "$STAGE/site"
for part in "${PACK:-.device}"/part*; do
    [ -d "$part" ] && cp -r "$part"/. "$STAGE/"
done
if ! python3 -c "import kornia" 2> /dev/null && [ ! -e "$STAGE/site/.installed" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$STAGE/site" "$STAGE"/whl/*.whl
    touch "$STAGE/site/.installed"
fi
export PYTHONPATH="$PWD/src:$STAGE/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
all_parts_staged() {
    [ -f "$STAGE/fer2013.zip.sha256" ] && [ -f "$STAGE/fer2013.zip.parts" ] || return 1
    for ((i = 0; i < $(cat "$STAGE/fer2013.zip.parts"); i++)); do
        [ -f "$STAGE/fer2013.zip.part-$i" ] || return 1
    done
}
if [ ! -d "$STAGE/cache" ] && all_parts_staged; then
    for ((i = 0; i < $(cat "$STAGE/fer2013.zip.parts"); i++)); do cat "$STAGE/fer2013.zip.part-$i"; done > "$STAGE/fer2013.zip"
    echo "$(cat "$STAGE/fer2013.zip.sha256")  $STAGE/fer2013.zip" | sha256sum -c -
    python3 -m resdropnet data prepare "$STAGE/fer2013.zip" --out "$STAGE/cache"
fi
echo "staged: $(cd "$STAGE" && ls -d fer2013.zip.part-* cache 2>/dev/null | tr '\n' ' ')"
"$@"
