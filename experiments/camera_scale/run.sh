#!/usr/bin/env bash
# The camera-scale study (issue 29): the shipped model and the NIR copy at camera scale, through the public `eval`
# (scale=, restore=, tta=, data.test_resize=), then the tables (summarize.py) and check C with the figure (full_res.py).
# Check A: test frames upsized 2.67x (camera scale); check B: stored frames shrunk 2.67x for colorizing and restored
# from the real NIR. ~25 min on the 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${NIR_COLORIZE_DATA:?set NIR_COLORIZE_DATA to the folder that holds vcip2020/, nirscene1_scenes/ and nirscene1_samples/}"
export HF_HUB_OFFLINE=1
PY=${PY:-.venv/bin/python}
OUT=experiments/camera_scale
RUNS=${RUNS:-logs/camera_scale}
ev() { name=$1; shift; $PY -m nir_colorize.eval data=vcip2020_scenes "metrics=[mae,psnr,ssim,delta_e_ab,lpips]" \
         hydra.run.dir=$RUNS/$name "$@"; }
CAM=data.test_resize=2.6667
ev A_copy $CAM model_id=nir_copy scale=1
ev A_scale1 $CAM scale=1 tta=false
for m in band guided bfwls bicubic; do ev A_auto_$m $CAM scale=auto restore=$m tta=false; done
ev A_auto_bandtta $CAM scale=auto restore=band tta=true    # = the defaults (tta=auto flips where the frame shrinks)
ev A_f267_band $CAM scale=2.6667 restore=band tta=false    # VCIP's crops at their true factor
ev B_copy model_id=nir_copy scale=1
ev B_scale1 scale=1 tta=false
for m in band guided bfwls bicubic; do ev B_f267_$m scale=2.6667 restore=$m tta=false; done
PYTHONPATH=. $PY $OUT/summarize.py $RUNS > $OUT/table.md
PYTHONPATH=. $PY $OUT/full_res.py "$NIR_COLORIZE_DATA" $OUT
