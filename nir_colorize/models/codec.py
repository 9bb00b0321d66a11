"""Encoder -> (neck) -> UNet decoder -> head: the layout shared by SCD, ACD and ColorNet."""

from __future__ import annotations

import torch
from segmentation_models_pytorch.base.heads import SegmentationHead
from segmentation_models_pytorch.base.initialization import initialize_decoder, initialize_head
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from torch import nn


def unet_decoder(encoder_channels: list[int], widths: tuple[int, ...]) -> UnetDecoder:
    """smp's UNet decoder with a centre block (two 3x3 conv-BN-ReLU on the deepest map) and one
    block per width: bilinear x2 upsampling, concatenation with the skip of that scale, two 3x3
    conv-BN-ReLU. ``encoder_channels`` starts with the input's channels (smp's feature convention)."""
    return UnetDecoder(encoder_channels=encoder_channels, decoder_channels=widths, n_blocks=len(widths),
                       use_norm="batchnorm", add_center_block=True, interpolation_mode="bilinear")


def tanh_head(in_channels: int, out_channels: int = 3) -> SegmentationHead:
    """1x1 conv to RGB + ``tanh``."""
    return SegmentationHead(in_channels, out_channels, kernel_size=1, activation="tanh")


class Codec(nn.Module):
    """``head(decoder(encoder features, deepest one passed through neck)))``.

    The encoder returns smp's feature list ``[input, /s1, ..., deepest]``; the decoder and the neck
    are initialised as smp initialises its own decoders (the encoder keeps its weights).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, head: nn.Module, neck: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.neck = neck if neck is not None else nn.Identity()
        self.decoder = decoder
        self.head = head
        initialize_decoder(self.neck)
        initialize_decoder(self.decoder)
        initialize_head(self.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = list(self.encoder(x))
        features[-1] = self.neck(features[-1])
        return self.head(self.decoder(features))
