"""Weighted-least-squares edge-preserving smoothing (Farbman et al. 2008), exact, on CPU and CUDA.

``u`` minimises ``sum (u - g)^2 + lam * sum(a_x (du/dx)^2 + a_y (du/dy)^2)`` with
``a = (|d log(L + log_offset)|^alpha + eps)^-1`` on the differences between 4-neighbours, ``L`` the
guide (default: the image itself, per channel). That is the sparse 5-point system
``(I + lam * L_a) u = g`` with free (Neumann) borders, solved by

- ``solver="pcg"`` (default): conjugate gradient preconditioned by an edge-adaptive multigrid
  V-cycle (``multigrid.py``), batched; on the CPU the V-cycle and the CG steps run in fused numba kernels
  (``fused.py``, ~2.5x faster), on CUDA (or with ``fused=False``) in torch alone. It stops when the
  residual ``r = g - A u`` has ``max |r| <= tol`` (default 0.99/510). ``A`` is an M-matrix whose rows sum
  to 1 (``A 1 = 1``), so ``A^-1 >= 0`` and ``A^-1 1 = 1``: ``max |u - u*| = max |A^-1 r| <= max |r|``.
  The stopping rule therefore *guarantees* ``max |u - u*| <= tol``: the design's "exact", within 1/510 (half
  an 8-bit level) of the direct solve, with 1 % left for rounding the result to float32. (The true error
  is typically ~50x below that bound, but no cheaper certificate of the max-norm error was found.)
  Iterations run in ``dtype`` (float32 by default, fast) with the solution accumulated in float64 and
  products in difference form (``Laplacian5.apply_accurate``), so the float32 residual stays true; the
  residual is then re-computed in float64 and, should it still be above ``tol``, a correction solve
  follows (iterative refinement).
- ``solver="direct"``: ``scipy.sparse.linalg.spsolve`` in float64 on the CPU, the reference.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nir_colorize.fusion import fused as _fused
from nir_colorize.fusion.multigrid import Laplacian5, Multigrid
from nir_colorize.utils.threads import load_adaptive_threads

SOLVERS = ("pcg", "direct")
DEFAULT_TOL = 0.99 / 510.0
# channels / images solved as one batch up to this many pixels: a batch runs ~6 % faster than one by one,
# but the solver holds ~240 bytes per pixel (two 16 Mpx channels of BFWLS: 8.9 GB batched)
BATCH_PIXELS = 1 << 22


class WLSConvergenceError(RuntimeError):
    """The iterative solver did not reach its tolerance within ``max_iter`` iterations."""


def wls_weights(guide: torch.Tensor, lam: float = 1.0, alpha: float = 1.2, eps: float = 1e-4,
                log_offset: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """Smoothness weights ``lam * (|d log(guide + log_offset)|^alpha + eps)^-1`` of (..., H, W) ``guide``.

    Returns ``ax`` (coupling of (i, j) and (i, j+1)) and ``ay`` (of (i, j) and (i+1, j)), both
    (..., H, W) with a zero last column / row, in float64.
    """
    log_l = torch.log(guide.double() + log_offset)
    ax = lam / ((log_l[..., :, 1:] - log_l[..., :, :-1]).abs().pow(alpha) + eps)
    ay = lam / ((log_l[..., 1:, :] - log_l[..., :-1, :]).abs().pow(alpha) + eps)
    return F.pad(ax, (0, 1)), F.pad(ay, (0, 0, 0, 1))


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image dot products of (N, H, W) arrays as (N, 1, 1), one fused pass each."""
    return torch.stack([torch.dot(x.flatten(), y.flatten()) for x, y in zip(a, b, strict=True)]).view(-1, 1, 1)


def _max_abs(r: torch.Tensor) -> float:
    lo, hi = torch.aminmax(r)  # one pass; abs().amax() takes two
    return max(hi.item(), -lo.item())


def _pcg(op: Laplacian5, b: torch.Tensor, precond: Multigrid, tol: float, max_iter: int) -> tuple[torch.Tensor, int]:
    """Batched preconditioned CG on (N, H, W) until ``max |r| <= tol`` per image; returns (x in float64, iterations).

    Vectors are in ``b``'s dtype except ``x``, accumulated in float64: rounding ``x`` to float32 alone
    would leave a residual of ~1e-2 where couplings are ~1e4. With ``op.apply_accurate`` the recursive
    residual ``r`` then stays within ~1e-7 of the true one.
    """
    if precond.cycle is not None:
        return _fused.pcg(op, b, precond, tol, max_iter)
    x = torch.zeros_like(b, dtype=torch.float64)
    r = b.clone()
    p, q, spare = torch.empty_like(b), torch.empty_like(b), torch.empty_like(b)  # reused: no allocation per step
    p64 = torch.empty_like(x)  # mixed-dtype in-place ops would allocate a float64 copy of p every step
    z = precond(r, out=p)
    rz = _dot(r, z)
    tiny = torch.finfo(b.dtype).tiny
    for it in range(max_iter + 1):
        if _max_abs(r) <= tol:
            return x, it
        if it == max_iter:
            break
        op.apply_accurate(p, out=q)
        step = rz / _dot(p, q).clamp_min(tiny)
        x = x.addcmul_(step.double(), p64.copy_(p))
        r = r.addcmul_(step, q, value=-1.0)
        z = precond(r, out=spare)
        rz_new = _dot(r, z)
        p, spare = z.addcmul_(rz_new / rz.clamp_min(tiny), p), p  # the old direction's array is free now
        rz = rz_new
    return x, max_iter


def solve_pcg(g: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor, tol: float = DEFAULT_TOL, max_iter: int = 500,
              dtype: torch.dtype = torch.float32, on_fail: str = "raise", info: dict | None = None,
              fused: bool | None = None) -> torch.Tensor:
    """Solve ``(I + L(ax, ay)) u = g`` for (N, H, W) ``g`` to ``max |g - A u| <= tol`` (certified in float64).

    ``fused``: the multigrid set-up, V-cycle and CG steps in fused numba kernels (``fused.py``; default: wherever
    they apply, i.e. float32 on the CPU); False: torch alone.

    ``info``, if given, gets ``iterations`` (CG iterations, all passes) and ``residual`` (the certified max |r|).
    """
    op64 = Laplacian5(None, ax, ay)
    op = op64.to(dtype)
    precond = Multigrid(op, fused=fused)
    g64 = g.double()
    u, r, used = torch.zeros_like(g64), g64, 0
    residual = _max_abs(r)
    # CG aims a little below tol (its residual is float32); the float64 residual certifies the result.
    # A correction pass (iterative refinement) is rarely needed.
    for _ in range(8):
        if residual <= tol or used >= max_iter:
            break
        d, its = _pcg(op, r.to(dtype), precond, 0.9 * tol, max_iter - used)
        used += max(its, 1)
        u += d
        r = g64 - op64.apply_accurate(u)
        residual = _max_abs(r)
    if info is not None:
        info.update(iterations=used, residual=residual)
    if residual > tol:
        msg = f"WLS solver 'pcg' did not converge: max |residual| {residual:.3g} > tol {tol:.3g} after {used} iterations"
        if on_fail == "raise":
            raise WLSConvergenceError(msg + " (raise max_iter, or use solver='direct')")
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return u


# SuperLU's column orderings worth timing here (with MMD_ATA and NATURAL the first 1024x680 image grew past 9 GB
# in 3 minutes and was stopped)
DIRECT_ORDERINGS = ("MMD_AT_PLUS_A", "COLAMD")


def solve_direct(g: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor, ordering: str = "MMD_AT_PLUS_A") -> torch.Tensor:
    """Reference: SciPy sparse direct solve (SuperLU, float64, CPU) of every (H, W) system of (N, H, W) ``g``.

    ``ordering``: SuperLU's fill-reducing column ordering (``permc_spec``); minimum degree on ``A + A^T`` is
    the fastest for these symmetric 5-point systems (``python -m nir_colorize.bench.fusion --orderings``).
    """
    if ordering not in DIRECT_ORDERINGS:
        raise ValueError(f"ordering must be one of {DIRECT_ORDERINGS}, got {ordering!r}")
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    N, H, W = g.shape
    idx = np.arange(H * W).reshape(H, W)
    out = np.empty((N, H * W))
    for n in range(N):
        wx = ax[n, :, :-1].double().cpu().numpy()
        wy = ay[n, :-1, :].double().cpu().numpy()
        rows = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
        cols = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
        w = np.concatenate([wx.ravel(), wy.ravel()])
        adj = sp.coo_matrix((w, (rows, cols)), shape=(H * W, H * W))
        adj = (adj + adj.T).tocsr()
        A = sp.diags(1.0 + np.asarray(adj.sum(1)).ravel()) - adj
        out[n] = spsolve(A.tocsc(), g[n].double().cpu().numpy().ravel(), permc_spec=ordering)
    return torch.from_numpy(out).reshape(N, H, W)


def _check(image: torch.Tensor, name: str) -> None:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if image.dim() not in (2, 4):
        raise ValueError(f"{name} must be (H, W) or (B, C, H, W), got shape {tuple(image.shape)}")
    if not torch.isfinite(image).all():
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")


def wls_smooth(image: torch.Tensor, guide: torch.Tensor | None = None, lam: float = 1.0, alpha: float = 1.2,
               eps: float = 1e-4, solver: str = "pcg", log_offset: float = 1e-4, tol: float = DEFAULT_TOL,
               max_iter: int = 500, dtype: torch.dtype = torch.float32, on_fail: str = "raise",
               info: dict | None = None, fused: bool | None = None) -> torch.Tensor:
    """WLS-smooth ``image`` (H, W) or (B, C, H, W), each channel on its own, guided by ``guide``.

    ``guide``: same shape as ``image`` or (B, 1, H, W) (shared by the channels); default ``image``.
    Guide values must be >= 0 (weights use ``log(guide + log_offset)``). ``solver``: ``pcg``
    (default, exact to ``tol``, CPU or CUDA) or ``direct`` (SciPy reference). ``on_fail``: ``raise``
    or ``warn`` when ``pcg`` has not converged after ``max_iter`` iterations. ``info`` (``pcg``), if given, gets
    ``iterations`` (per solved batch of channels, a list) and ``residual`` (the largest certified max |r|).
    On the CPU the solve runs on no more torch threads than other processes leave cores free
    (``nir_colorize.utils.threads``: two spinning OpenMP threads ran 5-20x slower there).
    Returns a tensor of the shape, dtype and device of ``image``.
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if on_fail not in ("raise", "warn"):
        raise ValueError(f"on_fail must be 'raise' or 'warn', got {on_fail!r}")
    if lam < 0 or eps <= 0 or alpha < 0 or log_offset <= 0:
        raise ValueError(f"need lam >= 0, alpha >= 0, eps > 0, log_offset > 0 (got {lam}, {alpha}, {eps}, {log_offset})")
    _check(image, "image")
    if guide is None:
        guide = image
    else:
        _check(guide, "guide")
    if guide.dim() != image.dim() or guide.shape[-2:] != image.shape[-2:] or (
            image.dim() == 4 and (guide.shape[0] != image.shape[0] or guide.shape[1] not in (1, image.shape[1]))):
        raise ValueError(f"guide shape {tuple(guide.shape)} does not fit image shape {tuple(image.shape)}")
    if guide.min() < 0:
        raise ValueError(f"guide must be >= 0 (its log is taken), minimum is {guide.min().item():.3g}")
    H, W = image.shape[-2:]
    images = image.reshape(-1, H, W)
    guides = guide.expand_as(image).reshape(-1, H, W)
    chunk = max(1, BATCH_PIXELS // (H * W))
    parts = []
    with load_adaptive_threads() if image.device.type == "cpu" else contextlib.nullcontext():
        for g, gd in zip(images.split(chunk), guides.split(chunk), strict=True):
            ax, ay = wls_weights(gd, lam, alpha, eps, log_offset)
            if solver == "direct":
                parts.append(solve_direct(g, ax, ay))
                continue
            part_info: dict = {}
            parts.append(solve_pcg(g, ax, ay, tol=tol, max_iter=max_iter, dtype=dtype, on_fail=on_fail, info=part_info,
                                   fused=fused))
            if info is not None:
                info.setdefault("iterations", []).append(part_info["iterations"])
                info["residual"] = max(info.get("residual", 0.0), part_info["residual"])
    u = parts[0] if len(parts) == 1 else torch.cat(parts)
    return u.to(device=image.device, dtype=image.dtype).reshape(image.shape)


class WLSSmooth(nn.Module):
    """Module form of :func:`wls_smooth`."""

    def __init__(self, lam: float = 1.0, alpha: float = 1.2, eps: float = 1e-4, solver: str = "pcg",
                 log_offset: float = 1e-4, tol: float = DEFAULT_TOL, max_iter: int = 500) -> None:
        super().__init__()
        self.kwargs = dict(lam=lam, alpha=alpha, eps=eps, solver=solver, log_offset=log_offset, tol=tol,
                           max_iter=max_iter)

    def forward(self, image: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        return wls_smooth(image, guide, **self.kwargs)
