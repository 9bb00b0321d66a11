#!/usr/bin/env bash
# The recipe study on VCIP 2020 (experiments/recipe_vcip2020/README.md): equal 4-minute CPU budget per recipe,
# validation on the training carve-out, test on Validation/ (never trained on, never selects).
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 WANDB_MODE=offline
.venv/bin/python -m nir_colorize.train -m study=recipe_vcip2020 \
  +experiment=recipe_paper,recipe_l1_cosine,recipe_l1_cosine_128,recipe_colornet_128,recipe_l1ssim_128,recipe_ema_128,recipe_jitter_128,recipe_vgg16_128,recipe_vgg16_frozen_128,recipe_vgg16_frozen_128_b8,recipe_vgg16_frozen_128_b32 "$@"
.venv/bin/python -m nir_colorize.report --study recipe_vcip2020 --out experiments/recipe_vcip2020
