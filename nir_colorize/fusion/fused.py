"""Fused CPU kernels (numba) of the WLS solver: its multigrid V-cycle and CG steps, one or two passes a step.

Hand-written because torch runs each stencil term as its own pass over the image (~40 passes per CG iteration
at 1024 x 680, memory-bound, plus op overhead on the small grids); here a whole smoothing, residual or transfer
step is one loop: 1.9-2.2x faster on ``bench.fusion.BENCH_SET`` (2 threads) and 2x on one thread. The
elimination hierarchy is torch's (``multigrid.Multigrid`` builds it; ``Cycle`` shares its arrays). Line
steps are exact tridiagonal (Thomas) solves along every column or row of the residual (line Jacobi: ``2 T - A``
is similar to ``A`` by a +-1 sign pattern, hence positive definite, so every step contracts in the A-norm and
the symmetric V-cycle stays a valid CG preconditioner). Each kernel is compiled serial and parallel (prange
over rows or column strips); results are the same bits either way and on any thread count. Arrays are numpy
views (N, H, W) of torch tensors; ``ax[n, i, j]`` couples (i, j) and (i, j + 1) (last column 0), ``ay[n, i, j]``
couples (i, j) and (i + 1, j).
"""

from __future__ import annotations

import os

import numpy as np

try:
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - numba is a dependency; without it the solver runs in torch alone
    numba = None

AVAILABLE = numba is not None
if AVAILABLE and "NUMBA_THREADING_LAYER" not in os.environ:
    # OpenMP first: it shares torch's libgomp threads; the workqueue layer ran these kernels 1.5x slower (2 cores)
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]
ROWS = 8  # rows whose line solves interleave (row_step): one row alone is a chain of dependent multiply-adds
PARALLEL_PIXELS = 1 << 16  # grids at least this large run the multi-threaded kernels, smaller ones the serial


# The kernels, written once and compiled twice (serial, and parallel over rows or column strips with prange).
# Sums go by rows in a fixed order, so both give the same bits whatever the thread count.

def _residual_row(b, x, d, ax, ay, n, i, j0, j1, out):
    """``out[j] = (b - A x)[n, i, j]`` for ``j0 <= j < j1`` (W >= 2). Loops run over views from index 0: numba
    then knows no index is negative and vectorizes (explicit ``j - 1`` indices made it 2x slower)."""
    H, W = x.shape[1], x.shape[2]
    xr = x[n, i]
    lo, hi = max(j0, 1), min(j1, W - 1)
    if j0 == 0:
        out[0] = b[n, i, 0] - d[n, i, 0] * xr[0] + ax[n, i, 0] * xr[1]
    o, bb, dd, xc, xn, xp = out[lo:hi], b[n, i, lo:hi], d[n, i, lo:hi], xr[lo:hi], xr[lo + 1:hi + 1], xr[lo - 1:hi - 1]
    an, ap = ax[n, i, lo:hi], ax[n, i, lo - 1:hi - 1]
    for k in range(hi - lo):
        o[k] = bb[k] - dd[k] * xc[k] + an[k] * xn[k] + ap[k] * xp[k]
    if j1 == W:
        out[W - 1] = b[n, i, W - 1] - d[n, i, W - 1] * xr[W - 1] + ax[n, i, W - 2] * xr[W - 2]
    o = out[j0:j1]
    if i > 0:
        u, au = x[n, i - 1, j0:j1], ay[n, i - 1, j0:j1]
        for k in range(j1 - j0):
            o[k] += au[k] * u[k]
    if i < H - 1:
        u, au = x[n, i + 1, j0:j1], ay[n, i, j0:j1]
        for k in range(j1 - j0):
            o[k] += au[k] * u[k]


def _factor_lines(d, a, c, invp, e, along_rows, strips):
    """Thomas factors of every line's tridiagonal ``T = tridiag(-a, d, -a)`` (pivots in float64).

    Forward ``y_k = r_k + c_k y_(k-1)``, backward ``x_k = invp_k y_k + e_k x_(k+1)``. Columns go in ``strips``
    (one per thread) of whole columns.
    """
    N, H, W = d.shape
    for n in range(N):
        if along_rows:
            for i in prange(H):
                p = np.float64(d[n, i, 0])
                c[n, i, 0] = 0.0
                invp[n, i, 0] = 1.0 / p
                e[n, i, 0] = a[n, i, 0] / p
                for j in range(1, W):
                    prev = np.float64(a[n, i, j - 1])
                    cj = prev / p
                    p = d[n, i, j] - prev * cj
                    c[n, i, j] = cj
                    invp[n, i, j] = 1.0 / p
                    e[n, i, j] = a[n, i, j] / p
        else:
            for t in prange(strips):
                j0, j1 = t * W // strips, (t + 1) * W // strips
                m = j1 - j0
                p = np.empty(m)
                d0, a0, c0, v0, e0 = d[n, 0, j0:j1], a[n, 0, j0:j1], c[n, 0, j0:j1], invp[n, 0, j0:j1], e[n, 0, j0:j1]
                for k in range(m):
                    p[k] = d0[k]
                    c0[k] = 0.0
                    v0[k] = 1.0 / p[k]
                    e0[k] = a0[k] / p[k]
                for i in range(1, H):
                    ap, di, ai = a[n, i - 1, j0:j1], d[n, i, j0:j1], a[n, i, j0:j1]
                    ci, vi, ei = c[n, i, j0:j1], invp[n, i, j0:j1], e[n, i, j0:j1]
                    for k in range(m):
                        prev = np.float64(ap[k])
                        ck = prev / p[k]
                        p[k] = di[k] - prev * ck
                        ci[k] = ck
                        vi[k] = 1.0 / p[k]
                        ei[k] = ai[k] / p[k]


def _column_step(b, x, d, ax, ay, c, invp, e, y, zero, strips):
    """``x <- x + T_col^-1 (b - A x)`` (``zero``: ``x <- T_col^-1 b``); ``y``: (H, W) work array; columns go in
    ``strips`` (one per thread), whose updates wait until every strip has read its neighbours' old columns."""
    N, H, W = b.shape
    for n in range(N):
        for t in prange(strips):
            j0, j1 = t * W // strips, (t + 1) * W // strips
            m = j1 - j0
            for i in range(H):
                row = y[i, j0:j1]
                if zero:
                    row[:] = b[n, i, j0:j1]
                else:
                    _residual_row(b, x, d, ax, ay, n, i, j0, j1, y[i])
                if i > 0:
                    prev, cr = y[i - 1, j0:j1], c[n, i, j0:j1]
                    for k in range(m):
                        row[k] += cr[k] * prev[k]
            last, vl = y[H - 1, j0:j1], invp[n, H - 1, j0:j1]
            for k in range(m):
                last[k] *= vl[k]
            if strips == 1:  # no other strip reads x: update it in the backward pass
                xr = x[n, H - 1]
                for k in range(m):
                    xr[k] = last[k] if zero else xr[k] + last[k]
            for i in range(H - 2, -1, -1):
                row, below, vi, ei = y[i, j0:j1], y[i + 1, j0:j1], invp[n, i, j0:j1], e[n, i, j0:j1]
                for k in range(m):
                    row[k] = vi[k] * row[k] + ei[k] * below[k]
                if strips == 1:
                    xr = x[n, i]
                    for k in range(m):
                        xr[k] = row[k] if zero else xr[k] + row[k]
        if strips > 1:
            for i in prange(H):
                xr, yr = x[n, i], y[i]
                if zero:
                    xr[:] = yr
                else:
                    for j in range(W):
                        xr[j] += yr[j]


def _solve_row_block(b, x, d, ax, ay, c, invp, e, n, i0, cnt, rows):
    """The residual of rows ``i0 .. i0 + cnt`` into ``rows`` and their line solves there (interleaved)."""
    W = b.shape[2]
    for k in range(cnt):
        _residual_row(b, x, d, ax, ay, n, i0 + k, 0, W, rows[k])
    cb, pb, eb = c[n, i0:i0 + cnt], invp[n, i0:i0 + cnt], e[n, i0:i0 + cnt]
    for j in range(1, W):
        for k in range(cnt):
            rows[k, j] += cb[k, j] * rows[k, j - 1]
    for k in range(cnt):
        rows[k, W - 1] *= pb[k, W - 1]
    for j in range(W - 2, -1, -1):
        for k in range(cnt):
            rows[k, j] = pb[k, j] * rows[k, j] + eb[k, j] * rows[k, j + 1]


def _ordered_sum(values):
    """Sum in index order (``values.sum()`` would become a parallel reduction under ``parallel=True``)."""
    acc = 0.0
    for v in values:
        acc += v
    return acc


def _add_rows(x, n, i0, cnt, rows):
    W = x.shape[2]
    for k in range(cnt):
        xr, dr = x[n, i0 + k], rows[k]
        for j in range(W):
            xr[j] += dr[j]


def _row_step(b, x, d, ax, ay, c, invp, e, y, strips):
    """``x <- x + T_row^-1 (b - A x)``; ``y``: (>= strips, 3, ROWS, W) work array. Rows go in blocks of ``ROWS``
    whose recurrences interleave, the blocks in ``strips`` (one per thread). A block's update waits until the
    next block's residual has read its old rows; the first and last block of each strip wait for all strips."""
    N, H, W = b.shape
    blocks = (H + ROWS - 1) // ROWS
    for n in range(N):
        for t in prange(strips):
            b0, b1 = t * blocks // strips, (t + 1) * blocks // strips
            for blk in range(b0, b1):
                slot = 2 if blk == b0 else blk % 2
                i0 = blk * ROWS
                _solve_row_block(b, x, d, ax, ay, c, invp, e, n, i0, min(ROWS, H - i0), y[t, slot])
                if blk - 1 > b0:
                    i0 = (blk - 1) * ROWS
                    _add_rows(x, n, i0, ROWS, y[t, (blk - 1) % 2])
        for t in prange(strips):
            b0, b1 = t * blocks // strips, (t + 1) * blocks // strips
            if b1 > b0:
                _add_rows(x, n, b0 * ROWS, min(ROWS, H - b0 * ROWS), y[t, 2])
            if b1 - 1 > b0:
                i0 = (b1 - 1) * ROWS
                _add_rows(x, n, i0, min(ROWS, H - i0), y[t, (b1 - 1) % 2])


def _residual(b, x, d, ax, ay, out):
    """``out = b - A x``."""
    N, H, W = b.shape
    for n in range(N):
        for i in prange(H):
            _residual_row(b, x, d, ax, ay, n, i, 0, W, out[n, i])


def _jacobi_from_zero(b, s, x):
    """``x = s b`` (a damped-Jacobi sweep from zero; ``s = omega / diag``)."""
    N, H, W = b.shape
    for n in range(N):
        for i in prange(H):
            for j in range(W):
                x[n, i, j] = s[n, i, j] * b[n, i, j]


def _jacobi_step(b, x, d, ax, ay, s, y):
    """``x += s (b - A x)`` (damped Jacobi); ``y``: (H, W) work array."""
    N, H, W = b.shape
    for n in range(N):
        for i in prange(H):
            _residual_row(b, x, d, ax, ay, n, i, 0, W, y[i])
        for i in prange(H):
            for j in range(W):
                x[n, i, j] += s[n, i, j] * y[i, j]


def _restrict(r, cf, y_eo, y_oe, y_oo, b_ee):
    """Eliminate the fine points (``multigrid._Elimination.restrict``) from (N, H, W) ``r`` (zero beyond H, W):
    the coarse right-hand side ``b_ee`` and the partial solutions ``y_*``, all (N, H/2, W/2) (sizes rounded up)."""
    aw, ae, an, as_, bn, bs, bw, be, nw, ne, sw, se, k1, k2, k3 = cf
    N, H, W = r.shape
    Hh, Wh = b_ee.shape[1], b_ee.shape[2]
    for n in range(N):
        for i in prange(Hh):
            i1 = 2 * i + 1
            odd_row = i1 < H
            for j in range(Wh):
                j1 = 2 * j + 1
                b_ee[n, i, j] = r[n, 2 * i, 2 * j]
                y_eo[n, i, j] = r[n, 2 * i, j1] * k1[n, i, j] if j1 < W else 0.0
                y_oe[n, i, j] = r[n, i1, 2 * j] * k2[n, i, j] if odd_row else 0.0
                y_oo[n, i, j] = r[n, i1, j1] if odd_row and j1 < W else 0.0
        for i in prange(Hh):
            for j in range(Wh):
                v = b_ee[n, i, j] + aw[n, i, j] * y_eo[n, i, j] + bn[n, i, j] * y_oe[n, i, j]
                if j > 0:
                    v += ae[n, i, j - 1] * y_eo[n, i, j - 1]
                if i > 0:
                    v += bs[n, i - 1, j] * y_oe[n, i - 1, j]
                b_ee[n, i, j] = v
                w = y_oo[n, i, j] + as_[n, i, j] * y_eo[n, i, j] + be[n, i, j] * y_oe[n, i, j]
                if i < Hh - 1:
                    w += an[n, i + 1, j] * y_eo[n, i + 1, j]
                if j < Wh - 1:
                    w += bw[n, i, j + 1] * y_oe[n, i, j + 1]
                y_oo[n, i, j] = w * k3[n, i, j]
        for i in prange(Hh):
            for j in range(Wh):
                v = b_ee[n, i, j] + nw[n, i, j] * y_oo[n, i, j]
                if j > 0:
                    v += ne[n, i, j - 1] * y_oo[n, i, j - 1]
                if i > 0:
                    v += sw[n, i - 1, j] * y_oo[n, i - 1, j]
                    if j > 0:
                        v += se[n, i - 1, j - 1] * y_oo[n, i - 1, j - 1]
                b_ee[n, i, j] = v


def _interpolate_add(x_ee, cf, y_eo, y_oe, y_oo, x):
    """``x += `` the back-substituted fine solution (``_Elimination.interpolate``) of coarse ``x_ee`` and the
    partials of ``restrict`` (overwritten); ``x`` (N, H, W)."""
    aw, ae, an, as_, bn, bs, bw, be, nw, ne, sw, se, k1, k2, k3 = cf
    N, H, W = x.shape
    Hh, Wh = x_ee.shape[1], x_ee.shape[2]
    for n in range(N):
        for i in prange(Hh):
            for j in range(Wh):
                v = nw[n, i, j] * x_ee[n, i, j]
                if j < Wh - 1:
                    v += ne[n, i, j] * x_ee[n, i, j + 1]
                if i < Hh - 1:
                    v += sw[n, i, j] * x_ee[n, i + 1, j]
                    if j < Wh - 1:
                        v += se[n, i, j] * x_ee[n, i + 1, j + 1]
                y_oo[n, i, j] += k3[n, i, j] * v
        for i in prange(Hh):
            i1 = 2 * i + 1
            for j in range(Wh):
                j1 = 2 * j + 1
                xe, xo = x_ee[n, i, j], y_oo[n, i, j]
                v = aw[n, i, j] * xe + as_[n, i, j] * xo
                if j < Wh - 1:
                    v += ae[n, i, j] * x_ee[n, i, j + 1]
                if i > 0:
                    v += an[n, i, j] * y_oo[n, i - 1, j]
                u = bn[n, i, j] * xe + be[n, i, j] * xo
                if i < Hh - 1:
                    u += bs[n, i, j] * x_ee[n, i + 1, j]
                if j > 0:
                    u += bw[n, i, j] * y_oo[n, i, j - 1]
                x[n, 2 * i, 2 * j] += xe
                if j1 < W:
                    x[n, 2 * i, j1] += y_eo[n, i, j] + k1[n, i, j] * v
                if i1 < H:
                    x[n, i1, 2 * j] += y_oe[n, i, j] + k2[n, i, j] * u
                    if j1 < W:
                        x[n, i1, j1] += xo


def _apply_dot(p, ax, ay, q, dots, part):
    """``q = A p`` for unit mass in difference form (``p + sum a (p - p_neighbour)``), ``dots[n] = p . q``;
    ``part``: (H,) float64 work array."""
    N, H, W = p.shape
    for n in range(N):
        for i in prange(H):
            pr, qr, a = p[n, i], q[n, i], ax[n, i]
            qr[0] = pr[0] + a[0] * (pr[0] - pr[1])
            for j in range(1, W - 1):
                qr[j] = pr[j] + a[j] * (pr[j] - pr[j + 1]) + a[j - 1] * (pr[j] - pr[j - 1])
            qr[W - 1] = pr[W - 1] + a[W - 2] * (pr[W - 1] - pr[W - 2])
            if i > 0:
                up, au = p[n, i - 1], ay[n, i - 1]
                for j in range(W):
                    qr[j] += au[j] * (pr[j] - up[j])
            if i < H - 1:
                down, ad = p[n, i + 1], ay[n, i]
                for j in range(W):
                    qr[j] += ad[j] * (pr[j] - down[j])
            acc = 0.0
            for j in range(W):
                acc += np.float64(pr[j]) * qr[j]
            part[i] = acc
        dots[n] = _ordered_sum(part)


def _cg_update(x, p, r, q, step, part):
    """``x += step p`` (x float64), ``r -= step q`` (float32); returns max |r| over all images."""
    N, H, W = r.shape
    worst = 0.0
    for n in range(N):
        s, s32 = step[n], np.float32(step[n])
        for i in prange(H):
            xr, pr, rr, qr = x[n, i], p[n, i], r[n, i], q[n, i]
            m = np.float32(0.0)
            for j in range(W):
                xr[j] += s * pr[j]
                v = rr[j] - s32 * qr[j]
                rr[j] = v
                m = max(m, abs(v))
            part[i] = m
        for i in range(H):
            worst = max(worst, part[i])
    return worst


def _dot(a, b, dots, part):
    N, H, W = a.shape
    for n in range(N):
        for i in prange(H):
            acc = 0.0
            for j in range(W):
                acc += np.float64(a[n, i, j]) * b[n, i, j]
            part[i] = acc
        dots[n] = _ordered_sum(part)


def _new_direction(p, z, beta):
    """``p = z + beta p``."""
    N, H, W = p.shape
    for n in range(N):
        s = np.float32(beta[n])
        for i in prange(H):
            for j in range(W):
                p[n, i, j] = z[n, i, j] + s * p[n, i, j]


class _Kernels:
    """The kernels compiled serial (``parallel=False``) or multi-threaded, on first use (cached on disk)."""

    NAMES = ("factor_lines", "column_step", "row_step", "residual", "jacobi_from_zero", "jacobi_step", "restrict",
             "interpolate_add", "apply_dot", "cg_update", "dot", "new_direction")

    def __init__(self, parallel: bool) -> None:
        import types

        for name in self.NAMES:
            fn = globals()[f"_{name}"]
            copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__)
            copy.__qualname__ = f"{fn.__qualname__}_{'parallel' if parallel else 'serial'}"  # own cache entry
            setattr(self, name, njit(cache=True, nogil=True, parallel=parallel)(copy))


SERIAL = PARALLEL = None
if AVAILABLE:
    # the kernels' helpers, jitted in place (the kernels look them up by name when they compile)
    _residual_row = njit(cache=True, nogil=True)(_residual_row)
    _solve_row_block = njit(cache=True, nogil=True)(_solve_row_block)
    _add_rows = njit(cache=True, nogil=True)(_add_rows)
    _ordered_sum = njit(cache=True, nogil=True)(_ordered_sum)
    SERIAL, PARALLEL = _Kernels(False), _Kernels(True)


def kernels(pixels: int) -> tuple[_Kernels, int]:
    """The kernels for a grid of ``pixels`` and their strips: serial (one strip) on one thread and for small grids,
    where starting threads costs more than they save, else parallel (a strip per thread)."""
    threads = numba.get_num_threads()
    return (PARALLEL, threads) if pixels >= PARALLEL_PIXELS and threads > 1 else (SERIAL, 1)


_POOL_STARTED = False


def use_torch_threads() -> int:
    """Run the kernels on as many threads as torch may use now (``torch.get_num_threads()``, which
    ``utils.threads.load_adaptive_threads`` lowers beside busy processes); returns that number.

    Numba's OpenMP pool shares torch's libgomp, and starting it resets OpenMP's thread count (torch's too) to
    all cores: it is started once here, and torch's count restored.
    """
    import torch

    global _POOL_STARTED
    n = torch.get_num_threads()
    if not _POOL_STARTED:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        _POOL_STARTED = True
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    k = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(k)
    return k


def _np(t) -> np.ndarray:
    """The numpy view of a contiguous CPU tensor (shared memory)."""
    return t.detach().contiguous().numpy()


class Cycle:
    """``Multigrid``'s V-cycle in fused kernels: on the first ``line_depth`` grids (None: all) alternating exact
    line solves (columns then rows before the coarse correction, rows then columns after), one damped-Jacobi
    sweep before and after on the grids below, the coarsest solved by its dense inverse. Built from a torch
    ``Multigrid`` (its elimination hierarchy), whose arrays it shares."""

    def __init__(self, mg, line_depth: int | None = None, omega: float = 0.8) -> None:
        import torch

        depth = len(mg.ops) if line_depth is None else line_depth
        use_torch_threads()
        self.levels = []
        for k, (o, level) in enumerate(zip(mg.ops, mg.levels, strict=True)):
            shape = tuple(o.ax.shape)
            coarse_shape = tuple(level.coarse[0].shape)
            kern, strips = kernels(shape[1] * shape[2])
            lv = {"op": (_np(o.diag), _np(o.ax), _np(o.ay)),
                  "cf": tuple(_np(c) for c in level.phase_coefs),
                  "partial": tuple(np.empty(coarse_shape, np.float32) for _ in range(3)),
                  "b_c": np.empty(coarse_shape, np.float32), "x_c": np.empty(coarse_shape, np.float32),
                  "res": np.empty(shape, np.float32), "work": np.empty(shape[1:], np.float32),
                  "blocks": np.empty((numba.config.NUMBA_NUM_THREADS, 3, ROWS, shape[2]), np.float32)}
            if k < depth:
                lv["cols"] = tuple(np.empty(shape, np.float32) for _ in range(3))
                lv["rows"] = tuple(np.empty(shape, np.float32) for _ in range(3))
                kern.factor_lines(lv["op"][0], lv["op"][2], *lv["cols"], False, strips)
                kern.factor_lines(lv["op"][0], lv["op"][1], *lv["rows"], True, strips)
            else:
                lv["s"] = _np(omega * o.inv_diag)
            self.levels.append(lv)
        self.coarsest_inv = torch.cholesky_inverse(mg.chol).numpy()
        self.N = mg.ops[0].ax.shape[0]

    def __call__(self, b: np.ndarray, x: np.ndarray, k: int = 0) -> np.ndarray:
        """``x = M^-1 b`` at level ``k`` for (N, H, W) float32 ``b`` (``x`` must not alias ``b``)."""
        if k == len(self.levels):
            np.matmul(self.coarsest_inv, b.reshape(self.N, -1, 1), out=x.reshape(self.N, -1, 1))
            return x
        lv = self.levels[k]
        kern, strips = kernels(b.shape[1] * b.shape[2])
        op, work, blocks = lv["op"], lv["work"], lv["blocks"]
        lines = "cols" in lv
        if lines:
            kern.column_step(b, x, *op, *lv["cols"], work, True, strips)
            kern.row_step(b, x, *op, *lv["rows"], blocks, strips)
        else:
            kern.jacobi_from_zero(b, lv["s"], x)
        kern.residual(b, x, *op, lv["res"])
        kern.restrict(lv["res"], lv["cf"], *lv["partial"], lv["b_c"])
        self(lv["b_c"], lv["x_c"], k + 1)
        kern.interpolate_add(lv["x_c"], lv["cf"], *lv["partial"], x)
        if lines:
            kern.row_step(b, x, *op, *lv["rows"], blocks, strips)
            kern.column_step(b, x, *op, *lv["cols"], work, False, strips)
        else:
            kern.jacobi_step(b, x, *op, lv["s"], work)
        return x


def pcg(op, b, precond, tol: float, max_iter: int):
    """``wls._pcg`` in fused kernels (float32, unit mass, CPU) on ``torch.get_num_threads()`` threads at most:
    CG preconditioned by ``precond.cycle``; returns (x in float64, iterations)."""
    import torch

    use_torch_threads()
    N, H, W = b.shape
    kern, _ = kernels(H * W)
    x_t = torch.zeros(b.shape, dtype=torch.float64)
    x, r = x_t.numpy(), b.detach().clone().contiguous().numpy()
    ax, ay = _np(op.ax), _np(op.ay)
    p, q, z = (np.empty_like(r) for _ in range(3))
    dots, part = np.empty(N), np.empty(H)
    precond.cycle(r, p)
    kern.dot(r, p, dots, part)
    rz = dots.copy()
    worst = float(np.abs(r).max())
    tiny = np.finfo(np.float32).tiny
    for it in range(max_iter + 1):
        if worst <= tol:
            return x_t, it
        if it == max_iter:
            break
        kern.apply_dot(p, ax, ay, q, dots, part)
        step = rz / np.maximum(dots, tiny)
        worst = kern.cg_update(x, p, r, q, step, part)
        precond.cycle(r, z)
        kern.dot(r, z, dots, part)
        beta = dots / np.maximum(rz, tiny)
        rz = dots.copy()
        kern.new_direction(p, z, beta)
    return x_t, max_iter


def warm() -> None:
    """Compile every kernel (serial and parallel) once, into numba's on-disk cache (``make install`` runs it;
    the first solve would otherwise take ~25 s)."""
    import torch

    from nir_colorize.fusion.wls import wls_smooth

    gen = torch.Generator().manual_seed(0)
    for size in ((300, 230), (100, 90)):  # the parallel kernels on the finest grid, the serial ones everywhere
        wls_smooth(torch.rand(2, 1, *size, generator=gen))
