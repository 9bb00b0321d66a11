#!/usr/bin/env bash
# The paper's ablation (Table 2) on VCIP 2020 + nirscene1_scenes with the honest protocol (issue 30), as it ran on
# the 2-core CPU: four trainings of 18 epochs (128x128 crops, batch 16, seed 42, L2 sum, Adam 1e-4), each best
# checkpoint tested on VCIP Validation/ (18) and the held-out scene frames (39); ColorNet with and without BFWLS.
# Then the report (tables, paired claims, figures) into this folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${NIR_COLORIZE_DATA:?set NIR_COLORIZE_DATA to the folder that holds vcip2020/ and nirscene1_scenes/}"
export HF_HUB_OFFLINE=1 WANDB_MODE=offline
PY=${PY:-.venv/bin/python}
$PY -m nir_colorize.train -m +experiment=ablation_colornet,ablation_acd,ablation_scd,ablation_linknet \
  study=ablation_vcip2020 data=vcip2020_scenes data.crop_size=128 trainer.max_epochs=18 logger=wandb
SWEEP=$(ls -d logs/train/multiruns/ablation_vcip2020/*/ | tail -1)
$PY -m nir_colorize.report "$SWEEP" --out experiments/ablation_vcip2020 --images 6 --note "$(cat experiments/ablation_vcip2020/NOTE.md)"
