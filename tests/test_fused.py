"""The fused CPU kernels of the WLS solver (numba) against torch's multigrid, SciPy and dense algebra, on real crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from nir_colorize.data.dataset import to_tensor
from nir_colorize.data.io import read_nir
from nir_colorize.fusion import fused, wls_smooth
from nir_colorize.fusion.multigrid import Laplacian5, Multigrid, fused_kernels_apply
from nir_colorize.fusion.wls import wls_weights

NIR = Path(__file__).resolve().parents[1] / "data" / "sample" / "nirscene1" / "urban" / "0000_nir.tiff"
HALF_LEVEL = 1.0 / 510.0

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(not fused.AVAILABLE, reason="numba is not installed")]


@pytest.fixture(scope="module")
def urban() -> torch.Tensor:
    return to_tensor(read_nir(NIR))  # (1, 679, 1024)


def operator(image: torch.Tensor) -> Laplacian5:
    ax, ay = wls_weights(image)
    return Laplacian5(None, ax, ay).to(torch.float32)


def test_elimination_kernels_match_torch_on_every_level(urban):
    """restrict / interpolate of the fused kernels equal torch's ``_Elimination`` at every level, odd sizes too."""
    from nir_colorize.fusion.multigrid import _Elimination

    op = operator(urban[:, 101:298, 333:564])  # 197 x 231: odd sides, padded levels
    mg = Multigrid(op, coarse_size=16, fused=True)
    assert len(mg.levels) >= 5
    gen = torch.Generator().manual_seed(0)
    for k, o in enumerate(mg.ops):
        level, lv = _Elimination(o.m, o.ax, o.ay), mg.cycle.levels[k]
        r = torch.randn(o.ax.shape, generator=gen)
        b_c, partial = level.restrict(r.clone())
        b_c, partial = b_c.clone(), [p.clone() for p in partial]
        x_c = torch.randn(b_c.shape, generator=gen)
        expected = level.interpolate(x_c, [p.clone() for p in partial]).clone()
        for kern in (fused.SERIAL, fused.PARALLEL):
            kern.restrict(r.numpy(), lv["cf"], *lv["partial"], lv["b_c"])
            assert np.abs(lv["b_c"] - b_c.numpy()).max() <= 1e-6 * np.abs(b_c.numpy()).max(), k
            x = np.zeros(o.ax.shape, np.float32)
            kern.interpolate_add(x_c.numpy(), lv["cf"], *lv["partial"], x)
            assert np.abs(x - expected.numpy()).max() <= 1e-6 * np.abs(expected.numpy()).max(), k


def test_line_solves_are_exact_tridiagonal_solves(urban):
    """A column step from zero and a row step solve each line's tridiagonal system (SciPy's banded solver)."""
    image = urban[:, 200:263, 400:451]  # 63 x 51
    op = operator(image)
    mg = Multigrid(op, coarse_size=16, fused=True)
    lv = mg.cycle.levels[0]
    d, ax, ay = (a[0].astype(np.float64) for a in lv["op"])
    b = image.float().numpy()
    x = np.zeros_like(b)
    fused.SERIAL.column_step(b, x, *lv["op"], *lv["cols"], lv["work"], True, 1)
    for j in (0, 17, 50):
        T = np.vstack([np.r_[0, -ay[:-1, j]], d[:, j], np.r_[-ay[:-1, j], 0]])
        assert np.allclose(x[0, :, j], scipy.linalg.solve_banded((1, 1), T, b[0, :, j]), rtol=1e-4, atol=1e-6)
    x = np.zeros_like(b)
    fused.SERIAL.row_step(b, x, *lv["op"], *lv["rows"], *lv["blocks"], 1)  # from x = 0: the residual is b
    for i in (0, 31, 62):
        T = np.vstack([np.r_[0, -ax[i, :-1]], d[i], np.r_[-ax[i, :-1], 0]])
        assert np.allclose(x[0, i], scipy.linalg.solve_banded((1, 1), T, b[0, i]), rtol=1e-4, atol=1e-6)


def test_fused_vcycle_is_a_symmetric_positive_definite_approximate_inverse(urban):
    crop = urban[:, 380:403, 420:450]  # 23 x 30, several levels with coarse_size=16
    op = operator(crop)
    mg = Multigrid(op, coarse_size=16, fused=True)
    n = crop.numel()
    eye = torch.eye(n).reshape(n, *crop.shape[-2:])
    batch = Laplacian5(None, op.ax.expand(n, -1, -1).contiguous(), op.ay.expand(n, -1, -1).contiguous())
    P = Multigrid(batch, coarse_size=16, fused=True)(eye).reshape(n, n).double()
    assert torch.allclose(P, P.T, atol=1e-5 * P.abs().max())
    P = (P + P.T) / 2
    assert torch.linalg.eigvalsh(P).min() > 0
    A = Laplacian5(None, op.ax.double(), op.ay.double()).dense()[0]
    eig = torch.linalg.eigvals(P @ A).real
    assert eig.min() > 0.02 and eig.max() <= 1 + 1e-4
    assert mg.cycle is not None and len(mg.levels) >= 3


@pytest.mark.parametrize("region", [(slice(101, 288), slice(333, 564)), (slice(0, 679), slice(0, 1024))])
def test_fused_solve_is_exact_and_agrees_with_torch(urban, region):
    """Odd-sided crop (serial kernels) and the full 1024 x 679 frame (parallel kernels): within half an 8-bit
    level of SciPy's direct solve, as the torch path."""
    image = urban[0][region]
    exact = wls_smooth(image, solver="direct")
    info: dict = {}
    fast = wls_smooth(image, info=info)
    torch_only = wls_smooth(image, fused=False)
    assert (fast - exact).abs().max().item() <= HALF_LEVEL
    assert (torch_only - exact).abs().max().item() <= HALF_LEVEL
    assert info["residual"] <= 0.99 * HALF_LEVEL


def test_batched_channels_match_one_by_one(urban):
    crop = urban[:, 200:320, 300:470]
    image = torch.cat([crop, crop.sqrt(), crop ** 2])[None]  # (1, 3, 120, 170)
    together = wls_smooth(image)
    alone = torch.cat([wls_smooth(image[:, c:c + 1]) for c in range(3)], dim=1)
    assert (together - alone).abs().max().item() <= 2 * HALF_LEVEL
    assert (together - wls_smooth(image, solver="direct")).abs().max().item() <= HALF_LEVEL


def test_thread_count_and_kernel_variant_do_not_change_the_result(urban, monkeypatch):
    """The kernels sum by rows in a fixed order: a V-cycle and a CG solve give the same bits serial or parallel, on
    1 or 2 threads. (Whole solves on 1 and 2 threads differ by an ulp: torch's own setup ops round differently.)"""
    monkeypatch.setenv("NIR_COLORIZE_ADAPTIVE_THREADS", "0")  # exactly the threads asked for, busy machine or not
    image = urban[:, :320, :400]  # 128,000 pixels: the parallel kernels on 2 threads
    op = operator(image)
    mg = Multigrid(op)
    b = image.float().numpy()
    before = torch.get_num_threads()
    results = {}
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            fused.use_torch_threads()
            assert fused.kernels(image.numel()) == ((fused.PARALLEL, 2) if threads == 2 else (fused.SERIAL, 1))
            results[f"cycle {threads}"] = mg.cycle(b, np.empty_like(b)).copy()
            results[f"cg {threads}"] = fused.pcg(op, image.float(), mg, 1e-4, 200)[0]
            assert torch.get_num_threads() == threads  # numba's OpenMP pool left torch's thread count alone
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(fused, "PARALLEL_PIXELS", 1 << 30)  # serial kernels on 2 threads
            results["cycle serial"] = mg.cycle(b, np.empty_like(b)).copy()
        solves = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            solves.append(wls_smooth(image[0]))
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(results["cycle 1"], results["cycle 2"])
    assert np.array_equal(results["cycle 1"], results["cycle serial"])
    assert torch.equal(results["cg 1"], results["cg 2"])
    assert (solves[0] - solves[1]).abs().max().item() < 1e-6


def test_fused_kernels_apply_only_where_they_can(urban, monkeypatch):
    op = operator(urban[:, :40, :50])
    assert fused_kernels_apply(op)
    assert not fused_kernels_apply(Laplacian5(None, op.ax.double(), op.ay.double()))  # float64
    assert not fused_kernels_apply(op, smoother="jacobi")
    assert not fused_kernels_apply(operator(urban[:, :8, :20]))  # no coarser level (<= 256 pixels)
    with pytest.raises(ValueError, match="fused=True"):
        Multigrid(Laplacian5(None, op.ax.double(), op.ay.double()), fused=True)
    assert Multigrid(op, fused=False).cycle is None
    monkeypatch.setenv("NIR_COLORIZE_FUSED", "0")
    assert Multigrid(op).cycle is None


def test_fused_elimination_equals_torch_bit_for_bit(urban):
    """The fused set-up of every level (odd sides included) gives torch's ``_Elimination`` arrays exactly."""
    from nir_colorize.fusion.multigrid import _Elimination

    op = operator(urban[:, 101:298, 333:564])  # 197 x 231
    m, ax, ay = op.m, op.ax, op.ay
    levels = 0
    while m.shape[-2] * m.shape[-1] > 16:
        expected = _Elimination(m, ax, ay)
        for kern in (fused.SERIAL, fused.PARALLEL):
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(fused, "kernels", lambda pixels, kern=kern: (kern, 1))
                got = fused.Elimination(m, ax, ay)
            for a, b in zip((*got.phase_coefs, *got.coarse), (*expected.phase_coefs, *expected.coarse), strict=True):
                assert torch.equal(a, b.contiguous()), levels
        m, ax, ay = expected.coarse
        levels += 1
    assert levels >= 5
