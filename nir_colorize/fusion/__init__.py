"""BFWLS pixel-level fusion (design section 2): exact WLS smoothing, the fusion, and its Lightning callback."""

from nir_colorize.fusion.bfwls import BFWLS, bfwls
from nir_colorize.fusion.callback import BFWLSCallback
from nir_colorize.fusion.wls import SOLVERS, WLSConvergenceError, WLSSmooth, wls_smooth

__all__ = ["BFWLS", "BFWLSCallback", "SOLVERS", "WLSConvergenceError", "WLSSmooth", "bfwls", "wls_smooth"]
