#!/usr/bin/env bash
# Engine speed on CUDA, for when an accelerator is available (none is lent on the dev machine).
#   bench/gpu.sh                 # model in var/models (python manage.py tts_install_model)
#   CLIPS=960 bench/gpu.sh       # a longer throughput run
# 1. the engine bench (RTF, first chunk, precompute strategies, median of 3) on CUDA;
# 2. GPU precompute throughput: synthesize_batch's per-device strategy (padded batches) over
#    CLIPS clips, the path tts.services.speech_clips_precompute takes with TTS_DEVICE=cuda.
# Goal (issue 14): >= 200 clips/s. Figures land in var/bench/tts_gpu*.json; record them in
# bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CLIPS=${CLIPS:-480}
export TTS_DEVICE=cuda

"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device: torch.cuda.is_available() is False")'
"$PY" -c 'import torch; print("GPU:", torch.cuda.get_device_name(0), "torch", torch.__version__)'

echo "== engine bench on CUDA (median of 3)"
"$PY" bench/tts_bench.py --device cuda --repeats 3 --clips 48 --json var/bench/tts_gpu_engine.json

echo "== GPU precompute throughput, $CLIPS clips"
"$PY" bench/tts_bench.py --device cuda --repeats 3 --clips "$CLIPS" --json var/bench/tts_gpu_precompute.json

"$PY" - <<'PY'
import json, statistics
rates = json.load(open("var/bench/tts_gpu_precompute.json"))["precompute_clips_per_s"]
best = max(rates, key=lambda k: statistics.median(rates[k]))
rate = statistics.median(rates[best])
print(f"GPU precompute: {rate:.0f} clips/s ({best}); goal >= 200: {'met' if rate >= 200 else 'NOT met'}")
PY
