#!/usr/bin/env bash
# On the lent GPU machine, once device/run.sh has staged the data: the ablation's remaining seeds and the
# accurate recipe's variants, all at once on the one GPU (one small job leaves most of it idle), one
# process per ablation run so that none waits for another. Each finished ablation run leaves its record
# in benchmarks/results/ablation_runs; a run still going at LIMIT seconds gets SIGTERM (Lightning stops
# after the batch and raises: no record), SIGKILL 20 s later. Results go to $OUT: results.tgz (records,
# reports, logs, plots) and each accurate variant's weights.
#   device/run.sh bash device/jobs.sh
# Environment: SEEDS (ablation seeds, default "1 2"), PLACEMENTS (default "none mid post"), LIMIT (default
# 470 s, so that staging, runs and packing stay inside the call's 600 s), EPOCHS_ACCURATE and VARIANTS
# (default: planned by plan_epochs.py from probe.sh's throughput, staged by an earlier call; without a
# probe, the config's epochs and all three variants: accurate, accurate_cutmix, accurate_mixup),
# EXTRA (flags for every run; a dry run on a CPU: EXTRA="--accelerator cpu --subset 300 --epochs 1").
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set by the device tool}"
STAGE=${RESDROPNET_STAGE:-/tmp/resdropnet-device}
DATA=${DATA:-$STAGE/cache}
RUNS=$STAGE/runs
LIMIT=${LIMIT:-470}
EXTRA=${EXTRA:-}
declare -A VARIANT_FLAGS=([accurate]="" [accurate_cutmix]="--mix cutmix" [accurate_mixup]="--mix mixup")
mkdir -p "$RUNS"
export OMP_NUM_THREADS=1  # many processes share 16 cores; the GPU does the work

pending=0
for placement in ${PLACEMENTS:-none mid post}; do
    variant_dir=resdropnet_s_$placement
    [ "$placement" = none ] || variant_dir+=_0.1
    for seed in ${SEEDS:-1 2}; do
        [ -f "benchmarks/results/ablation_runs/$variant_dir/seed$seed.json" ] && continue
        pending=$((pending + 1))
        timeout -k 20 "$LIMIT" python3 -m resdropnet ablate --config configs/fast.yaml --data "$DATA" --rates 0.1 \
            --placements "$placement" --seeds "$seed" --ablation-out "$RUNS/ablation" \
            --records benchmarks/results/ablation_runs $EXTRA > "$RUNS/ablate_${placement}_$seed.log" 2>&1 &
    done
done
if [ -z "${EPOCHS_ACCURATE:-}" ] && [ -d "$STAGE/probe" ]; then
    plan=$(python3 device/plan_epochs.py --probes "$STAGE/probe" --limit "$LIMIT" --pending "$pending") || exit 1
    echo "$plan" && eval "$plan"
fi
VARIANTS=${VARIANTS:-accurate accurate_cutmix accurate_mixup}
# Lightning's max_time ends a variant gracefully (best checkpoint reported) 60 s before the hard limit.
max_time=$(printf '00:00:%02d:%02d' $(((LIMIT - 60) / 60)) $(((LIMIT - 60) % 60)))
for variant in $VARIANTS; do
    timeout -k 20 "$LIMIT" python3 -m resdropnet train --config configs/accurate.yaml --data "$DATA" --out "$RUNS/$variant" \
        --max-time "$max_time" ${EPOCHS_ACCURATE:+--epochs $EPOCHS_ACCURATE} ${VARIANT_FLAGS[$variant]} $EXTRA \
        > "$RUNS/$variant.log" 2>&1 &
done
wait
tail -n 3 "$RUNS"/*.log
tar czf "$OUT/results.tgz" --exclude='*.ckpt' --exclude='*.safetensors' --exclude=tensorboard \
    benchmarks/results/ablation_runs -C "$STAGE" runs
for variant in $VARIANTS; do
    [ -f "$RUNS/$variant/model.safetensors" ] && cp "$RUNS/$variant/model.safetensors" "$OUT/$variant.safetensors"
done
ls -la "$OUT"
