#!/usr/bin/env bash
# On the lent GPU machine, once device/run.sh has staged the data: what device/plan_runs.py lists, all at once
# on the one GPU (one small job leaves most of it idle), one process per run so that none waits for another:
# the ablation's runs without a record, the screens' seeds (candidate recipes at fixed epochs) and the
# accurate recipe's variants, which train on a time budget of LIMIT less 75 s (their schedules end when the
# time is up). A finished ablation or screen run leaves its record in benchmarks/results/ablation_runs or
# .../screens; a run still going at LIMIT seconds gets SIGTERM (Lightning stops after the batch and raises:
# no record), SIGKILL 20 s later. Results go to $OUT: results.tgz (records, reports, logs, plots) and each
# variant's weights.
#   device/run.sh bash device/jobs.sh
# Environment: VARIANTS (of plan_runs.py's table, at most 5; default its TEACHERS, the four that the optional
# second call, VARIANTS=accurate_b512_ens, distils from), SCREENS (default "fast28"; SCREEN_SEEDS "0 1 2"), SEEDS, PLACEMENTS and
# RATES (the ablation's; default "1 2", "none mid post" and "0.1"; seeds 0-2 of rates 0.1
# and 0.2 all have a record, so only a new seed or rate trains), LIMIT (default 470 s, so that staging, runs and packing stay inside
# the call's 600 s), EPOCHS_ACCURATE (fixed epochs for the variants instead of the time budget), EXTRA (flags
# for every run; a dry run on a CPU: EPOCHS_ACCURATE=1 EXTRA="--accelerator cpu --subset 300 --epochs 1").
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set by the device tool}"
STAGE=${RESDROPNET_STAGE:-/tmp/resdropnet-device}
DATA=${DATA:-$STAGE/cache}
RUNS=$STAGE/runs
LIMIT=${LIMIT:-470}
EXTRA=${EXTRA:-}
mkdir -p "$RUNS" benchmarks/results/screens
export OMP_NUM_THREADS=1  # many processes share 16 cores; the GPU does the work

SCREENS=${SCREENS-fast28}
plan=$(python3 device/plan_runs.py --limit "$LIMIT" ${VARIANTS+--variants "$VARIANTS"} --screens "$SCREENS" --runs "$RUNS" \
    --screen-seeds "${SCREEN_SEEDS:-0 1 2}" --placements "${PLACEMENTS:-none mid post}" --seeds "${SEEDS:-1 2}" \
    --rates "${RATES:-0.1}" \
    ${EPOCHS_ACCURATE:+--epochs $EPOCHS_ACCURATE}) || exit 1
echo "$plan"
while IFS=$'\t' read -r name _epochs args; do
    [ -n "$name" ] || continue  # an empty plan
    # shellcheck disable=SC2086  # args and EXTRA are word lists
    timeout -k 20 "$LIMIT" python3 -m resdropnet $args --data "$DATA" $EXTRA > "$RUNS/$name.log" 2>&1 &
done <<< "$plan"
wait
tail -n 3 "$RUNS"/*.log
tar czf "$OUT/results.tgz" --exclude='*.ckpt' --exclude='*.safetensors' --exclude=tensorboard \
    benchmarks/results/ablation_runs benchmarks/results/screens -C "$STAGE" runs
for run in $(cut -f1 <<< "$plan"); do  # the variants' weights (fixed runs keep theirs deeper, in their records' folders)
    [ -f "$RUNS/$run/model.safetensors" ] && cp "$RUNS/$run/model.safetensors" "$OUT/$run.safetensors"
done
ls -la "$OUT"
