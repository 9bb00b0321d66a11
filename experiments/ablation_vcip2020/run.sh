#!/usr/bin/env bash
# The paper's ablation (Table 2) on VCIP 2020 + nirscene1_scenes with the honest protocol (issue 30), as it ran on
# the 2-core CPU: four trainings of 18 epochs (128x128 crops, batch 16, seed 42, L2 sum, Adam 1e-4), each best
# checkpoint tested on VCIP Validation/ (18) and the held-out scene frames (39); ColorNet with and without BFWLS.
# Then the closest claim (ColorNet - ACD) retrained on seeds 43 and 44, and the report (tables, paired claims per
# seed, figures) into this folder, with each job's config, log, validation curve and test results in runs/ and seeds/.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${NIR_COLORIZE_DATA:?set NIR_COLORIZE_DATA to the folder that holds vcip2020/ and nirscene1_scenes/}"
export HF_HUB_OFFLINE=1 WANDB_MODE=offline
PY=${PY:-.venv/bin/python}
OUT=experiments/ablation_vcip2020
COMMON=(study=ablation_vcip2020 data=vcip2020_scenes data.crop_size=128 trainer.max_epochs=18 logger=wandb)
newest() { ls -d logs/train/multiruns/ablation_vcip2020/*/ | tail -1; }

keep() {  # the small files of every job of sweep $1 into $2/<job>/
  for job in $(ls "$1" | grep -E '^[0-9]+$'); do
    for f in .hydra/config.yaml .hydra/overrides.yaml train.log csv/metrics.csv test/metrics.json test/metrics.md \
             test/per_image.csv; do
      [ -f "$1/$job/$f" ] && install -D -m 644 "$1/$job/$f" "$2/$job/$f"
    done
  done
  cp "$1/multirun.yaml" "$2/multirun.yaml"
}

$PY -m nir_colorize.train -m +experiment=ablation_colornet,ablation_acd,ablation_scd,ablation_linknet "${COMMON[@]}"
SWEEP=$(newest)
keep "$SWEEP" $OUT/runs
$PY -m nir_colorize.train -m seed=43,44 +experiment=ablation_colornet,ablation_acd "${COMMON[@]}"
SEEDS=$(newest)
keep "$SEEDS" $OUT/seeds
$PY -m nir_colorize.report "$SWEEP" --out $OUT --images 6 --seeds "$SEEDS" --note "$(cat $OUT/NOTE.md)"
# The project's best from-scratch recipe (L1, Adam 1e-3, one warm-up epoch then cosine) for SCD and ColorNet only:
# does the ranking depend on the recipe? Same data, crops, batch, seed and epochs; paired tables in l1_cosine/.
$PY -m nir_colorize.train -m +experiment=ablation_colornet,ablation_scd +recipe=l1_cosine module.loss=l1 \
  module.loss_reduction=mean module.lr=1e-3 module.schedule=cosine module.warmup_epochs=1 "${COMMON[@]}"
L1=$(newest)
keep "$L1" $OUT/l1_cosine/runs
cmp() { $PY -m nir_colorize.report.compare "$1/test" "$2/test" --metrics mae psnr ssim delta_e_ab lpips --out "$3" > /dev/null; }
cmp $OUT/runs/2 $OUT/runs/0 $OUT/l1_cosine/colornet_vs_scd_l2.md                # L2: ColorNet - SCD
cmp $OUT/l1_cosine/runs/1 $OUT/l1_cosine/runs/0 $OUT/l1_cosine/colornet_vs_scd_l1.md  # L1 + cosine: ColorNet - SCD
cmp $OUT/runs/0 $OUT/l1_cosine/runs/0 $OUT/l1_cosine/colornet_l1_vs_l2.md
cmp $OUT/runs/2 $OUT/l1_cosine/runs/1 $OUT/l1_cosine/scd_l1_vs_l2.md
