#!/usr/bin/env bash
# Score the shipped model (nir_colorize/weights/reference.safetensors) on both test sets and write every paired
# comparison of its model card: bash experiments/reference_model/evaluate.sh  (from the repository root; data
# roots $NIR_COLORIZE_DATA/vcip2020 and .../nirscene1_scenes, default data/..., or VCIP=... SCENES=...). Nothing
# here selects anything: the model and its options are fixed.
set -euo pipefail
E=experiments/reference_model
PY=${PY:-.venv/bin/python}
D=${NIR_COLORIZE_DATA:-data}
DATA=(data=vcip2020_scenes "data.source.sources.vcip.root=${VCIP:-$D/vcip2020}"
      "data.source.sources.scenes.root=${SCENES:-$D/nirscene1_scenes}")
ev() { local out=$1; shift; rm -rf "$out"; "$PY" -m nir_colorize.eval "${DATA[@]}" "$@" hydra.run.dir="$out"; }
ev $E/eval fusion=bfwls                            # plain and + BFWLS (stages raw, bfwls), bf16 autocast
ev $E/eval_fp32 trainer.precision=32-true          # plain, fp32
ev $E/tta_bfwls fusion=bfwls tta=true              # flip test-time averaging, plain and + BFWLS
cmp() { "$PY" -m nir_colorize.report.compare "$@" > /dev/null; }
B=$E/baseline/per_image.csv                        # NIR copied to R, G, B (model_id=nir_copy)
cmp $B $E/eval/per_image.csv --out $E/vs_nir_copy.md
cmp $B $E/eval/per_image.csv --stage-b bfwls --out $E/bfwls_vs_nir_copy.md
cmp $E/eval/per_image.csv $E/eval/per_image.csv --stage-b bfwls --out $E/bfwls_vs_plain.md
cmp $E/eval_fp32/per_image.csv $E/eval/per_image.csv --out $E/bf16_vs_fp32.md
cmp $E/eval/per_image.csv $E/tta_bfwls/per_image.csv --out $E/tta_vs_plain.md
cmp $E/eval/per_image.csv $E/tta_bfwls/per_image.csv --stage bfwls --out $E/tta_bfwls_vs_bfwls.md
cmp $B $E/tta_bfwls/per_image.csv --stage-b bfwls --out $E/tta_bfwls_vs_nir_copy.md
cmp $E/linknet/eval/per_image.csv $E/eval/per_image.csv --out $E/vs_linknet.md
cmp $E/linknet/eval/per_image.csv $E/eval/per_image.csv --stage bfwls --out $E/vs_linknet_bfwls.md
cmp $E/finetune/stage1/per_image.csv $E/eval/per_image.csv --out $E/vs_stage1.md
