"""Data: image I/O, pair sources, datasets and the LightningDataModule."""

from nir_colorize.data.combined import CombinedPairs
from nir_colorize.data.datamodule import NIRDataModule
from nir_colorize.data.folder import FolderPairs
from nir_colorize.data.io import read_image, read_nir, read_rgb, write_png
from nir_colorize.data.nirscene1 import NIRScene1, prepare_nirscene1
from nir_colorize.data.pairs import Pair
from nir_colorize.data.vcip2020 import VCIP2020
from nir_colorize.errors import DatasetError, ImageReadError

__all__ = [
    "VCIP2020",
    "CombinedPairs",
    "DatasetError",
    "FolderPairs",
    "NIRScene1",
    "ImageReadError",
    "NIRDataModule",
    "Pair",
    "prepare_nirscene1",
    "read_image",
    "read_nir",
    "read_rgb",
    "write_png",
]
