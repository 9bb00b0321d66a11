#!/usr/bin/env bash
# Seed-to-seed spread of the two best recipes (experiments/recipe_vcip2020/README.md, "Seed repeats"): the same
# 4-minute budget, seeds 1 and 2 next to the study's seed 42. libgomp's default thread policy, as in the study.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 WANDB_MODE=offline GOMP_SPINCOUNT=300000
.venv/bin/python -m nir_colorize.train -m study=recipe_seeds +experiment=recipe_l1_cosine_128,recipe_l1_cosine seed=1,2 "$@"
.venv/bin/python -m nir_colorize.report --study recipe_seeds --out experiments/recipe_vcip2020/seeds
