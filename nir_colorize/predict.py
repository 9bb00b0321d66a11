"""Colorize NIR images of any size: ``python -m nir_colorize.predict [ckpt_path=P] input=FILE|DIR|GLOB output=DIR``.

Options: ``fusion=bfwls`` (BFWLS at full resolution after the network), ``tile=`` / ``overlap=`` /
``tile_above=`` (tiled inference, see ``nir_colorize.inference``; ``tile=null``: always whole images),
``overwrite=true`` (replace existing outputs), ``backend=onnxruntime [onnx_path=FILE]`` (the ONNX export of
``nir_colorize.export`` run by onnxruntime on the CPU instead of torch; ``onnx_path=null``: the network of
``ckpt_path`` / ``model_id``, exported once into the cache, see ``nir_colorize.loading``). One ``<stem>.png``
per input, at the input's size; a folder's images (e.g. a video's frames) in natural order (``f2`` before
``f10``). Unreadable inputs are reported and skipped; the run then exits with status 1.

A video (``input=clip.mp4 output=out.mp4``, ``nir_colorize.video``) is colorized frame by frame through the
same path into a video of its frame rate and size; ``video.chroma_smoothing=W`` (also for a folder of frames)
averages the chroma over frames against flicker. The loops are ``nir_colorize.pipeline``'s. See docs/predict.md.
"""

from __future__ import annotations

import nir_colorize.utils.openmp  # noqa: F401  # isort: skip  (first: libgomp reads its wait policy when torch loads it)
import hydra
from omegaconf import DictConfig

from nir_colorize import CONFIG_DIR, pipeline


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    if pipeline.run(cfg).failed:
        raise SystemExit(1)


if __name__ == "__main__":
    from nir_colorize.utils.errors import run_main

    run_main(main)  # a user error: one line on stderr, exit status 2 (HYDRA_FULL_ERROR=1: the traceback)
