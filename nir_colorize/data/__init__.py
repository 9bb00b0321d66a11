"""Data: image I/O, pair sources, datasets and the LightningDataModule."""

from nir_colorize.data.datamodule import NIRDataModule
from nir_colorize.data.io import ImageReadError, read_image, read_nir, read_rgb, write_png
from nir_colorize.data.pairs import VCIP2020, DatasetError, Pair

__all__ = [
    "VCIP2020",
    "DatasetError",
    "ImageReadError",
    "NIRDataModule",
    "Pair",
    "read_image",
    "read_nir",
    "read_rgb",
    "write_png",
]
