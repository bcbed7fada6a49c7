#!/usr/bin/env bash
# On the lent GPU machine: training images/s of the recipes' architectures alone (also resdropnet_s at batch
# 512) and of resdropnet_s as several processes sharing the GPU, at batch 128 and 512 (jobs.sh runs several at
# once). Optional: jobs.sh trains on a time budget and needs no figures from it; each run's metrics.csv has its
# own images/s. JSON to $OUT.
#   device/run.sh bash device/probe.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set by the device tool}"
python3 benchmarks/train_throughput.py --device cuda --steps 100 --models resdropnet_s,resdropnet_w,resdropnet_m
python3 benchmarks/train_throughput.py --device cuda --steps 100 --batch-size 512 --models resdropnet_s --name train_throughput_cuda_b512
for i in 1 2 3 4; do
    python3 benchmarks/train_throughput.py --device cuda --steps 300 --models resdropnet_s --name "train_throughput_cuda_x4_$i" &
done
wait
for i in 1 2 3; do
    python3 benchmarks/train_throughput.py --device cuda --steps 100 --batch-size 512 --models resdropnet_s --name "train_throughput_cuda_b512_x3_$i" &
done
wait
tar czf "$OUT/probe.tgz" benchmarks/results/train_throughput_cuda*.json  # $OUT returns at most 8 files
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv || true
