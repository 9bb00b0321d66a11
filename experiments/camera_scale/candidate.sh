#!/usr/bin/env bash
# A retrained model against the shipped one (issue 29), through the public `eval` with the defaults of `predict`.
# The choice between them is made on the validation split only (SPEC section 6): its 53 images at camera scale
# (upsized 2.67x) and as stored, paired (vs_shipped_val_*.md). Then, as the outcome and not to choose: check A (camera scale: scale=auto restore=band tta=auto), check B (real
# detail: scale=2.6667 restore=band), and the stored size (scale=1: VCIP Validation/ and the held-out scene frames as
# they are). Then paired differences, per test set and scene type, against the shipped model's runs of run.sh.
#   experiments/camera_scale/candidate.sh NAME CKPT      [VAL_ONLY=1: the validation part alone]  (~15 min on the 2-core CPU)
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${NIR_COLORIZE_DATA:?set NIR_COLORIZE_DATA to the folder that holds vcip2020/ and nirscene1_scenes/}"
export HF_HUB_OFFLINE=1
NAME=$1 CKPT=$2
PY=${PY:-.venv/bin/python}
OUT=experiments/camera_scale
RUNS=${RUNS:-logs/camera_scale}
ev() { name=$1; shift; $PY -m nir_colorize.eval data=vcip2020_scenes "metrics=[mae,psnr,ssim,delta_e_ab,lpips]" \
         hydra.run.dir=$RUNS/$name "$@"; }
cmp() { $PY -m nir_colorize.report.compare "$1" "$2" --metrics psnr ssim lpips delta_e_ab \
          --groups data/scene_types/nirscene1_scenes_test.csv --out "$3" > /dev/null; }
mkdir -p "$OUT/$NAME"
for who in shipped "$NAME"; do
  model=(model_id=reference); [[ $who == shipped ]] || model=(ckpt_path="$CKPT")
  [[ -f $RUNS/VA_$who/per_image.csv ]] || ev "VA_$who" split=val "${model[@]}" data.test_resize=2.6667 scale=auto restore=band tta=true
  [[ -f $RUNS/VS_$who/per_image.csv ]] || ev "VS_$who" split=val "${model[@]}" scale=1 tta=false
done
for run in VA_shipped VS_shipped "VA_$NAME" "VS_$NAME"; do
  mkdir -p "$OUT/runs/$run" && cp "$RUNS/$run"/{metrics.json,metrics.md,per_image.csv} "$OUT/runs/$run/"
done
cmp "$RUNS/VA_shipped" "$RUNS/VA_$NAME" "$OUT/$NAME/vs_shipped_val_camera_scale.md"
cmp "$RUNS/VS_shipped" "$RUNS/VS_$NAME" "$OUT/$NAME/vs_shipped_val_stored_size.md"
[[ ${VAL_ONLY:-0} == 1 ]] && exit 0
ev "A_${NAME}" ckpt_path="$CKPT" data.test_resize=2.6667 scale=auto restore=band tta=true
ev "B_${NAME}" ckpt_path="$CKPT" scale=2.6667 restore=band tta=false
ev "S_${NAME}" ckpt_path="$CKPT" scale=1 tta=false
for pair in "A_auto_bandtta A_${NAME} camera_scale" "B_f267_band B_${NAME} real_detail" "B_scale1 S_${NAME} stored_size"; do
  set -- $pair
  cmp "$OUT/runs/$1" "$RUNS/$2" "$OUT/$NAME/vs_shipped_$3.md"
  mkdir -p "$OUT/runs/$2" && cp "$RUNS/$2"/{metrics.json,metrics.md,per_image.csv} "$OUT/runs/$2/"
done
PYTHONPATH=. $PY $OUT/summarize.py $OUT/runs > $OUT/table.md
