"""Fused CPU kernels (numba) of the WLS solver: its multigrid V-cycle and CG steps, one or two passes a step.

Hand-written because torch runs each stencil term as its own pass over the image (~40 passes per CG iteration
at 1024 x 680, memory-bound, plus op overhead on the small grids); here a whole smoothing, residual or transfer
step is one loop: 2.5x faster on ``bench.fusion.BENCH_SET`` (median, 2 threads) and 2x on one thread.
``multigrid.Multigrid`` builds the hierarchy from ``Elimination`` (the set-up of ``multigrid._Elimination`` in
one kernel, the same bits) and runs it with ``Cycle`` and ``pcg``. Line
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


def _solve_row_block(b, x, d, ax, ay, c, invp, e, n, blk, cnt, rows, lines):
    """Block ``blk`` of ``ROWS`` rows: their residual (into ``rows``, (ROWS, W)), then their line solves in
    ``lines`` ((W, ROWS): the block transposed, so that each step along the rows is one vector operation over the
    block's ``ROWS`` independent recurrences). ``c``, ``invp``, ``e``: the factors in the same layout, (N, blocks,
    W, ROWS); rows past ``cnt`` (the image's last block) are zero."""
    W = b.shape[2]
    i0 = blk * ROWS
    for k in range(cnt):
        _residual_row(b, x, d, ax, ay, n, i0 + k, 0, W, rows[k])
    for k in range(cnt, ROWS):
        rows[k, :] = 0.0
    for j in range(W):
        lj = lines[j]
        for k in range(ROWS):
            lj[k] = rows[k, j]
    cb, pb, eb = c[n, blk], invp[n, blk], e[n, blk]
    for j in range(1, W):
        lj, lp, cj = lines[j], lines[j - 1], cb[j]
        for k in range(ROWS):
            lj[k] += cj[k] * lp[k]
    for k in range(ROWS):
        lines[W - 1, k] *= pb[W - 1, k]
    for jj in range(W - 1):
        j = W - 2 - jj
        lj, ln, pj, ej = lines[j], lines[j + 1], pb[j], eb[j]
        for k in range(ROWS):
            lj[k] = pj[k] * lj[k] + ej[k] * ln[k]


def _at(a, n, i, j, fill):
    """``a[n, i, j]``, or ``fill`` outside the array (the dummy row / column that makes odd sides even)."""
    return a[n, i, j] if i < a.shape[1] and j < a.shape[2] else fill


def _split(a, b, c, d, tiny):
    """1.0 where path a-b has the larger series conductance, else 0.0 (``multigrid._split``)."""
    p = a * b / max(a + b, tiny)
    q = c * d / max(c + d, tiny)
    return np.float32(1.0) if p >= q else np.float32(0.0)


def _eliminate(m, ax, ay, cf, w, coarse):
    """``multigrid._Elimination`` set-up in float32, the same operations in the same order (the same bits):
    ``cf`` gets the 15 phase coefficient arrays (aw, ae, an, as, bn, bs, bw, be, nw, ne, sw, se, k1, k2, k3),
    ``coarse`` (m, ax, ay) of the next grid; ``w``: (16, N, H/2, W/2) work arrays. Each pass reads its
    predecessors' results at neighbouring points (the torch code's shifts), so passes are separate loops."""
    aw, ae, an, as_, bn, bs, bw, be, nw, ne, sw, se, k1, k2, k3 = cf
    m_ee, cx, cy = coarse
    t1, t2, m_oo, q1, q2, q3, q4, q5, q6, up_, left, t3, d1, d2, f, g = w
    N, Hh, Wh = m_ee.shape
    zero, one, two, tiny = np.float32(0.0), np.float32(1.0), np.float32(2.0), np.float32(1e-30)
    for n in range(N):
        for i in prange(Hh):
            for j in range(Wh):
                fi, fj = 2 * i, 2 * j  # the fine grid's even-even point
                aw[n, i, j] = _at(ax, n, fi, fj, zero)
                ae[n, i, j] = _at(ax, n, fi, fj + 1, zero)
                an[n, i, j] = _at(ay, n, fi - 1, fj + 1, zero) if i > 0 else zero
                as_[n, i, j] = _at(ay, n, fi, fj + 1, zero)
                bn[n, i, j] = _at(ay, n, fi, fj, zero)
                bs[n, i, j] = _at(ay, n, fi + 1, fj, zero)
                bw[n, i, j] = _at(ax, n, fi + 1, fj - 1, zero) if j > 0 else zero
                be[n, i, j] = _at(ax, n, fi + 1, fj, zero)
                m_eo, m_oe = _at(m, n, fi, fj + 1, one), _at(m, n, fi + 1, fj, one)
                a1 = one / ((((m_eo + aw[n, i, j]) + ae[n, i, j]) + an[n, i, j]) + as_[n, i, j])
                a2 = one / ((((m_oe + bn[n, i, j]) + bs[n, i, j]) + bw[n, i, j]) + be[n, i, j])
                k1[n, i, j], k2[n, i, j] = a1, a2
                t1[n, i, j], t2[n, i, j] = m_eo * a1, m_oe * a2
                m_ee[n, i, j] = _at(m, n, fi, fj, one)
                m_oo[n, i, j] = _at(m, n, fi + 1, fj + 1, one)
                q1[n, i, j] = (bn[n, i, j] * bw[n, i, j]) * a2
                q2[n, i, j] = (aw[n, i, j] * an[n, i, j]) * a1
                q3[n, i, j] = (ae[n, i, j] * an[n, i, j]) * a1
                q4[n, i, j] = (bs[n, i, j] * bw[n, i, j]) * a2
                q5[n, i, j] = (bw[n, i, j] * be[n, i, j]) * a2
                q6[n, i, j] = (an[n, i, j] * as_[n, i, j]) * a1
                cx[n, i, j] = (aw[n, i, j] * ae[n, i, j]) * a1
                cy[n, i, j] = (bn[n, i, j] * bs[n, i, j]) * a2
        for i in prange(Hh):
            for j in range(Wh):
                left_ = ae[n, i, j - 1] * t1[n, i, j - 1] if j > 0 else zero
                up = bs[n, i - 1, j] * t2[n, i - 1, j] if i > 0 else zero
                m_ee[n, i, j] = (((m_ee[n, i, j] + aw[n, i, j] * t1[n, i, j]) + left_) + bn[n, i, j] * t2[n, i, j]) + up
                down = an[n, i + 1, j] * t1[n, i + 1, j] if i < Hh - 1 else zero
                right = bw[n, i, j + 1] * t2[n, i, j + 1] if j < Wh - 1 else zero
                m_oo[n, i, j] = (((m_oo[n, i, j] + as_[n, i, j] * t1[n, i, j]) + down) + be[n, i, j] * t2[n, i, j]) + right
                nw[n, i, j] = (aw[n, i, j] * as_[n, i, j]) * k1[n, i, j] + (bn[n, i, j] * be[n, i, j]) * k2[n, i, j]
                ne[n, i, j] = (ae[n, i, j] * as_[n, i, j]) * k1[n, i, j] + (q1[n, i, j + 1] if j < Wh - 1 else zero)
                sw[n, i, j] = (q2[n, i + 1, j] if i < Hh - 1 else zero) + (bs[n, i, j] * be[n, i, j]) * k2[n, i, j]
                se[n, i, j] = (q3[n, i + 1, j] if i < Hh - 1 else zero) + (q4[n, i, j + 1] if j < Wh - 1 else zero)
                q5[n, i, j] = two * (q5[n, i, j + 1] if j < Wh - 1 else zero)  # long_x (row i only: in place is safe)
        for i in prange(Hh):
            for j in range(Wh):
                t1[n, i, j] = two * (q6[n, i + 1, j] if i < Hh - 1 else zero)  # long_y (t1 is free now)
        for i in prange(Hh):
            for j in range(Wh):
                up_[n, i, j] = _split(ne[n, i, j], nw[n, i, j + 1] if j < Wh - 1 else zero,
                                      se[n, i, j], sw[n, i, j + 1] if j < Wh - 1 else zero, tiny)
                left[n, i, j] = _split(sw[n, i, j], nw[n, i + 1, j] if i < Hh - 1 else zero,
                                       se[n, i, j], ne[n, i + 1, j] if i < Hh - 1 else zero, tiny)
        for i in prange(Hh):
            for j in range(Wh):
                lx, ly, u, lf = q5[n, i, j], t1[n, i, j], up_[n, i, j], left[n, i, j]
                lo, rt = one - u, one - lf
                lx_l = q5[n, i, j - 1] * up_[n, i, j - 1] if j > 0 else zero
                ly_u = t1[n, i - 1, j] * left[n, i - 1, j] if i > 0 else zero
                ly_ur = t1[n, i - 1, j] * (one - left[n, i - 1, j]) if i > 0 else zero
                lx_ll = q5[n, i, j - 1] * (one - up_[n, i, j - 1]) if j > 0 else zero
                f[n, i, j] = (nw[n, i, j] + lx_l) + ly_u  # the corners, kept apart until every point has read them
                g[n, i, j] = (ne[n, i, j] + lx * u) + ly_ur
                t3[n, i, j] = (sw[n, i, j] + lx_ll) + ly * lf
                d1[n, i, j] = (se[n, i, j] + lx * lo) + ly * rt
        for i in prange(Hh):
            for j in range(Wh):
                nw[n, i, j], ne[n, i, j], sw[n, i, j], se[n, i, j] = f[n, i, j], g[n, i, j], t3[n, i, j], d1[n, i, j]
                a3 = one / ((((m_oo[n, i, j] + nw[n, i, j]) + ne[n, i, j]) + sw[n, i, j]) + se[n, i, j])
                k3[n, i, j] = a3
                t3[n, i, j] = m_oo[n, i, j] * a3
        for i in prange(Hh):
            for j in range(Wh):
                a3 = k3[n, i, j]
                v = m_ee[n, i, j] + nw[n, i, j] * t3[n, i, j]
                v = v + (ne[n, i, j - 1] * t3[n, i, j - 1] if j > 0 else zero)
                v = v + (sw[n, i - 1, j] * t3[n, i - 1, j] if i > 0 else zero)
                m_ee[n, i, j] = v + (se[n, i - 1, j - 1] * t3[n, i - 1, j - 1] if i > 0 and j > 0 else zero)
                up = (sw[n, i - 1, j] * se[n, i - 1, j]) * k3[n, i - 1, j] if i > 0 else zero
                f[n, i, j] = (cx[n, i, j] + (nw[n, i, j] * ne[n, i, j]) * a3) + up  # cx of step 2
                lf = (ne[n, i, j - 1] * se[n, i, j - 1]) * k3[n, i, j - 1] if j > 0 else zero
                g[n, i, j] = (cy[n, i, j] + (nw[n, i, j] * sw[n, i, j]) * a3) + lf  # cy of step 2
                d1[n, i, j] = ((two * nw[n, i, j]) * se[n, i, j]) * a3
                d2[n, i, j] = ((two * ne[n, i, j]) * sw[n, i, j]) * a3
        for i in prange(Hh):
            for j in range(Wh):
                cxr = f[n, i, j]
                cy_r = g[n, i, j + 1] if j < Wh - 1 else zero
                cx_d = f[n, i + 1, j] if i < Hh - 1 else zero
                up_[n, i, j] = _split(cxr, cy_r, g[n, i, j], cx_d, tiny)  # f1 (g1 = 1 - f1)
                left[n, i, j] = _split(cxr, g[n, i, j], cy_r, cx_d, tiny)  # f2 (g2 = 1 - f2)
        for i in prange(Hh):
            for j in range(Wh):
                f1, f2 = up_[n, i, j], left[n, i, j]
                a, b_ = d1[n, i, j], d2[n, i, j]
                up1 = d1[n, i - 1, j] * (one - up_[n, i - 1, j]) if i > 0 else zero
                up2 = d2[n, i - 1, j] * (one - left[n, i - 1, j]) if i > 0 else zero
                cx[n, i, j] = (((f[n, i, j] + a * f1) + up1) + b_ * f2) + up2
                l1 = d1[n, i, j - 1] * up_[n, i, j - 1] if j > 0 else zero
                l2 = d2[n, i, j - 1] * (one - left[n, i, j - 1]) if j > 0 else zero
                cy[n, i, j] = (((g[n, i, j] + l1) + a * (one - f1)) + b_ * f2) + l2


def _ordered_sum(values):
    """Sum in index order (``values.sum()`` would become a parallel reduction under ``parallel=True``)."""
    acc = 0.0
    for v in values:
        acc += v
    return acc


def _add_rows(x, n, i0, cnt, lines):
    """``x[n, i0 + k] += lines[:, k]`` for ``k < cnt`` (a block solved by ``_solve_row_block``)."""
    W = x.shape[2]
    for k in range(cnt):
        xr = x[n, i0 + k]
        for j in range(W):
            xr[j] += lines[j, k]


def _row_step(b, x, d, ax, ay, c, invp, e, rows, y, strips):
    """``x <- x + T_row^-1 (b - A x)``; ``c``, ``invp``, ``e``: the row factors blocked (``block_rows``); ``rows``:
    (>= strips, ROWS, W) and ``y``: (>= strips, 3, W, ROWS) work arrays. Rows go in blocks of ``ROWS`` (solved
    together, ``_solve_row_block``), the blocks in ``strips`` (one per thread). A block's update waits until the
    next block's residual has read its old rows; the first and last block of each strip wait for all strips."""
    N, H, W = b.shape
    blocks = (H + ROWS - 1) // ROWS
    for n in range(N):
        for t in prange(strips):
            b0, b1 = t * blocks // strips, (t + 1) * blocks // strips
            for blk in range(b0, b1):
                slot = 2 if blk == b0 else blk % 2
                _solve_row_block(b, x, d, ax, ay, c, invp, e, n, blk, min(ROWS, H - blk * ROWS), rows[t], y[t, slot])
                if blk - 1 > b0:
                    _add_rows(x, n, (blk - 1) * ROWS, ROWS, y[t, (blk - 1) % 2])
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
             "interpolate_add", "apply_dot", "cg_update", "dot", "new_direction", "eliminate")

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
    _at = njit(cache=True, nogil=True)(_at)
    _split = njit(cache=True, nogil=True)(_split)
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


def block_rows(a: np.ndarray, fill: float) -> np.ndarray:
    """(N, H, W) ``a`` as (N, blocks, W, ROWS): each block of ``ROWS`` rows transposed (rows past H: ``fill``)."""
    N, H, W = a.shape
    blocks = -(-H // ROWS)
    padded = np.full((N, blocks * ROWS, W), fill, np.float32)
    padded[:, :H] = a
    return np.ascontiguousarray(padded.reshape(N, blocks, ROWS, W).transpose(0, 1, 3, 2))


class Elimination:
    """``multigrid._Elimination``'s set-up in one fused kernel (same bits): ``phase_coefs`` and ``coarse`` as
    torch tensors sharing the kernel's arrays; ``restrict`` / ``interpolate`` are ``Cycle``'s."""

    def __init__(self, m, ax, ay) -> None:
        import torch

        N, H, W = m.shape
        half = (N, -(-H // 2), -(-W // 2))
        cf = tuple(np.empty(half, np.float32) for _ in range(15))
        coarse = tuple(np.empty(half, np.float32) for _ in range(3))
        kern, _ = kernels(half[1] * half[2])
        kern.eliminate(_np(m), _np(ax), _np(ay), cf, tuple(np.empty((16, *half), np.float32)), coarse)
        self.phase_coefs = tuple(torch.from_numpy(c) for c in cf)
        self.coarse = tuple(torch.from_numpy(c) for c in coarse)


class Cycle:
    """``Multigrid``'s V-cycle in fused kernels: on the first ``line_depth`` grids (None: all) alternating exact
    line solves (columns then rows before the coarse correction, rows then columns after), one damped-Jacobi
    sweep before and after on the grids below, the coarsest solved by its dense inverse. Built from a
    ``Multigrid`` (its elimination hierarchy, ``Elimination``), whose arrays it shares; ``Multigrid`` has set the
    thread count (``use_torch_threads``)."""

    def __init__(self, mg, line_depth: int | None = 1, omega: float = 0.8) -> None:
        import torch

        depth = len(mg.ops) if line_depth is None else line_depth
        self.levels = []
        for k, (o, level) in enumerate(zip(mg.ops, mg.levels, strict=True)):
            shape = tuple(o.ax.shape)
            coarse_shape = tuple(level.coarse[0].shape)
            kern, strips = kernels(shape[1] * shape[2])
            lv = {"op": (_np(o.diag), _np(o.ax), _np(o.ay)),
                  "cf": tuple(_np(c) for c in level.phase_coefs),
                  "partial": tuple(np.empty(coarse_shape, np.float32) for _ in range(3)),
                  "b_c": np.empty(coarse_shape, np.float32), "x_c": np.empty(coarse_shape, np.float32),
                  "res": np.empty(shape, np.float32), "work": np.empty(shape[1:], np.float32)}
            if k < depth:
                threads = numba.config.NUMBA_NUM_THREADS  # row_step's work rows: a set per strip
                lv["blocks"] = (np.empty((threads, ROWS, shape[2]), np.float32),
                                np.empty((threads, 3, shape[2], ROWS), np.float32))
                lv["cols"] = tuple(np.empty(shape, np.float32) for _ in range(3))
                rows = tuple(np.empty(shape, np.float32) for _ in range(3))
                kern.factor_lines(lv["op"][0], lv["op"][2], *lv["cols"], False, strips)
                kern.factor_lines(lv["op"][0], lv["op"][1], *rows, True, strips)
                lv["rows"] = tuple(block_rows(a, fill) for a, fill in zip(rows, (0.0, 1.0, 0.0), strict=True))
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
        op, work = lv["op"], lv["work"]
        lines = "cols" in lv
        if lines:
            kern.column_step(b, x, *op, *lv["cols"], work, True, strips)
            kern.row_step(b, x, *op, *lv["rows"], *lv["blocks"], strips)
        else:
            kern.jacobi_from_zero(b, lv["s"], x)
        kern.residual(b, x, *op, lv["res"])
        kern.restrict(lv["res"], lv["cf"], *lv["partial"], lv["b_c"])
        self(lv["b_c"], lv["x_c"], k + 1)
        kern.interpolate_add(lv["x_c"], lv["cf"], *lv["partial"], x)
        if lines:
            kern.row_step(b, x, *op, *lv["rows"], *lv["blocks"], strips)
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
