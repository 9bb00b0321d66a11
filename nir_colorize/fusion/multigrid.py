"""Edge-adaptive multigrid preconditioner for 5-point weighted Laplacians ``diag(m) + L(ax, ay)``.

Hand-written because no maintained library offers a device-agnostic (CPU and CUDA, pure torch)
multigrid for image-sized weighted Laplacians. Coarsening is the red-black elimination of the
locally adapted hierarchical basis (Szeliski 2006): at each level the points with ``i + j`` odd,
then the odd-odd points, are eliminated exactly (so interpolation follows the weights and does not
cross image edges), the couplings that would make the next level denser are moved onto the stronger
of the two paths that join their ends (a spectral upper bound), and the even-even points form a
5-point grid half the size. Smoothing keeps the V-cycle symmetric positive definite, hence a valid CG
preconditioner: on the finest grid alternating line relaxation (tridiagonal solves along columns then
rows before the coarse correction, rows then columns after), one damped-Jacobi sweep before and
after on the coarser grids (Krishnan and Szeliski 2011; lines on more grids: ``line_depth``).

Why lines: the slow modes were thin plateaus, 1-pixel-wide runs of equal values (weights ~1e4 along
the run, ~1-200 across) on an odd row or column. Elimination moves their strong couplings onto weak
paths, so the coarse grids see them welded to their neighbours, and point smoothers barely move a
run relative to its neighbours; a line solve along the run does. Measured, float64 CG iterations to
max |r| <= 1/1020 on the sample images at 1024 x 680 (country NIR, Y; urban NIR, Y): 2 Jacobi sweeps
and proportional path sharing (before) 37, 30, 57, 41; lines 19, 18, 32, 20; lines and stronger-path
moves 15, 14, 20, 15, for a float32 V-cycle ~1.6x as long (12.4-13.8 vs 7.7-7.9 ms, 1 CPU thread).
The hardest real frames (``bench.fusion.BENCH_SET``: upscaled street/building frames whose columns are runs
of equal pixels) took up to 33; 5 cyclic-reduction steps per line solve instead of 3 take them to 21-25
(see ``Multigrid`` for lines on the coarser grids too).

On the CPU (float32, the WLS system) the V-cycle runs in fused numba kernels instead (``fused.py``, ``fused=``):
the same elimination hierarchy, built here, but exact (Thomas) line solves, and each smoothing or transfer
step one pass over the grid instead of ~10 torch ops: 2.5x faster on the benchmark set at 1024 x 680 (median).

Arrays are ``(..., H, W)``; ``ax[..., i, j]`` couples ``(i, j)`` and ``(i, j + 1)`` (last column 0),
``ay[..., i, j]`` couples ``(i, j)`` and ``(i + 1, j)`` (last row 0).
"""

from __future__ import annotations

import os
from functools import cached_property

import torch
import torch.nn.functional as F

from nir_colorize.fusion import fused as _fused

COARSE_SIZE = 256  # pixels of the coarsest grid, solved by a dense Cholesky factorisation


# Shifts by a flat offset of the contiguous (..., H, W) array: contiguous copies are several times
# faster than strided ones (F.pad or column slices) on CPU; the wrapped-around column/row is zeroed.
def _left(x: torch.Tensor) -> torch.Tensor:  # out[i, j] = x[i, j - 1], 0 at j = 0
    x = x.contiguous()
    out = torch.empty_like(x)
    out.flatten(-2)[..., 1:] = x.flatten(-2)[..., :-1]
    out[..., :, 0] = 0
    return out


def _right(x: torch.Tensor) -> torch.Tensor:  # out[i, j] = x[i, j + 1], 0 at the last column
    x = x.contiguous()
    out = torch.empty_like(x)
    out.flatten(-2)[..., :-1] = x.flatten(-2)[..., 1:]
    out[..., :, -1] = 0
    return out


def _up(x: torch.Tensor) -> torch.Tensor:  # out[i, j] = x[i - 1, j], 0 at i = 0
    out = torch.empty_like(x)
    out[..., 1:, :] = x[..., :-1, :]
    out[..., 0, :] = 0
    return out


def _down(x: torch.Tensor) -> torch.Tensor:  # out[i, j] = x[i + 1, j], 0 at the last row
    out = torch.empty_like(x)
    out[..., :-1, :] = x[..., 1:, :]
    out[..., -1, :] = 0
    return out


def _slice_coef(coef: torch.Tensor, shift: int) -> torch.Tensor:
    """The flat view of ``coef`` that :func:`_acc_src` / :func:`_acc_dst` pair with a flat ``shift`` (cut once, at setup)."""
    c = coef.flatten(-2)
    return c[..., :-shift] if shift > 0 else c[..., -shift:] if shift < 0 else c


def _acc_src(o: torch.Tensor, c: torch.Tensor, v: torch.Tensor, shift: int) -> None:
    """In place ``o[p] += coef[p - shift] * v[p - shift]`` on flat arrays; ``c = _slice_coef(coef, shift)``.

    Every caller's ``coef`` is zero on the column a horizontal flat shift wraps around, so flat
    offsets stand for 2-D neighbours.
    """
    if shift > 0:
        o[..., shift:].addcmul_(c, v[..., :-shift])
    elif shift < 0:
        o[..., :shift].addcmul_(c, v[..., -shift:])
    else:
        o.addcmul_(c, v)


def _acc_dst(o: torch.Tensor, c: torch.Tensor, v: torch.Tensor, shift: int) -> None:
    """In place ``o[p] += coef[p] * v[p + shift]`` on flat arrays; ``c = _slice_coef(coef, shift)``."""
    if shift > 0:
        o[..., :-shift].addcmul_(c, v[..., shift:])
    elif shift < 0:
        o[..., -shift:].addcmul_(c, v[..., :shift])
    else:
        o.addcmul_(c, v)


def _add_neighbours(out: torch.Tensor, x: torch.Tensor, coefs: tuple[torch.Tensor, ...], W: int,
                    value: float = 1.0) -> torch.Tensor:
    """In place ``out[p] += value * (e[p] x[p+1] + w[p] x[p-1] + s[p] x[p+W] + n[p] x[p-W])`` on flat arrays.

    ``coefs = (e, w, s, n)`` are pre-sliced to the overlapping ranges (lengths n-1, n-1, n-W, n-W).
    """
    e, w, s, n = coefs
    out[..., :-1].addcmul_(e, x[..., 1:], value=value)
    out[..., 1:].addcmul_(w, x[..., :-1], value=value)
    out[..., :-W].addcmul_(s, x[..., W:], value=value)
    out[..., W:].addcmul_(n, x[..., :-W], value=value)
    return out


def _split(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shares (1, 0) or (0, 1) of two paths a-b and c-d: all to the one of larger series conductance.

    Moving a coupling ``w`` onto the path with edges ``a``, ``b`` adds ``2 w`` to each (a spectral upper
    bound). Sharing it in proportion to the series conductances (Szeliski 2006) also loads the weaker
    path, which may join points the image separates. With line smoothing, all to the stronger path took
    the sample images (module docstring) from 19, 18, 32, 20 to 15, 14, 20, 15 iterations (from the
    odd-odd couplings mostly: 16, 14, 21, 16 with the stronger-path rule for those alone); with Jacobi
    smoothing only from 37, 30, 57, 41 to 34, 28, 57, 33. Shares by path conductance squared or to
    the fourth power, moving at most a multiple of the path conductance, or factor 1 instead of 2
    were worse."""
    p = a * b / (a + b).clamp_min(1e-300 if a.dtype == torch.float64 else 1e-30)
    q = c * d / (c + d).clamp_min(1e-300 if a.dtype == torch.float64 else 1e-30)
    first = (p >= q).to(a.dtype)
    return first, 1.0 - first


class _Scratch:
    """Named work arrays kept from one call to the next (each name: a temporary that is dead by then).

    Fresh multi-MB tensors cost page faults on every V-cycle (glibc maps blocks over 32 MB anew each
    time): reusing them took a 4096 x 4096 solve from 16.8 s to 9.6 s.
    """

    def __init__(self) -> None:
        self.arrays: dict[str, torch.Tensor] = {}

    def __call__(self, name: str, shape: torch.Size | tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        t = self.arrays.get(name)
        if t is None or t.shape != shape or t.dtype != like.dtype or t.device != like.device:
            t = self.arrays[name] = like.new_empty(shape)
        return t


def _phases(x: torch.Tensor, scratch: _Scratch | None = None) -> tuple[torch.Tensor, ...]:
    """The four (even/odd row, even/odd column) sub-grids of even-sized ``x``, copied (into ``scratch``)."""
    if scratch is None:
        return tuple(x[..., i::2, j::2].contiguous() for i in (0, 1) for j in (0, 1))
    shape = (*x.shape[:-2], x.shape[-2] // 2, x.shape[-1] // 2)
    return tuple(scratch(f"phase{i}{j}", shape, x).copy_(x[..., i::2, j::2]) for i in (0, 1) for j in (0, 1))


def _interleave(ee: torch.Tensor, eo: torch.Tensor, oe: torch.Tensor, oo: torch.Tensor,
                out: torch.Tensor) -> torch.Tensor:
    out[..., 0::2, 0::2], out[..., 0::2, 1::2], out[..., 1::2, 0::2], out[..., 1::2, 1::2] = ee, eo, oe, oo
    return out


class Laplacian5:
    """The operator ``A = diag(m) + L(ax, ay)``: products, residuals and its diagonal.

    ``m=None`` stands for ``m = 1`` (the WLS system): products then skip the multiply by ``m``.
    ``m``, ``diag`` and ``inv_diag`` are computed on first use (a float64 operator that only
    certifies residuals never needs them). Neighbours are addressed by flat offsets (1, W) of
    contiguous arrays (fast on CPU); the couplings are zero on the last column / row, so nothing
    wraps around.
    """

    def __init__(self, m: torch.Tensor | None, ax: torch.Tensor, ay: torch.Tensor) -> None:
        self.ax, self.ay = ax.contiguous(), ay.contiguous()
        self.unit_mass = m is None
        if m is not None:
            self.m = m.contiguous()
        self.scratch = _Scratch()
        self.W = W = ax.shape[-1]
        cx, cy = self.ax.flatten(-2)[..., :-1], self.ay.flatten(-2)[..., :-W]
        self.couplings = (cx, cx, cy, cy)  # (e, w, s, n) pre-sliced for _add_neighbours

    @cached_property
    def m(self) -> torch.Tensor:  # only reached when m is None (unit mass)
        return torch.ones_like(self.ax)

    @cached_property
    def diag(self) -> torch.Tensor:
        return self.m + self.ax + _left(self.ax) + self.ay + _up(self.ay)

    @cached_property
    def inv_diag(self) -> torch.Tensor:
        return 1.0 / self.diag

    def residual(self, b: torch.Tensor, u: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``b - A u`` (both contiguous (..., H, W)), fused into five passes; into ``out`` if given."""
        out = torch.addcmul(b, self.diag, u, value=-1.0, out=out)
        _add_neighbours(out.flatten(-2), u.flatten(-2), self.couplings, self.W)
        return out

    def apply_accurate(self, u: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``A u = m u + sum a (u_i - u_j)``: rounding relative to neighbour differences, not to ``diag * u``.

        Where couplings are ~1e4 and ``u`` is smooth, ``diag * u - sum a u_j`` loses ~4 digits to
        cancellation; this form keeps float32 CG residuals true to ~1e-7 (measured), so no float64 pass.
        """
        W, uf = self.W, u.contiguous().flatten(-2)
        cx, _, cy, _ = self.couplings
        dx = torch.sub(uf[..., :-1], uf[..., 1:], out=self.scratch("dx", cx.shape, uf)).mul_(cx)
        dy = torch.sub(uf[..., :-W], uf[..., W:], out=self.scratch("dy", cy.shape, uf)).mul_(cy)
        out = uf.new_empty(uf.shape) if out is None else out.view(uf.shape)
        if self.unit_mass:
            out.copy_(uf)
        else:
            torch.mul(self.m.flatten(-2), uf, out=out)
        out[..., :-1] += dx
        out[..., 1:] -= dx
        out[..., :-W] += dy
        out[..., W:] -= dy
        return out.view(u.shape)

    def to(self, dtype: torch.dtype) -> Laplacian5:
        return Laplacian5(None if self.unit_mass else self.m.to(dtype), self.ax.to(dtype), self.ay.to(dtype))

    def dense(self) -> torch.Tensor:
        """The (..., H*W, H*W) matrix (small grids only)."""
        H, W = self.m.shape[-2:]
        idx = torch.arange(H * W, device=self.m.device).reshape(H, W)
        M = torch.zeros(*self.m.shape[:-2], H * W, H * W, dtype=self.m.dtype, device=self.m.device)
        M[..., idx.flatten(), idx.flatten()] = self.diag.flatten(-2)
        for a, rows, cols in ((self.ax[..., :, :-1], idx[:, :-1], idx[:, 1:]),
                              (self.ay[..., :-1, :], idx[:-1, :], idx[1:, :])):
            M[..., rows.flatten(), cols.flatten()] = -a.flatten(-2)
            M[..., cols.flatten(), rows.flatten()] = -a.flatten(-2)
        return M


class _Elimination:
    """One level: eliminate the i+j odd points, then the odd-odd points; coarse = even-even grid."""

    def __init__(self, m: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor) -> None:
        H, W = m.shape[-2:]
        self.shape, self.pad = (H, W), (W % 2, H % 2)
        if H % 2 or W % 2:  # a decoupled dummy row/column (mass 1, no edges) makes both sides even
            m = F.pad(m, (0, W % 2, 0, H % 2), value=1.0)
            ax, ay = F.pad(ax, (0, W % 2, 0, H % 2)), F.pad(ay, (0, W % 2, 0, H % 2))
        m_ee, m_eo, m_oe, m_oo = _phases(m)
        ax_ee, ax_eo, ax_oe, ax_oo = _phases(ax)
        ay_ee, ay_eo, ay_oe, ay_oo = _phases(ay)
        # step 1: even-odd points (W, E, N, S neighbours) and odd-even points (N, S, W, E)
        aw, ae, an, as_ = ax_ee, ax_eo, _up(ay_oo), ay_eo
        bn, bs, bw, be = ay_ee, ay_oe, _left(ax_oo), ax_oe
        self.inv_eo = k1 = 1.0 / (m_eo + aw + ae + an + as_)
        self.inv_oe = k2 = 1.0 / (m_oe + bn + bs + bw + be)
        t1, t2 = m_eo * k1, m_oe * k2
        m_ee = m_ee + aw * t1 + _left(ae * t1) + bn * t2 + _up(bs * t2)
        m_oo = m_oo + as_ * t1 + _down(an * t1) + be * t2 + _right(bw * t2)
        nw = aw * as_ * k1 + bn * be * k2  # diagonal couplings of each odd-odd point to its 4 corners
        ne = ae * as_ * k1 + _right(bn * bw * k2)
        sw = _down(aw * an * k1) + bs * be * k2
        se = _down(ae * an * k1) + _right(bs * bw * k2)
        long_x, long_y = 2 * _right(bw * be * k2), 2 * _down(an * as_ * k1)  # odd-odd to odd-odd, doubled
        cx, cy = aw * ae * k1, bn * bs * k2  # even-even to even-even (the coarse grid's edges)
        up_, low = _split(ne, _right(nw), se, _right(sw))
        left, right = _split(sw, _down(nw), se, _down(ne))
        corners = (nw + _left(long_x * up_) + _up(long_y * left), ne + long_x * up_ + _up(long_y * right),
                        sw + _left(long_x * low) + long_y * left, se + long_x * low + long_y * right)
        nw, ne, sw, se = corners
        # step 2: odd-odd points
        self.inv_oo = k3 = 1.0 / (m_oo + nw + ne + sw + se)
        t3 = m_oo * k3
        m_ee = m_ee + nw * t3 + _left(ne * t3) + _up(sw * t3) + _up(_left(se * t3))
        cx = cx + nw * ne * k3 + _up(sw * se * k3)
        cy = cy + nw * sw * k3 + _left(ne * se * k3)
        d1, d2 = 2 * nw * se * k3, 2 * ne * sw * k3  # coarse diagonals, moved onto axis paths
        f1, g1 = _split(cx, _right(cy), cy, _down(cx))
        f2, g2 = _split(cx, cy, _right(cy), _down(cx))
        self.coarse = (m_ee, cx + d1 * f1 + _up(d1 * g1) + d2 * f2 + _up(d2 * g2),
                       cy + _left(d1 * f1) + d1 * g1 + d2 * f2 + _left(d2 * g2))

        # coefficients of restrict / interpolate (pre-divided by the eliminated points' diagonals), as
        # (flat coefficient cut for its shift, source or destination phase, flat shift)
        Wh = m_ee.shape[-1]
        self.scratch = _Scratch()
        self.inv_eo, self.inv_oe, self.inv_oo = k1.flatten(-2), k2.flatten(-2), k3.flatten(-2)
        self.to_ee = [(_slice_coef(c, sh), src, sh) for c, src, sh in
                      ((aw, 0, 0), (ae, 0, 1), (bn, 1, 0), (bs, 1, Wh))]  # src 0: y_eo, 1: y_oe
        self.to_oo = [(_slice_coef(c, sh), src, sh) for c, src, sh in
                      ((as_, 0, 0), (an, 0, -Wh), (be, 1, 0), (bw, 1, -1))]
        self.oo_to_ee = [(_slice_coef(c, sh), sh) for c, sh in ((nw, 0), (ne, 1), (sw, Wh), (se, Wh + 1))]
        self.ee_to_oo = [(_slice_coef(c * k3, sh), sh) for c, sh in ((nw, 0), (ne, 1), (sw, Wh), (se, Wh + 1))]
        self.to_eo = [(_slice_coef(c * k1, sh), src, sh) for c, src, sh in
                      ((aw, 0, 0), (ae, 0, 1), (an, 1, -Wh), (as_, 1, 0))]  # src 0: x_ee, 1: x_oo
        self.to_oe = [(_slice_coef(c * k2, sh), src, sh) for c, src, sh in
                      ((bn, 0, 0), (bs, 0, Wh), (bw, 1, -1), (be, 1, 0))]
        # the same couplings as whole (..., H/2, W/2) phase arrays (what fused.Elimination computes; its tests compare)
        self.phase_coefs = (aw, ae, an, as_, bn, bs, bw, be, nw, ne, sw, se, k1, k2, k3)

    def restrict(self, b: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Eliminate the fine points from right-hand side ``b``: the coarse right-hand side and partial solutions."""
        if self.pad != (0, 0):
            b = F.pad(b, (0, self.pad[0], 0, self.pad[1]))
        b_ee, b_eo, b_oe, b_oo = _phases(b, self.scratch)  # valid until the next restrict at this level
        coarse_shape = b_ee.shape
        b_ee, b_oo = b_ee.flatten(-2), b_oo.flatten(-2)
        ys = (b_eo.flatten(-2).mul_(self.inv_eo), b_oe.flatten(-2).mul_(self.inv_oe))
        for c, src, sh in self.to_ee:
            _acc_src(b_ee, c, ys[src], sh)
        for c, src, sh in self.to_oo:
            _acc_src(b_oo, c, ys[src], sh)
        y_oo = b_oo.mul_(self.inv_oo)
        for c, sh in self.oo_to_ee:
            _acc_src(b_ee, c, y_oo, sh)
        return b_ee.view(coarse_shape), (*ys, y_oo)

    def interpolate(self, x_ee: torch.Tensor, partial: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Back-substitute the eliminated points given the coarse solution ``x_ee``; (..., H, W)."""
        x_eo, x_oe, x_oo = partial  # flat, overwritten
        xe = x_ee.flatten(-2)
        for c, sh in self.ee_to_oo:
            _acc_dst(x_oo, c, xe, sh)
        srcs = (xe, x_oo)
        for c, src, sh in self.to_eo:
            _acc_dst(x_eo, c, srcs[src], sh)
        for c, src, sh in self.to_oe:
            _acc_dst(x_oe, c, srcs[src], sh)
        shape = (*x_ee.shape[:-2], 2 * x_ee.shape[-2], 2 * x_ee.shape[-1])
        out = _interleave(x_ee, *(x.view(x_ee.shape) for x in (x_eo, x_oe, x_oo)),
                          out=self.scratch("interleave", shape, x_ee))
        return out[..., : self.shape[0], : self.shape[1]]


class _Jacobi:
    """Damped Jacobi ``x <- x + omega D^-1 (b - A x)``, fused as ``(1 - omega) x + s b + sum (s a) x_neighbour``."""

    def __init__(self, op: Laplacian5, omega: float) -> None:
        self.W = W = op.W
        self.keep = 1.0 - omega
        self.s = s = (omega * op.inv_diag).flatten(-2)
        cx, _, cy, _ = op.couplings
        self.coefs = (s[..., :-1] * cx, s[..., 1:] * cx, s[..., :-W] * cy, s[..., W:] * cy)

    def sweep(self, x: torch.Tensor, sb: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """One sweep on flat ``x`` given ``sb = s * b``, written into flat ``out`` (not ``x``)."""
        return _add_neighbours(torch.add(sb, x, alpha=self.keep, out=out), x, self.coefs, self.W)


class _LineSolve:
    """Approximate inverse of the tridiagonal part ``T`` of ``A`` along one axis (dim -2: columns, -1: rows).

    ``T`` keeps ``A``'s diagonal and its couplings along the lines. ``levels`` steps of cyclic reduction
    (exact 1-D red-black elimination) are followed by a diagonal solve of the remaining Schur complement
    with its off-diagonal magnitudes lumped onto the diagonal (l1-Jacobi), so the approximation ``B``
    has ``B^-1 >= T`` and ``2 B^-1 - A >= 2 T - A``, which is positive definite (strictly diagonally
    dominant, as ``m > 0``): every line step is an A-norm contraction.
    """

    def __init__(self, d: torch.Tensor, a: torch.Tensor, dim: int, levels: int = 3) -> None:
        self.dim, self.scratch = dim, _Scratch()
        self.steps: list[tuple[int, ...]] = []
        while d.shape[dim] > 1 and len(self.steps) < levels:
            n = d.shape[dim]
            if n % 2:  # a decoupled dummy point (diagonal 1) makes the length even
                pad = (0, 1) if dim == -1 else (0, 0, 0, 1)
                d, a = F.pad(d, pad, value=1.0), F.pad(a, pad)
            de, do, ae, ao = self._sl(d, 0), self._sl(d, 1), self._sl(a, 0), self._sl(a, 1)
            ido = 1.0 / do  # odd point 2j+1 couples to 2j by ae[j], to 2j+2 by ao[j]
            ao_prev, ido_prev = self._shift(ao), self._shift(ido)  # ao[j-1], 1/do[j-1]
            d_next = de - ae * ae * ido - ao_prev * ao_prev * ido_prev
            a_next = ae * ao * ido
            self.steps.append((n, ido.contiguous(), ae.contiguous(), self._head(ao).contiguous(),
                               (ae * ido).contiguous(), self._head(ao * ido).contiguous()))
            d, a = d_next.contiguous(), a_next.contiguous()
        self.inv_last = 1.0 / (d + a + self._shift(a))

    def _sl(self, x: torch.Tensor, start: int) -> torch.Tensor:
        return x[..., start::2, :] if self.dim == -2 else x[..., start::2]

    def _head(self, x: torch.Tensor) -> torch.Tensor:  # all but the last along dim
        return x[..., :-1, :] if self.dim == -2 else x[..., :-1]

    def _tail(self, x: torch.Tensor) -> torch.Tensor:  # all but the first along dim
        return x[..., 1:, :] if self.dim == -2 else x[..., 1:]

    def _shift(self, x: torch.Tensor) -> torch.Tensor:  # out[j] = x[j - 1], 0 at j = 0
        return F.pad(self._head(x), (1, 0) if self.dim == -1 else (0, 0, 1, 0))

    def __call__(self, r: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """``B^-1 r`` for (..., H, W) ``r``; into contiguous ``out`` if given (its temporaries are kept for reuse)."""
        stack, shape = [], r.shape
        for i, (n, ido, ae, ao, _, _) in enumerate(self.steps):
            if n % 2:
                r = F.pad(r, (0, 1) if self.dim == -1 else (0, 0, 0, 1))
            odd, even = self._sl(r, 1), self._sl(r, 0)
            y = torch.mul(odd, ido, out=self.scratch(f"y{i}", odd.shape, r))
            r = torch.addcmul(even, ae, y, out=self.scratch(f"r{i}", even.shape, r))
            self._tail(r).addcmul_(ao, self._head(y))
            stack.append(y)
        x = torch.mul(r, self.inv_last, out=self.scratch("last", r.shape, r))
        for i in reversed(range(len(self.steps))):
            n, _, _, _, to_left, to_right = self.steps[i]
            y = stack[i]
            y.addcmul_(to_left, x)
            self._head(y).addcmul_(to_right, self._tail(x))
            full = list(x.shape)
            full[self.dim] *= 2
            if i == 0 and out is not None and full[self.dim] == n:
                buf = out.view(full)
            else:
                buf = self.scratch(f"x{i}", torch.Size(full), x)
            if self.dim == -2:
                buf[..., 0::2, :], buf[..., 1::2, :] = x, y
                x = buf[..., :n, :]
            else:
                buf[..., 0::2], buf[..., 1::2] = x, y
                x = buf[..., :n]
        if out is None:
            return x.clone(memory_format=torch.contiguous_format)
        if x.data_ptr() != out.data_ptr() or x.shape != shape:
            out.copy_(x.reshape(shape))
        return out


class Multigrid:
    """Symmetric V-cycle ``M^-1 b`` approximating ``A^-1 b`` for ``A = diag(m) + L(ax, ay)``.

    ``smoother="lines"`` (default): on the first ``line_depth`` grids (default 1, the finest; None: all)
    alternating line relaxation, along columns then rows before the coarse correction and rows then columns
    after it (lines solved by ``_LineSolve`` with ``line_levels`` steps of cyclic reduction); one damped-Jacobi
    sweep before and after on the grids below. ``"jacobi"``: ``fine_sweeps`` damped-Jacobi sweeps on the finest
    grid, one on the coarser ones. Measured on the 10 frames of ``bench.fusion.BENCH_SET`` at 1024 x 680 (2-core
    CPU, tol 0.99/510): lines on every grid cut CG iterations (450: 25 -> 17, 230: 21 -> 15) but each V-cycle
    costs more than they save (median 0.48 s vs 0.42 s, worst 0.59 vs 0.51 s); two grids: median 0.43-0.46 s,
    worst 0.50 s. 5 reduction steps rather than 3: worst frame 31 -> 25 iterations, 0.56 -> 0.51 s.

    ``fused`` (default None: wherever ``fused_kernels_apply``, i.e. a float32 CPU operator of unit mass): the
    V-cycle in ``fused.Cycle`` (exact line solves; ``line_levels`` unused). With it, lines on more grids also cut
    iterations but not time: median / worst over the set 0.198 / 0.234 s (``line_depth=1``), 0.215 / 0.241 (2),
    0.217 / 0.251 (all). False: torch alone (CUDA, float64, or for comparison).
    """

    def __init__(self, op: Laplacian5, omega: float = 0.8, fine_sweeps: int = 2, coarse_size: int = COARSE_SIZE,
                 smoother: str = "lines", line_levels: int = 5, line_depth: int | None = 1,
                 fused: bool | None = None) -> None:
        if smoother not in ("lines", "jacobi"):
            raise ValueError(f"smoother must be 'lines' or 'jacobi', got {smoother!r}")
        can_fuse = fused_kernels_apply(op, smoother, coarse_size)
        if fused and not can_fuse:
            raise ValueError("fused=True needs numba, a float32 CPU operator of unit mass, at least 2 x 2 pixels "
                             "and line smoothing")
        fused = can_fuse if fused is None else fused
        self.fine_sweeps = fine_sweeps
        self.ops: list[Laplacian5] = []
        self.levels: list[_Elimination] = []
        m, ax, ay = op.m, op.ax, op.ay
        if fused:
            _fused.use_torch_threads()
        while m.shape[-2] * m.shape[-1] > coarse_size:
            self.ops.append(op if not self.ops else Laplacian5(m, ax, ay))
            self.levels.append(_fused.Elimination(m, ax, ay) if fused else _Elimination(m, ax, ay))
            m, ax, ay = self.levels[-1].coarse
        depth = 0 if smoother == "jacobi" else len(self.ops) if line_depth is None else line_depth
        self.lines = [(_LineSolve(o.diag, o.ay, -2, line_levels), _LineSolve(o.diag, o.ax, -1, line_levels))
                      if k < depth and not fused else None for k, o in enumerate(self.ops)]
        # fused: the whole V-cycle in numba kernels, exact line solves on the finest grid (fused.py)
        self.smoothers = [None if k < depth or fused else _Jacobi(o, omega) for k, o in enumerate(self.ops)]
        self.scratch = [_Scratch() for _ in self.ops]
        self.coarsest = Laplacian5(m, ax, ay)
        self.chol = torch.linalg.cholesky(self.coarsest.dense())
        self.cycle = _fused.Cycle(self, line_depth, omega) if fused else None

    def __call__(self, b: torch.Tensor, k: int = 0, out: torch.Tensor | None = None) -> torch.Tensor:
        """``M^-1 b`` for (..., H, W) ``b`` at level ``k``, into ``out`` if given (not aliasing ``b``).

        Without ``out`` the result may live in this level's work arrays: use it before the next call.
        """
        if k == 0 and self.cycle is not None:
            x = out if out is not None else torch.empty(b.shape, dtype=b.dtype)
            self.cycle(b.contiguous().numpy(), x.numpy())
            return x
        if k == len(self.levels):
            x = torch.cholesky_solve(b.flatten(-2).unsqueeze(-1), self.chol).squeeze(-1).reshape(b.shape)
            return x if out is None else out.copy_(x)
        op, jacobi, scratch = self.ops[k], self.smoothers[k], self.scratch[k]
        b = b.contiguous()
        if jacobi is None:  # line smoothing
            cols, rows = self.lines[k]
            x = cols(b, out=scratch("x", b.shape, b) if out is None else out)
            res, tmp = scratch("res", b.shape, b), scratch("tmp", b.shape, b)
            x.add_(rows(op.residual(b, x, out=res), out=tmp))
            b_c, partial = self.levels[k].restrict(op.residual(b, x, out=res))
            x.add_(self.levels[k].interpolate(self(b_c, k + 1), partial))
            x.add_(rows(op.residual(b, x, out=res), out=tmp))
            return x.add_(cols(op.residual(b, x, out=res), out=tmp))
        sweeps = self.fine_sweeps if k == 0 else 1
        bf = b.flatten(-2)
        sb = torch.mul(jacobi.s, bf, out=scratch("sb", bf.shape, bf))
        bufs = (scratch("x0", bf.shape, bf), scratch("x1", bf.shape, bf))  # a sweep reads x, writes the other one

        def other(x: torch.Tensor) -> torch.Tensor:
            return bufs[1] if x is bufs[0] else bufs[0]

        x = sb  # first sweep from x = 0
        for _ in range(sweeps - 1):
            x = jacobi.sweep(x, sb, out=other(x))
        b_c, partial = self.levels[k].restrict(op.residual(b, x.view(b.shape), out=scratch("res", b.shape, b)))
        correction = self.levels[k].interpolate(self(b_c, k + 1), partial).reshape(bf.shape)
        x = torch.add(x, correction, out=other(x) if x is sb else x)  # sb is still needed by the sweeps
        for i in range(sweeps):
            x = jacobi.sweep(x, sb, out=out.view(bf.shape) if out is not None and i == sweeps - 1 else other(x))
        return x.view(b.shape)


def fused_kernels_apply(op: Laplacian5, smoother: str = "lines", coarse_size: int = COARSE_SIZE) -> bool:
    """Whether the fused CPU kernels (``fused.py``) can run the V-cycle of ``Multigrid(op, ...)``."""
    H, W = op.ax.shape[-2:]
    return (_fused.AVAILABLE and op.unit_mass and op.ax.device.type == "cpu" and op.ax.dtype == torch.float32
            and smoother == "lines" and H >= 2 and W >= 2
            and coarse_size < H * W and os.environ.get("NIR_COLORIZE_FUSED", "1") != "0")
