#!/usr/bin/env bash
# The GPU checks and benchmarks, in two calls on a GPU machine that has PyTorch and
# Lightning but not every other dependency, nor the data (a bare PyTorch image, offline).
#
# Prepare on a machine with PyPI and the data folder: `make gpu-bundle` writes .gpu/ (ignored by
# git): .gpu/wheels, the packages a bare PyTorch image lacks (datasets, hydra-core,
# omegaconf, antlr4, dill, multiprocess), and .gpu/data, a copy of sst2/, ptb/ and
# tinyshakespeare/ from DATA_DIR. Then, on the GPU machine, in the repository's root:
#
#   bash scripts/gpu_checks.sh speed   # about 4 min: cuDNN floor, SST-2 step, host syncs
#   bash scripts/gpu_checks.sh lm      # about 8 min: Tiny Shakespeare and PTB, side by side
#
# speed: (1) the bare torch LSTM/GRU/RNN against nlpseq's encoder at the shapes of the
# SST-2 recipe and at a reference shape (2-layer bidirectional, B128 T64 H512); (2) the SST-2
# recipe's training step, nlpseq's Lightning loop against a plain PyTorch loop over the same
# model and batches (both cells); (3) how many host syncs a step makes (--sync-debug).
# lm: the shipped `experiment=tiny_shakespeare encoder=gru` (30 epochs) and `experiment=ptb
# encoder=lstm` cut to PTB_EPOCHS (default 30; the schedule decays over them) on one GPU at
# once, each also stopped by LM_MINUTES (default 7) of training; their metrics.json hold the
# validation loss (nats/char) and the test perplexity.
#
# Results go to $OUT (default outputs/gpu_checks): a log and at most eight files. ACCEL=cpu QUICK=1 runs every step on the CPU with tiny sizes, to check
# the script itself.
set -uo pipefail

step=${1:-speed}
OUT=${OUT:-outputs/gpu_checks}
BUNDLE=${BUNDLE:-.gpu}
ACCEL=${ACCEL:-gpu}
QUICK=${QUICK:-0}
LM_MINUTES=${LM_MINUTES:-7}
PTB_EPOCHS=${PTB_EPOCHS:-30}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_checks_$step.log") 2>&1
log_writer=$!
trap 'exec >&- 2>&-; wait $log_writer' EXIT  # the log whole before the files are collected

if ! $PYTHON -c "import datasets, hydra" 2>/dev/null; then  # the bare image: take the wheels
    $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/nlpseq-site "$BUNDLE"/wheels/*.whl || exit 1
    export PYTHONPATH=/tmp/nlpseq-site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
    HF_DATASETS_DISABLE_PROGRESS_BARS=1
export NLPSEQ_DATA_DIR=${NLPSEQ_DATA_DIR:-$BUNDLE/data}
device=$([ "$ACCEL" = gpu ] && echo cuda || echo cpu)
trainer=$([ "$ACCEL" = gpu ] && echo gpu || echo cpu)
if [ "$QUICK" = 1 ]; then  # sizes that check the script, not the machine
    execution_sizes=(--repeats 1 --batch 4 --input 8 --hidden 8)
    step_sizes=(--batches 2 --rounds 1)
    lm_sizes=(trainer.max_epochs=1 trainer.limit_train_batches=3 trainer.limit_val_batches=2
              trainer.limit_test_batches=2 encoder.hidden_size=16 task.embedding_dim=16)
else
    execution_sizes=(--repeats 10)
    step_sizes=()
    lm_sizes=("trainer.max_time=00:00:$(printf %02d "$LM_MINUTES"):00")
fi

echo "== $(date -u +%FT%TZ) gpu_checks.sh $step on $ACCEL"
[ "$ACCEL" = gpu ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PYTHON -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, \
'lightning', pl.__version__, 'cuda', torch.version.cuda)"

case $step in
speed)
    echo "== bare torch modules against nlpseq's encoder (forward + backward, real tokens/s)"
    $PYTHON scripts/bench_execution.py --device "$device" --raw --cells lstm,gru,rnn \
        --lengths 64 --spreads 0 --batch 128 --input 512 --hidden 512 --layers 2 \
        "${execution_sizes[@]}" --json "$OUT/cudnn_reference.json"
    $PYTHON scripts/bench_execution.py --device "$device" --raw --cells lstm,gru \
        --lengths 16,32,64 --spreads 0,0.1 --batch 128 --input 600 --hidden 256 --layers 2 \
        "${execution_sizes[@]}" --json "$OUT/cudnn_sst2_shapes.json"
    for cell in lstm gru; do
        echo "== SST-2 recipe, $cell: nlpseq's loop against a plain PyTorch loop"
        $PYTHON scripts/bench_train_step.py experiment=sst2 encoder=$cell \
            --accelerator "$ACCEL" "${step_sizes[@]}" --json "$OUT/train_step_sst2_$cell.json"
    done
    if [ "$ACCEL" = gpu ]; then
        echo "== host syncs in 20 SST-2 steps (torch.cuda.set_sync_debug_mode('warn'))"
        $PYTHON scripts/bench_train_step.py experiment=sst2 --accelerator gpu --sync-debug \
            --batches 20 --rounds 1 > "$OUT/sync_debug.txt" 2>&1
        echo "sync warnings: $(grep -c -i 'synchroniz' "$OUT/sync_debug.txt")"
        grep -i -A3 'synchroniz' "$OUT/sync_debug.txt" | sort | uniq -c | sort -rn | head -20
    fi
    ;;
lm)
    echo "== Tiny Shakespeare (GRU) and PTB (LSTM), shipped experiments, side by side"
    runs=/tmp/nlpseq-gpu-runs
    rm -rf "$runs"
    $PYTHON -m nlpseq.cli.train experiment=tiny_shakespeare encoder=gru trainer=$trainer \
        trainer.enable_progress_bar=false "${lm_sizes[@]}" hydra.run.dir=$runs/ts_gru \
        > "$OUT/lm_tiny_shakespeare.log" 2>&1 &
    shakespeare=$!
    $PYTHON -m nlpseq.cli.train experiment=ptb encoder=lstm trainer=$trainer \
        trainer.max_epochs="$PTB_EPOCHS" trainer.enable_progress_bar=false "${lm_sizes[@]}" \
        hydra.run.dir=$runs/ptb_lstm \
        > "$OUT/lm_ptb.log" 2>&1 &
    wait $shakespeare $!  # (a bare wait would wait for the log's tee too)
    for run in ts_gru ptb_lstm; do
        cp "$runs/$run/metrics.json" "$OUT/metrics_$run.json" && echo "== $run" \
            && cat "$OUT/metrics_$run.json"
    done
    tail -n 5 "$OUT"/lm_*.log
    ;;
*)
    echo "usage: bash scripts/gpu_checks.sh speed|lm" >&2
    exit 2
    ;;
esac
