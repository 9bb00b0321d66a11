"""The WLS multigrid pieces against dense matrices built independently (small real crops, float64)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nir_colorize.data.dataset import to_tensor
from nir_colorize.data.io import read_nir
from nir_colorize.fusion.multigrid import Laplacian5, Multigrid
from nir_colorize.fusion.wls import _pcg, wls_weights

NIR = Path(__file__).resolve().parents[1] / "data" / "sample" / "nirscene1" / "country" / "0000_nir.tiff"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def crop() -> torch.Tensor:
    """A (1, 23, 30) NIR crop with a strong edge and flat parts: odd height, even width."""
    return to_tensor(read_nir(NIR))[:, 380:403, 420:450].double()


def dense_wls_matrix(ax: torch.Tensor, ay: torch.Tensor) -> torch.Tensor:
    """``I + L(ax, ay)`` written out pixel by pixel from the definition (free borders)."""
    H, W = ax.shape
    A = torch.eye(H * W, dtype=torch.float64)
    for i in range(H):
        for j in range(W):
            for di, dj, a in ((0, 1, ax[i, j]), (1, 0, ay[i, j])):
                if i + di < H and j + dj < W:
                    p, q = i * W + j, (i + di) * W + j + dj
                    A[p, p] += a
                    A[q, q] += a
                    A[p, q] -= a
                    A[q, p] -= a
    return A


def test_operator_products_match_the_dense_matrix(crop):
    ax, ay = wls_weights(crop)
    op = Laplacian5(torch.ones_like(ax), ax, ay)
    A = dense_wls_matrix(ax[0], ay[0])
    assert torch.allclose(op.dense()[0], A)
    u, b = torch.rand(2, *crop.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    expected = (A @ u.flatten()).reshape(u.shape)
    assert torch.allclose(op.apply_accurate(u), expected, rtol=1e-10, atol=1e-8)
    unit = Laplacian5(None, ax, ay)  # skips the multiply by m
    assert torch.allclose(unit.apply_accurate(u), expected, rtol=1e-10, atol=1e-8)
    assert torch.allclose(op.residual(b, u), b - expected, rtol=1e-10, atol=1e-8)


def test_accurate_product_keeps_float32_rounding_off_large_couplings(crop):
    ax, ay = wls_weights(crop)  # couplings up to 1e4 in the flat parts
    op64 = Laplacian5(torch.ones_like(ax), ax, ay)
    op32 = op64.to(torch.float32)
    u = crop.float()  # a smooth-ish image: A u is small where couplings are large
    exact = op64.apply_accurate(u.double())
    assert (op32.apply_accurate(u).double() - exact).abs().max() < 1e-4
    naive = -op32.residual(torch.zeros_like(u), u)  # diag * u - sum a u_j, the form the V-cycle uses
    assert (naive.double() - exact).abs().max() > 1e-4  # loses those digits


@pytest.mark.parametrize("fine_smoother", ["lines", "jacobi"])
def test_vcycle_is_a_symmetric_positive_definite_approximate_inverse(crop, fine_smoother):
    ax, ay = wls_weights(crop)
    op = Laplacian5(None, ax, ay)
    M = Multigrid(op, coarse_size=16, smoother=fine_smoother)  # several levels on a small grid
    assert len(M.levels) >= 3
    n = crop.numel()
    P = M(torch.eye(n, dtype=torch.float64).reshape(n, *crop.shape[-2:])).reshape(n, n)  # batched columns
    assert torch.allclose(P, P.T, atol=1e-12 * P.abs().max())
    assert torch.linalg.eigvalsh(P).min() > 0
    # every smoothing step contracts in the A-norm: the spectrum of P A lies in (0, 1], far from 0
    A = dense_wls_matrix(ax[0], ay[0])
    eig = torch.linalg.eigvals(P @ A).real
    assert eig.min() > 0.02 and eig.max() <= 1 + 1e-9
    assert eig.max() / eig.min() < torch.linalg.cond(A).item() / 100


def test_pcg_reaches_the_residual_it_reports(crop):
    """Float32 iterations, float64 solution: the true residual agrees with the stopping test."""
    ax, ay = wls_weights(crop)
    op64 = Laplacian5(torch.ones_like(ax), ax, ay)
    op32 = op64.to(torch.float32)
    x, iterations = _pcg(op32, crop.float(), Multigrid(op32, coarse_size=16), tol=1e-5, max_iter=200)
    assert x.dtype == torch.float64 and 1 < iterations < 200
    assert (op64.residual(crop, x)).abs().max() < 2e-5
    exact = torch.linalg.solve(dense_wls_matrix(ax[0], ay[0]), crop.flatten()).reshape(crop.shape)
    assert (x - exact).abs().max() < 2e-5


def test_correction_passes_reach_tolerances_float32_cannot(monkeypatch):
    """Below float32's reach the float64 certificate sends a second CG pass; the result then matches SciPy."""
    from nir_colorize.fusion import wls

    image = to_tensor(read_nir(NIR))[:, 100:300, 200:460].double()
    passes = []
    pcg = wls._pcg
    monkeypatch.setattr(wls, "_pcg", lambda *a, **k: passes.append(1) or pcg(*a, **k))
    ax, ay = wls_weights(image)
    u = wls.solve_pcg(image, ax, ay, tol=1e-8)
    assert len(passes) >= 2
    assert (Laplacian5(None, ax, ay).residual(image, u)).abs().max() <= 1e-8
    assert (u - wls.solve_direct(image, ax, ay)).abs().max() < 1e-8
