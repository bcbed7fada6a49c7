#!/usr/bin/env bash
# On the lent GPU machine, once device/run.sh has staged the data: the ablation's remaining seeds and the
# accurate recipe's variants, all at once on the one GPU (one small job leaves most of it idle), one
# process per ablation run so that none waits for another. Each finished ablation run leaves its record
# in benchmarks/results/ablation_runs; a run still going at LIMIT seconds gets SIGTERM (Lightning stops
# after the batch and raises: no record), SIGKILL 20 s later. Results go to $OUT: results.tgz (records,
# reports, logs, plots) and each accurate variant's weights.
#   device/run.sh bash device/jobs.sh
# Environment: SEEDS (ablation seeds, default "1 2"), PLACEMENTS (default "none mid post"; runs with a
# record are skipped), LIMIT (default 470 s, so that staging, runs and packing stay inside the call's
# 600 s), VARIANTS (of plan_epochs.py's table; default accurate_b512 accurate_b512_mixup
# accurate_b512_cutmix) and EPOCHS_ACCURATE (default: planned by plan_epochs.py from the throughput
# probe.sh measured in an earlier call on this machine, else from the H200's in benchmarks/results),
# EXTRA (flags for every run; a dry run on a CPU: EXTRA="--accelerator cpu --subset 300 --epochs 1").
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set by the device tool}"
STAGE=${RESDROPNET_STAGE:-/tmp/resdropnet-device}
DATA=${DATA:-$STAGE/cache}
RUNS=$STAGE/runs
LIMIT=${LIMIT:-470}
EXTRA=${EXTRA:-}
mkdir -p "$RUNS"
export OMP_NUM_THREADS=1  # many processes share 16 cores; the GPU does the work

probes=$STAGE/probe  # probe.sh's, where an earlier call on this machine ran it; else the committed H200 figures
[ -d "$probes" ] || probes=benchmarks/results
VARIANTS=${VARIANTS:-accurate_b512 accurate_b512_mixup accurate_b512_cutmix}
plan=$(python3 device/plan_epochs.py --probes "$probes" --limit "$LIMIT" --variants "$VARIANTS" \
    --placements "${PLACEMENTS:-none mid post}" --seeds "${SEEDS:-1 2}" ${EPOCHS_ACCURATE:+--epochs $EPOCHS_ACCURATE}) || exit 1
echo "$plan"
# Lightning's max_time ends a variant gracefully (best checkpoint reported) 60 s before the hard limit.
max_time=$(printf '00:00:%02d:%02d' $(((LIMIT - 60) / 60)) $(((LIMIT - 60) % 60)))
while IFS=$'\t' read -r kind name number flags; do
    if [ "$kind" = ablate ]; then  # name: the placement, number: the seed, flags: the rate
        timeout -k 20 "$LIMIT" python3 -m resdropnet ablate --config configs/fast.yaml --data "$DATA" --rates "$flags" \
            --placements "$name" --seeds "$number" --ablation-out "$RUNS/ablation" \
            --records benchmarks/results/ablation_runs $EXTRA > "$RUNS/ablate_${name}_$number.log" 2>&1 &
    else  # name: the variant, number: its epochs
        timeout -k 20 "$LIMIT" python3 -m resdropnet train --config configs/accurate.yaml --data "$DATA" --out "$RUNS/$name" \
            --max-time "$max_time" --epochs "$number" $flags $EXTRA > "$RUNS/$name.log" 2>&1 &
    fi
done <<< "$plan"
wait
tail -n 3 "$RUNS"/*.log
tar czf "$OUT/results.tgz" --exclude='*.ckpt' --exclude='*.safetensors' --exclude=tensorboard \
    benchmarks/results/ablation_runs -C "$STAGE" runs
for variant in $VARIANTS; do
    [ -f "$RUNS/$variant/model.safetensors" ] && cp "$RUNS/$variant/model.safetensors" "$OUT/$variant.safetensors"
done
ls -la "$OUT"
