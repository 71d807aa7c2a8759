"""Models with no torch architecture: ONNX graphs (ISNet, BiRefNet specs) run by onnxruntime, tested end to end
with tiny networks exported inside the test (their real weights cannot be downloaded here)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import SAMPLES, run_cli

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime", reason="onnxruntime (a dependency) is not installed")

from maskcli.cnn import specs  # noqa: E402
from maskcli.cnn.infer import Segmenter  # noqa: E402
from maskcli.cnn.loading import build_model  # noqa: E402
from maskcli.errors import WeightsUnavailable  # noqa: E402


class RedDetector(torch.nn.Module):
    """A fixed 1×1 convolution: large where the (normalised) red channel exceeds green, as logits or a sigmoid."""

    def __init__(self, logits: bool) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 1)
        self.logits = logits
        with torch.no_grad():
            self.conv.weight[:] = torch.tensor([8.0, -8.0, 0.0]).view(1, 3, 1, 1)
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return out if self.logits else torch.sigmoid(out)


def _export(tmp_path: Path, logits: bool) -> Path:
    path = tmp_path / ("logits.onnx" if logits else "sigmoid.onnx")
    with pytest.warns(DeprecationWarning):  # the TorchScript exporter: no onnxscript needed
        torch.onnx.export(RedDetector(logits).eval(), torch.zeros(1, 3, 32, 32), str(path), input_names=["input"],
                          output_names=["mask"], dynamic_axes={"input": {2: "h", 3: "w"}}, dynamo=False)
    return path


def _red_square() -> tuple[np.ndarray, np.ndarray]:
    image = np.zeros((60, 80, 3), np.float32)
    image[..., 1] = 0.6
    image[15:45, 20:60] = (0.9, 0.1, 0.1)
    truth = np.zeros((60, 80), bool)
    truth[15:45, 20:60] = True
    return image, truth


@pytest.mark.parametrize("name", ["isnet-general-use", "birefnet-general", "birefnet-general-lite"])
def test_specs_record_licence_checksum_size_and_normalisation(name: str) -> None:
    spec = specs.get(name)
    assert spec.builder == "onnx-graph" and spec.kind == "salient" and spec.input_size == 1024
    assert spec.licence.split(" ")[0] in {"Apache-2.0", "MIT"} and len(spec.md5 or "") == 32
    assert spec.checksum().startswith("md5:") and spec.url.endswith(spec.filename)
    assert not spec.measured and "not measured" in spec.accuracy
    assert spec.logits == name.startswith("birefnet")


@pytest.mark.parametrize("logits", [False, True])
def test_an_exported_graph_segments_through_the_whole_path(tmp_path: Path, logits: bool) -> None:
    spec = dataclasses.replace(specs.get("birefnet-general" if logits else "isnet-general-use"), input_size=64)
    segmenter = Segmenter(spec, build_model(spec, _export(tmp_path, logits)))
    image, truth = _red_square()
    (mask,) = segmenter.predict([image])
    assert mask.shape == truth.shape and mask.dtype == np.float32
    iou = ((mask >= 0.5) & truth).sum() / ((mask >= 0.5) | truth).sum()
    assert iou > 0.9


def test_a_file_that_is_not_onnx_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(WeightsUnavailable, match="onnxruntime cannot load"):
        build_model(specs.get("isnet-general-use"), bad)


@pytest.mark.slow
def test_cli_runs_an_onnx_model_from_a_local_file(tmp_path: Path) -> None:
    image, truth = _red_square()
    source = tmp_path / "red.png"
    cv2.imwrite(str(source), np.round(image[:, :, ::-1] * 255).astype(np.uint8))
    done = run_cli("segment", str(source), "-o", str(tmp_path / "out"), "--model", "birefnet-general-lite",
                   "--weights", str(_export(tmp_path, logits=True)), "--json")
    assert done.returncode == 0, done.stderr.decode()
    assert b'"model": "birefnet-general-lite"' in done.stdout
    mask = cv2.imread(str(tmp_path / "out" / "red.png"), cv2.IMREAD_GRAYSCALE) >= 128
    assert ((mask & truth).sum() / (mask | truth).sum()) > 0.9
    missing = run_cli("segment", str(SAMPLES / "coins.png"), "-o", str(tmp_path / "x"), "--model",
                      "isnet-general-use")
    assert missing.returncode == 3 and "isnet-general-use.onnx" in missing.stderr.decode()
