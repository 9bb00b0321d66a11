"""Export the network to ONNX: ``python -m nir_colorize.export [ckpt_path=P | model_id=ID] [output=F] [opset=N]``.

The network of ``ckpt_path`` (else the shipped ``model_id``; ``nir_colorize.loading``) in fp32, with dynamic
batch, height and width, checked with onnxruntime against torch at an odd size before it is written
(atomically). The graph, its metadata and the exporter's choices: ``nir_colorize.onnx_export`` and
docs/predict.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from nir_colorize import CONFIG_DIR, loading, onnx_export
from nir_colorize.errors import UserError

FORMATS = ("onnx",)


def run(cfg: DictConfig) -> dict[str, Any]:
    if str(cfg.format) not in FORMATS:
        raise UserError(f"format={cfg.format}: exports as {', '.join(FORMATS)}")
    onnx_export.check_opset(int(cfg.opset))
    net, name, meta = loading.export_source(cfg.get("ckpt_path"), cfg.get("model_id"))
    result = onnx_export.export_onnx(net, Path(cfg.output), int(cfg.opset), model_name=name, meta=meta,
                                     check=bool(cfg.check))
    checked = (f"; onnxruntime matches torch within {result['max_abs_diff']:.2g}"
               if result["max_abs_diff"] is not None else "")
    print(f"exported {name} ({meta['source']}) to {result['path']}: {result['bytes'] / 2**20:.1f} MiB, "
          f"opset {result['opset']}, pad_multiple {result['meta']['pad_multiple']}{checked}")
    return result


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    from nir_colorize.utils.errors import run_main

    run_main(main)  # a user error: one line on stderr, exit status 2 (HYDRA_FULL_ERROR=1: the traceback)
