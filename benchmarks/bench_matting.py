"""Alpha matting against ground truth: ``--refine matting`` beside the CNN's raw mask, ``--refine guided``,
``--feather`` and rembg's alpha matting.

The matting set is made here, reproducibly (fixed seeds), never committed: three foregrounds with known alpha and colour
(a furry body with a few hundred anti-aliased hairs of partial opacity; a blob whose edge is out of focus by different
amounts; a feathery shape with a soft, wispy edge) composited as ``I = αF + (1 − α)B`` over real photographs (the
weizmann_horses images from ``../shared/data`` when present, else the sample photos). Each method starts from the same
U²-Net-P soft mask of the composite and is scored on alpha by SAD (sum of absolute differences / 1000), MSE (mean over
the image, ×10³) and gradient error (Rhemann et al. 2009: Gaussian derivatives with σ = 1.4, sum of squared differences
/ 1000), the three usual matting metrics; the estimated foreground colour is scored too (mean absolute error where the
truth's alpha > 0.05, weighted by alpha). Then ``--refine matting`` and the raw mask are scored by IoU at 0.5 on the
horse photos against their hand-made masks.

rembg runs in its own virtual environment (``benchmarks/work/venv-rembg``, made on first use) with its alpha
matting (pymatting's closed-form solver, its default trimap thresholds 240/10 and erosion 10) on the same model
(``U2NET_HOME`` points at a folder holding maskcli's packaged ``u2netp.onnx``, so nothing is downloaded).

Usage::

    python -m benchmarks.bench_matting                      # everything; writes benchmarks/results/matting.md
    python -m benchmarks.bench_matting --horses 20 --no-rembg
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from benchmarks.common import peer_venv, write_report
from maskcli import matting
from maskcli.composite.blend import estimate_foreground as blur_fusion
from maskcli.methods import methods
from maskcli.refine import Refinement

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


WORK = HERE / "work"
HORSES = REPO.parent / "shared" / "data" / "weizmann_horses"
SIZE = 400
FEATHER_PX = 3.0


# --- the matting set ------------------------------------------------------------------------------------------


def _read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255


def _cover(image: np.ndarray, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = size / min(height, width)
    resized = cv2.resize(image, (max(size, round(width * scale)), max(size, round(height * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
    return np.ascontiguousarray(resized[top:top + size, left:left + size])


def _supersampled(draw, size: int, factor: int = 4) -> np.ndarray:
    """Draw at ``factor``× and shrink by area: anti-aliased, fractional coverage like a real matte."""
    canvas = np.zeros((size * factor, size * factor), np.float32)
    draw(canvas, factor)
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)


def fur_alpha(size: int, seed: int = 0) -> np.ndarray:
    """An elliptical body with a few hundred curved hairs, thin (sub-pixel) and partly transparent."""
    rng = np.random.default_rng(seed)

    def draw(canvas: np.ndarray, k: int) -> None:
        centre = np.array([size * 0.5, size * 0.55]) * k
        axes = np.array([size * 0.26, size * 0.22]) * k
        cv2.ellipse(canvas, tuple(int(v) for v in centre), tuple(int(v) for v in axes), 0, 0, 360, 1.0, -1)
        for _ in range(420):
            angle = rng.uniform(0, 2 * np.pi)
            start = centre + axes * 0.92 * np.array([np.cos(angle), np.sin(angle)])
            length = rng.uniform(0.06, 0.18) * size * k
            bend = rng.normal(0, 0.5)
            points = []
            for t in np.linspace(0, 1, 12):
                direction = angle + bend * t
                points.append(start + length * t * np.array([np.cos(direction), np.sin(direction)]))
            opacity = float(rng.uniform(0.5, 1.0))
            cv2.polylines(canvas, [np.array(points, np.int32)], False, opacity, thickness=max(1, k // 2),
                          lineType=cv2.LINE_AA)

    return np.clip(_supersampled(draw, size), 0, 1)


def soft_alpha(size: int, seed: int = 2) -> np.ndarray:
    """An irregular blob whose edge is out of focus by different amounts along its length (defocus, motion)."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    radii = size * (0.28 + 0.08 * rng.standard_normal(24).clip(-1.5, 1.5))
    points = np.stack([size / 2 + radii * np.cos(angles), size / 2 + radii * np.sin(angles)], 1)
    sharp = np.zeros((size, size), np.float32)
    cv2.fillPoly(sharp, [points.astype(np.int32)], 1.0, lineType=cv2.LINE_AA)
    crisp, blurry = cv2.GaussianBlur(sharp, (0, 0), 0.6), cv2.GaussianBlur(sharp, (0, 0), 6.0)
    soft_share = np.mgrid[:size, :size][1].astype(np.float32) / (size - 1)  # crisp on the left, blurry on the right
    return np.clip((1 - soft_share) * crisp + soft_share * blurry, 0, 1).astype(np.float32)


def feather_alpha(size: int, seed: int = 1) -> np.ndarray:
    """A leaf-like shape whose edge dissolves into soft, semi-transparent wisps (motion-blurred barbs)."""
    rng = np.random.default_rng(seed)

    def draw(canvas: np.ndarray, k: int) -> None:
        centre = (int(size * 0.5 * k), int(size * 0.5 * k))
        cv2.ellipse(canvas, centre, (int(size * 0.12 * k), int(size * 0.34 * k)), 20, 0, 360, 1.0, -1)
        for _ in range(160):
            t = rng.uniform(-0.9, 0.9)
            side = rng.choice([-1, 1])
            theta = np.deg2rad(20)
            along = np.array([-np.sin(theta), np.cos(theta)]) * t * size * 0.34 * k
            base = np.array(centre) + along
            direction = np.array([np.cos(theta), np.sin(theta)]) * side + rng.normal(0, 0.2, 2)
            tip = base + direction * rng.uniform(0.12, 0.22) * size * k
            cv2.line(canvas, tuple(base.astype(int)), tuple(tip.astype(int)), float(rng.uniform(0.3, 0.8)),
                     thickness=max(1, k), lineType=cv2.LINE_AA)

    alpha = _supersampled(draw, size)
    return np.clip(cv2.GaussianBlur(alpha, (0, 0), 0.7), 0, 1)


def _empty_window(image: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The square of 60 % of the short side, among nine placements, holding the least of the horse: a real
    background with no subject of its own for the CNN to find."""
    height, width = truth.shape
    side = int(min(height, width) * 0.6)
    best = min((truth[y:y + side, x:x + side].mean(), y, x)
                for y in np.linspace(0, height - side, 3).astype(int)
                for x in np.linspace(0, width - side, 3).astype(int))
    _, y, x = best
    return _cover(image[y:y + side, x:x + side], SIZE)


def backgrounds(count: int) -> list[tuple[str, np.ndarray]]:
    if (HORSES / "images").is_dir():
        names = sorted(os.listdir(HORSES / "images"))[5::25][:count]
        return [(Path(n).stem, _empty_window(_read_rgb(HORSES / "images" / n),
                                             cv2.imread(str(HORSES / "masks" / n), cv2.IMREAD_GRAYSCALE) > 127))
                for n in names]
    names = ["coffee.png", "astronaut.png", "chelsea.png", "coins.png"][:count]
    return [(Path(n).stem, _cover(_read_rgb(REPO / "samples" / n), SIZE)) for n in names]


def matting_set(count: int) -> list[dict]:
    # Real fur texture (the cat photo fills its frame with fur), recoloured for the other two: an object's colour
    # without a picture inside it, which a salient-object model would segment instead.
    fur_colour = _cover(_read_rgb(REPO / "samples" / "chelsea.png"), SIZE)
    feather_colour = np.ascontiguousarray(fur_colour[::-1, :, ::-1])
    soft_colour = np.ascontiguousarray(fur_colour[:, ::-1, [1, 2, 0]])
    foregrounds = [("fur", fur_alpha(SIZE), fur_colour), ("soft", soft_alpha(SIZE), soft_colour),
                   ("feather", feather_alpha(SIZE), feather_colour)]
    items = []
    for fg_name, alpha, colour in foregrounds:
        for bg_name, background in backgrounds(count):
            image = alpha[..., None] * colour + (1 - alpha[..., None]) * background
            items.append({"name": f"{fg_name}-{bg_name}", "image": image.astype(np.float32), "alpha": alpha,
                          "colour": colour})
    return items


# --- metrics --------------------------------------------------------------------------------------------------


def sad(alpha: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(alpha - truth).sum() / 1000)


def mse(alpha: np.ndarray, truth: np.ndarray) -> float:
    return float(((alpha - truth) ** 2).mean() * 1000)


def gradient_error(alpha: np.ndarray, truth: np.ndarray) -> float:
    ours = ndimage.gaussian_gradient_magnitude(alpha.astype(np.float64), 1.4)
    theirs = ndimage.gaussian_gradient_magnitude(truth.astype(np.float64), 1.4)
    return float(((ours - theirs) ** 2).sum() / 1000)


def colour_error(colour: np.ndarray, truth_colour: np.ndarray, truth_alpha: np.ndarray) -> float:
    where = truth_alpha > 0.05
    weights = truth_alpha[where]
    return float((np.abs(colour[where] - truth_colour[where]).mean(axis=1) * weights).sum() / weights.sum())


def band_colour_error(colour: np.ndarray, truth_colour: np.ndarray, truth_alpha: np.ndarray,
                      alpha: np.ndarray) -> float:
    """Mean absolute colour error in the matte's soft band (0.05 < alpha < 0.95, where the truth is not empty):
    where a cut-out's fringe of the old background shows."""
    where = (alpha > 0.05) & (alpha < 0.95) & (truth_alpha > 0.05)
    return float(np.abs(colour[where] - truth_colour[where]).mean()) if where.any() else 0.0


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    pred = mask >= 0.5
    return float((pred & truth).sum() / max((pred | truth).sum(), 1))


# --- methods --------------------------------------------------------------------------------------------------


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    out = function(*args, **kwargs)
    return out, time.perf_counter() - started


def rembg_alphas(items: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """rembg 2's ``remove(alpha_matting=True)`` with u2netp, in its own venv; alpha, colour and seconds per image."""
    python = peer_venv("rembg", ["rembg[cpu]>=2.0.50,<3"], WORK)
    home = WORK / "u2net-home"
    home.mkdir(parents=True, exist_ok=True)
    link = home / "u2netp.onnx"
    if not link.exists():
        link.symlink_to(REPO / "maskcli" / "cnn" / "weights_data" / "u2netp.onnx")
    folder = WORK / "matting-set"
    folder.mkdir(parents=True, exist_ok=True)
    for item in items:
        cv2.imwrite(str(folder / f"{item['name']}.png"),
                    cv2.cvtColor(np.round(item["image"] * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    script = (
        "import sys, time, json, numpy as np\n"
        "from pathlib import Path\nfrom PIL import Image\nfrom rembg import remove, new_session\n"
        "session = new_session('u2netp')\nout = Path(sys.argv[2]); out.mkdir(exist_ok=True)\ntimes = {}\n"
        "for path in sorted(Path(sys.argv[1]).glob('*.png')):\n"
        "    image = Image.open(path).convert('RGB')\n"
        "    start = time.perf_counter()\n"
        "    cut = remove(image, session=session, alpha_matting=True)\n"
        "    times[path.stem] = time.perf_counter() - start\n"
        "    cut.save(out / path.name)\n"
        "print(json.dumps(times))\n"
    )
    out = WORK / "matting-rembg"
    done = subprocess.run([str(python), "-c", script, str(folder), str(out)], capture_output=True, text=True,
                          env={**os.environ, "U2NET_HOME": str(home), "OMP_NUM_THREADS": "2"}, check=True)
    times = json.loads(done.stdout.strip().splitlines()[-1])
    results = {}
    for item in items:
        rgba = cv2.imread(str(out / f"{item['name']}.png"), cv2.IMREAD_UNCHANGED)
        rgba = cv2.cvtColor(rgba, cv2.COLOR_BGRA2RGBA).astype(np.float32) / 255
        results[item["name"]] = (rgba[..., 3], rgba[..., :3], times[item["name"]])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backgrounds", type=int, default=4, help="backgrounds per foreground")
    parser.add_argument("--horses", type=int, default=100, help="horse photos for the IoU check (0: skip)")
    parser.add_argument("--no-rembg", action="store_true", help="skip rembg (no venv is made)")
    parser.add_argument("--solvers", default=",".join(matting.SOLVERS),
                        help="pymatting solvers to compare, comma-separated (the slow rw and lkm can be left out)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "matting.md")
    args = parser.parse_args()
    matting.require()

    cnn = methods.create("cnn", {})
    items = matting_set(args.backgrounds)
    rembg = {} if args.no_rembg else rembg_alphas(items)
    solvers = [solver for solver in args.solvers.split(",") if solver]
    if matting.DEFAULT_SOLVER not in solvers:
        solvers.insert(0, matting.DEFAULT_SOLVER)
    variants = [(solver, matting.DEFAULT_BAND) for solver in solvers] + [
        (matting.DEFAULT_SOLVER, band) for band in (0.01, 0.02, 0.03, 0.05) if band != matting.DEFAULT_BAND]
    scores: dict[str, list[tuple[float, float, float, float, float]]] = {}
    colours: dict[str, list[tuple[float, float]]] = {}

    def score(label: str, alpha: np.ndarray, seconds: float, item: dict) -> None:
        truth = item["alpha"]
        scores.setdefault(label, []).append((sad(alpha, truth), mse(alpha, truth), gradient_error(alpha, truth),
                                             seconds, iou(alpha, truth >= 0.5)))

    # Warm up: the model's first call loads it, and pymatting compiles each solver with numba on first use.
    warm_image = items[0]["image"][:64, :64]
    warm_mask = np.zeros((64, 64), np.float32)
    warm_mask[16:48, 16:48] = 1
    cnn.compute_batch([warm_image])
    for solver in solvers:
        matting.matte(warm_image, warm_mask, solver=solver, foreground=True)

    for number, item in enumerate(items):
        image = item["image"]
        (segmentation,), cnn_seconds = timed(cnn.compute_batch, [image])
        raw = segmentation.mask
        # Methods run one after another on each image (interleaved), so machine load hits all alike.
        score("CNN raw mask", raw, cnn_seconds, item)
        guided, seconds = timed(Refinement(refine="guided").apply, raw, image)
        score("--refine guided", guided, cnn_seconds + seconds, item)
        feathered, seconds = timed(Refinement(feather=FEATHER_PX).apply, raw, image)
        score(f"--feather {FEATHER_PX:g}", feathered, cnn_seconds + seconds, item)
        for solver, band in variants:
            (alpha, _), seconds = timed(matting.matte, image, raw, solver=solver, band=band)
            default = solver == matting.DEFAULT_SOLVER and band == matting.DEFAULT_BAND
            label = f"--refine matting (solver {solver}, band {band:g})" + (" (default)" if default else "")
            score(label, alpha, cnn_seconds + seconds, item)
            if default:
                truth_colour = item["colour"]
                for label, colour in (("pymatting estimate_foreground_ml, on matting alpha",
                                       matting.estimate_foreground(image, alpha)),
                                      ("blur-fusion (apply's decontaminate), on matting alpha",
                                       blur_fusion(image, alpha)),
                                      ("none (the composite itself)", image)):
                    colours.setdefault(label, []).append((colour_error(colour, truth_colour, item["alpha"]),
                                                          band_colour_error(colour, truth_colour, item["alpha"],
                                                                            alpha)))
        if item["name"] in rembg:
            alpha, colour, seconds = rembg[item["name"]]
            score("rembg alpha matting (u2netp)", alpha, seconds, item)
            colours.setdefault("rembg alpha matting (u2netp)", []).append(
                (colour_error(colour, item["colour"], item["alpha"]),
                 band_colour_error(colour, item["colour"], item["alpha"], alpha)))
        print(f"{number + 1}/{len(items)} {item['name']}", file=sys.stderr)

    lines = ["# Alpha matting against ground truth", "",
             f"{len(items)} composites ({SIZE}×{SIZE}: fur, soft-edged and feather foregrounds with known alpha over "
             f"{args.backgrounds} real photographs each), made by `python -m benchmarks.bench_matting "
             f"{' '.join(sys.argv[1:])}`. "
             "Every method refines the same U²-Net-P soft mask. Lower is better for SAD, MSE (×10³) and "
             "gradient error; seconds per image include the CNN (2 shared CPU cores, noisy). IoU at 0.5 against "
             "the true alpha at 0.5.", "",
             "| method | SAD | MSE ×10³ | gradient | IoU | s / image |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, rows in scores.items():
        means = np.mean(np.array(rows), axis=0)
        lines.append(f"| {label} | {means[0]:.2f} | {means[1]:.2f} | {means[2]:.3f} | {means[4]:.3f} | "
                     f"{means[3]:.2f} |")
    lines += ["", "Foreground colour (mean absolute error where the true alpha > 0.05, alpha-weighted; and in the "
                  "matte's own soft band, 0.05 < alpha < 0.95, where a fringe shows; lower is better):", "",
              "| foreground estimate | colour error | in the soft band |", "| --- | ---: | ---: |"]
    for label, values in colours.items():
        overall, band = np.mean(np.array(values), axis=0)
        lines.append(f"| {label} | {overall:.4f} | {band:.4f} |")

    if args.horses and (HORSES / "images").is_dir():
        names = sorted(os.listdir(HORSES / "images"))
        names = names[:: max(1, len(names) // args.horses)][: args.horses]
        raw_iou, matte_iou, matte_seconds = [], [], []
        for name in names:
            image = _read_rgb(HORSES / "images" / name)
            truth = cv2.imread(str(HORSES / "masks" / name), cv2.IMREAD_GRAYSCALE) > 127
            (segmentation,) = cnn.compute_batch([image])
            (alpha, _), seconds = timed(matting.matte, image, segmentation.mask)
            raw_iou.append(iou(segmentation.mask, truth))
            matte_iou.append(iou(alpha, truth))
            matte_seconds.append(seconds)
        lines += ["", f"weizmann_horses, {len(names)} photos, IoU at 0.5 against the hand-made masks:", "",
                  "| mask | mean IoU | median IoU | matting s / image |", "| --- | ---: | ---: | ---: |",
                  f"| CNN raw mask | {np.mean(raw_iou):.3f} | {np.median(raw_iou):.3f} | |",
                  f"| --refine matting ({matting.DEFAULT_SOLVER}) | {np.mean(matte_iou):.3f} | "
                  f"{np.median(matte_iou):.3f} | {np.mean(matte_seconds):.2f} |"]
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
