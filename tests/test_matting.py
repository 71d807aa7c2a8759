"""Alpha matting (``--refine matting``): the trimap, the matte against a known alpha on a real photograph, the
size guard, and the CLI on segment and apply, including the one-line setup error without pymatting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskcli import matting
from maskcli.composite.blend import estimate_foreground
from maskcli.errors import OptionError
from maskcli.refine import Refinement

from conftest import SAMPLES, run_cli

pymatting = pytest.importorskip("pymatting", reason="pymatting (the [matting] extra) is not installed")


def _fur(size: int) -> np.ndarray:
    return cv2.resize(cv2.imread(str(SAMPLES / "chelsea.png"))[:, :, ::-1], (size, size)).astype(np.float32) / 255


def _composite(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A soft-edged disc with thin hairs, coloured with the cat photo's fur, over the coffee photo: I = αF + (1−α)B."""
    rng = np.random.default_rng(0)
    big = np.zeros((size * 4, size * 4), np.float32)
    cv2.circle(big, (size * 2, size * 2), size, 1.0, -1, lineType=cv2.LINE_AA)
    for angle in rng.uniform(0, 2 * np.pi, 60):
        start = size * 2 + size * np.array([np.cos(angle), np.sin(angle)])
        end = start + size * 0.5 * np.array([np.cos(angle), np.sin(angle)])
        cv2.line(big, tuple(start.astype(int)), tuple(end.astype(int)), 0.8, 2, cv2.LINE_AA)
    alpha = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    fur = _fur(size)
    back = cv2.resize(cv2.imread(str(SAMPLES / "coffee.png"))[:, :, ::-1], (size, size)).astype(np.float32) / 255
    return alpha[..., None] * fur + (1 - alpha[..., None]) * back, alpha


def test_matte_recovers_a_known_alpha_better_than_the_rough_mask() -> None:
    image, truth = _composite()
    rough = cv2.GaussianBlur((truth > 0.5).astype(np.float32), (0, 0), 2.0)  # a blurry, CNN-like mask
    facts: dict = {}
    alpha, colour = matting.matte(image, rough, foreground=True, facts=facts)
    assert alpha.dtype == np.float32 and alpha.shape == truth.shape and colour is not None
    assert 0 <= alpha.min() and alpha.max() <= 1
    before, after = np.abs(rough - truth).sum(), np.abs(alpha - truth).sum()
    assert after < 0.9 * before, (before, after)
    assert facts["matting_solver"] == matting.DEFAULT_SOLVER and 0 < facts["matting_unknown_fraction"] < 0.6
    # Sure regions are exact: deep inside 1, far outside 0.
    assert alpha[48, 48] == 1.0 and alpha[0, 0] == 0.0


def test_size_guard_solves_a_capped_box_and_keeps_the_full_size() -> None:
    image, truth = _composite(160)
    rough = (truth > 0.5).astype(np.float32)
    facts: dict = {}
    alpha, _ = matting.matte(image, rough, solver="cf", max_side=64, facts=facts)
    assert alpha.shape == (160, 160) and max(facts["matting_work_size"]) <= 64
    assert np.abs(alpha - truth).mean() < np.abs(rough - truth).mean() * 1.5  # coarse, still close


def test_empty_and_full_masks_come_back_unchanged() -> None:
    image, _ = _composite(32)
    for value in (0.0, 1.0):
        mask = np.full((32, 32), value, np.float32)
        alpha, _ = matting.matte(image, mask)
        assert np.array_equal(alpha, mask)


@pytest.mark.parametrize("solver", matting.SOLVERS)
def test_every_solver_runs_on_grey_and_colour(solver: str) -> None:
    image, truth = _composite(48)
    rough = (truth > 0.5).astype(np.float32)
    for picture in (image, image.mean(axis=2)):
        alpha, _ = matting.matte(picture, rough, solver=solver, band=0.08)
        assert alpha.shape == (48, 48) and np.isfinite(alpha).all()


def test_options_are_checked() -> None:
    with pytest.raises(OptionError, match="matting_solver: unknown solver 'closed'"):
        Refinement(refine="matting", matting_solver="closed")
    with pytest.raises(OptionError, match="matting_band: must be a fraction"):
        Refinement(refine="matting", matting_band=0.0)
    with pytest.raises(OptionError, match="matting_band: works with `refine='matting'` only") as caught:
        Refinement(refine="guided", matting_band=0.05)
    from maskcli.cli.flags import Wording

    assert Wording().message(caught.value) == "--matting-band: works with --refine matting only"


def test_cli_segment_writes_a_soft_alpha_and_apply_a_matted_cutout(tmp_path: Path) -> None:
    image, truth = _composite()
    source = tmp_path / "fur.png"
    cv2.imwrite(str(source), np.round(image[:, :, ::-1] * 255).astype(np.uint8))
    rough = tmp_path / "rough.png"
    cv2.imwrite(str(rough), ((truth > 0.5) * 255).astype(np.uint8))
    done = run_cli("segment", str(source), "-o", str(tmp_path / "masks"), "--method", "otsu", "--refine",
                   "matting", "--matting-band", "0.05", "--matting-solver", "cf")
    assert done.returncode == 0, done.stderr.decode()
    mask = cv2.imread(str(tmp_path / "masks" / "fur.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (96, 96) and ((mask > 0) & (mask < 255)).any()  # soft values: the matte, not a hard mask
    cut = run_cli("apply", str(source), "--mask", str(rough), "--refine", "matting", "--mode", "cutout", "-o",
                  str(tmp_path / "cut"))
    assert cut.returncode == 0, cut.stderr.decode()
    rgba = cv2.imread(str(tmp_path / "cut" / "fur.png"), cv2.IMREAD_UNCHANGED)
    alpha = rgba[..., 3].astype(np.float32) / 255
    assert np.abs(alpha - truth).sum() < 0.9 * np.abs((truth > 0.5) - truth).sum()
    # The soft edge's colour is the fur's, not the coffee photo's showing through: pymatting's foreground
    # estimate has less colour error there than the composite itself and than blur-fusion on the same alpha.
    fur, colour = _fur(96), rgba[..., 2::-1].astype(np.float32) / 255
    edge = (alpha > 0.05) & (alpha < 0.95) & (truth > 0.05)

    def fringe(rgb: np.ndarray) -> float:
        return float(np.abs(rgb[edge] - fur[edge]).mean())

    ours, kept, blur_fusion = fringe(colour), fringe(image), fringe(estimate_foreground(image, alpha))
    assert ours < 0.8 * kept and ours < blur_fusion, (ours, kept, blur_fusion)
    wrong = run_cli("apply", str(source), "--mask", str(rough), "--matting-band", "0.05", "-o", str(tmp_path / "x"))
    assert wrong.returncode == 2 and "--refine matting" in wrong.stderr.decode()


def test_without_pymatting_the_cli_says_how_to_install_it(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((8, 8), np.uint8))
    code = ("import sys\nsys.modules['pymatting'] = None\nfrom maskcli.cli.app import main\n"
            f"sys.exit(main(['segment', {str(image)!r}, '-o', {str(tmp_path / 'out')!r}, '--refine', 'matting']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 3
    message = done.stderr.decode()
    assert message.count("\n") == 1 and "pip install 'maskcli[matting]'" in message
    assert not (tmp_path / "out").exists()
