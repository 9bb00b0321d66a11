#!/usr/bin/env bash
# fp32 against bf16 autocast training curves on VCIP 2020, two seeds each (issue 15's accuracy check).
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 WANDB_MODE=offline
.venv/bin/python -m nir_colorize.train -m +experiment=recipe_l1_cosine_128 study=precision_check \
  trainer.precision=32-true,bf16-mixed seed=1,2 trainer.max_epochs=8 trainer.max_time=null \
  trainer.check_val_every_n_epoch=1 test=false "$@"
