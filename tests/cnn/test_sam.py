"""Segment Anything through onnxruntime, on tiny graphs built here with the official exports' input and output
names and shapes: segment-anything's (an H×W×3 encoder with its own pre-processing, ``SamOnnxModel``'s decoder
with ``orig_im_size``) and SAM 2's (a 1×3×1024×1024 encoder with high-resolution features, a decoder taking them).

The tiny decoders answer with the prompt's box: logits +10 inside the box the corner points (labels 2, 3) give,
-10 outside, as a first candidate, and its inverse as a second; their ``iou_predictions`` say which to keep. So a
mask that lands on the box in the image proves the coordinates went through the frames both ways.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from maskcli.errors import WeightsUnavailable
from maskcli.methods import methods
from maskcli.prompts import Prompt

from conftest import run_cli

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402  (only once the skip above has found onnx)

FLOAT = TensorProto.FLOAT


def _const(name: str, values, dtype=np.float32):
    array = np.asarray(values, dtype)
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(
        name + "_v", helper.np_dtype_to_tensor_dtype(array.dtype), array.shape, array.ravel().tolist()))


def _save(graph, path: Path) -> str:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def _embedding(nodes: list, source: str, channels: int, side: int, out: str, tag: str) -> None:
    """``source`` (1×3×h×w) resized to side×side and mapped to ``channels`` by a 1×1 convolution."""
    nodes += [_const(f"{tag}_sizes", [1, 3, side, side], np.int64),
              helper.make_node("Resize", [source, "", "", f"{tag}_sizes"], [f"{tag}_small"], mode="linear"),
              _const(f"{tag}_w", np.full((channels, 3, 1, 1), 0.01)),
              helper.make_node("Conv", [f"{tag}_small", f"{tag}_w"], [out])]


def sam1_encoder(path: Path, frame: tuple[int, int] | None) -> str:
    shape = list(frame) + [3] if frame else ["height", "width", 3]
    nodes = [helper.make_node("Transpose", ["input_image"], ["chw"], perm=[2, 0, 1]),
             _const("axis0", [0], np.int64), helper.make_node("Unsqueeze", ["chw", "axis0"], ["nchw"])]
    _embedding(nodes, "nchw", 256, 64, "image_embeddings", "e")
    graph = helper.make_graph(nodes, "sam_encoder", [helper.make_tensor_value_info("input_image", FLOAT, shape)],
                              [helper.make_tensor_value_info("image_embeddings", FLOAT, [1, 256, 64, 64])])
    return _save(graph, path)


def _inside_box_logits() -> list:
    """Nodes from pixel grids xs, ys and box sides x0..y1 to logits of +10 inside the box, -10 outside
    (``box_logits``) and the reverse (``inverse_logits``)."""
    return [
        helper.make_node("GreaterOrEqual", ["xs", "x0"], ["gx"]), helper.make_node("LessOrEqual", ["xs", "x1"], ["lx"]),
        helper.make_node("GreaterOrEqual", ["ys", "y0"], ["gy"]), helper.make_node("LessOrEqual", ["ys", "y1"], ["ly"]),
        helper.make_node("And", ["gx", "lx"], ["inx"]), helper.make_node("And", ["gy", "ly"], ["iny"]),
        helper.make_node("And", ["inx", "iny"], ["inside"]),
        _const("pos", 10.0), _const("neg", -10.0),
        helper.make_node("Where", ["inside", "pos", "neg"], ["box_logits"]),
        helper.make_node("Neg", ["box_logits"], ["inverse_logits"]),
    ]


def _box_logits(nodes: list, height: str, width: str, ious: list[float], candidates: int) -> None:
    """masks (1×candidates×H×W): +10 inside the prompt's box, -10 outside (then alternately inverted);
    iou_predictions (1×candidates): ``ious``; low_res_masks: zeros."""
    nodes += [
        _const("minus2", [-2], np.int64), _const("big", [1 << 30], np.int64), _const("axis1", [1], np.int64),
        helper.make_node("Slice", ["point_coords", "minus2", "big", "axis1"], ["corners"]),  # 1×2×2
        _const("zero", 0.0), _const("one", 1.0), _const("half", 0.5), _const("frame", 1024.0),
        helper.make_node("Range", ["zero", width, "one"], ["xr"]),
        helper.make_node("Range", ["zero", height, "one"], ["yr"]),
        helper.make_node("Max", [height, width], ["long"]),
        helper.make_node("Div", ["frame", "long"], ["to_prompt"]),
        helper.make_node("Add", ["xr", "half"], ["xc"]), helper.make_node("Mul", ["xc", "to_prompt"], ["xs1"]),
        helper.make_node("Add", ["yr", "half"], ["yc"]), helper.make_node("Mul", ["yc", "to_prompt"], ["ys1"]),
        _const("xshape", [1, 1, 1, -1], np.int64), _const("yshape", [1, 1, -1, 1], np.int64),
        helper.make_node("Reshape", ["xs1", "xshape"], ["xs"]), helper.make_node("Reshape", ["ys1", "yshape"], ["ys"]),
        _const("cshape", [4], np.int64), helper.make_node("Reshape", ["corners", "cshape"], ["c4"]),
    ]
    for index, name in enumerate(("x0", "y0", "x1", "y1")):
        nodes += [_const(f"i{name}", index, np.int64), helper.make_node("Gather", ["c4", f"i{name}"], [name])]
    nodes += [
        *_inside_box_logits(),
        helper.make_node("Concat", [("box_logits" if k % 2 == 0 else "inverse_logits") for k in range(candidates)],
                         ["masks"], axis=1),
        _const("iou_predictions", [ious]),
        _const("low_res_masks", np.zeros((1, candidates, 256, 256))),
    ]


def _decoder_inputs(extra: list) -> list:
    return [*extra,
            helper.make_tensor_value_info("point_coords", FLOAT, [1, "points", 2]),
            helper.make_tensor_value_info("point_labels", FLOAT, [1, "points"]),
            helper.make_tensor_value_info("mask_input", FLOAT, [1, 1, 256, 256]),
            helper.make_tensor_value_info("has_mask_input", FLOAT, [1])]


def _decoder_outputs(candidates: int, size: list) -> list:
    return [helper.make_tensor_value_info("masks", FLOAT, [1, candidates, *size]),
            helper.make_tensor_value_info("iou_predictions", FLOAT, [1, candidates]),
            helper.make_tensor_value_info("low_res_masks", FLOAT, [1, candidates, 256, 256])]


def sam1_decoder(path: Path, ious: list[float]) -> str:
    nodes = [_const("i0", 0, np.int64), _const("i1", 1, np.int64),
             helper.make_node("Gather", ["orig_im_size", "i0"], ["height"]),
             helper.make_node("Gather", ["orig_im_size", "i1"], ["width"]),
             # the embedding must feed the graph, as the real one does
             helper.make_node("ReduceMean", ["image_embeddings"], ["unused"], keepdims=0)]
    _box_logits(nodes, "height", "width", ious, len(ious))
    inputs = _decoder_inputs([helper.make_tensor_value_info("image_embeddings", FLOAT, [1, 256, 64, 64])])
    inputs.append(helper.make_tensor_value_info("orig_im_size", FLOAT, [2]))
    graph = helper.make_graph(nodes, "sam_decoder", inputs, _decoder_outputs(len(ious), ["height", "width"]))
    return _save(graph, path)


def sam2_pair(folder: Path, ious: list[float]) -> tuple[str, str]:
    nodes: list = []
    for channels, side, name in ((32, 256, "high_res_feats_0"), (64, 128, "high_res_feats_1"),
                                 (256, 64, "image_embed")):
        _embedding(nodes, "image", channels, side, name, name)
    outputs = [helper.make_tensor_value_info(n, FLOAT, [1, c, s, s]) for c, s, n in
               ((32, 256, "high_res_feats_0"), (64, 128, "high_res_feats_1"), (256, 64, "image_embed"))]
    encoder = _save(helper.make_graph(nodes, "sam2_encoder", [helper.make_tensor_value_info(
        "image", FLOAT, [1, 3, 1024, 1024])], outputs), folder / "sam2.encoder.onnx")
    nodes = [_const("height", 1024.0), _const("width", 1024.0)]
    _box_logits(nodes, "height", "width", ious, len(ious))
    inputs = _decoder_inputs([helper.make_tensor_value_info("image_embed", FLOAT, [1, 256, 64, 64]),
                              helper.make_tensor_value_info("high_res_feats_0", FLOAT, [1, 32, 256, 256]),
                              helper.make_tensor_value_info("high_res_feats_1", FLOAT, [1, 64, 128, 128])])
    decoder = _save(helper.make_graph(nodes, "sam2_decoder", inputs, _decoder_outputs(len(ious), [1024, 1024])),
                    folder / "sam2.decoder.onnx")
    return encoder, decoder


def _box_iou(mask: np.ndarray, box: tuple[float, float, float, float]) -> float:
    truth = np.zeros(mask.shape, bool)
    truth[round(box[1]):round(box[3]), round(box[0]):round(box[2])] = True
    found = mask >= 0.5
    return np.count_nonzero(found & truth) / np.count_nonzero(found | truth)


IMAGE = np.random.default_rng(0).random((150, 200, 3)).astype(np.float32)
BOX = (40.0, 30.0, 120.0, 110.0)


@pytest.mark.parametrize("frame", [(684, 1024), None], ids=["fixed-frame", "dynamic-frame"])
def test_sam_exports_put_the_mask_on_the_box(tmp_path, frame):
    weights = f"{sam1_encoder(tmp_path / 'e.onnx', frame)},{sam1_decoder(tmp_path / 'd.onnx', [0.9, 0.3])}"
    method = methods.create("sam", {"weights": weights})
    first, second = method.compute_prompts(IMAGE, [Prompt(box=BOX, label="a"),
                                                   Prompt(box=(150, 10, 190, 60), label="b")])
    assert first.mask.shape == IMAGE.shape[:2] and first.mask.dtype == np.float32
    assert _box_iou(first.mask, BOX) > 0.95
    assert _box_iou(second.mask, (150, 10, 190, 60)) > 0.9
    assert first.facts["score"] == pytest.approx(0.9) and first.facts["candidates"] == 2


def test_the_candidate_with_the_best_predicted_iou_is_kept(tmp_path):
    weights = f"{sam1_encoder(tmp_path / 'e.onnx', None)},{sam1_decoder(tmp_path / 'd.onnx', [0.2, 0.8])}"
    (segmentation,) = methods.create("sam", {"weights": weights}).compute_prompts(IMAGE, [Prompt(box=BOX)])
    assert _box_iou(1 - segmentation.mask, BOX) > 0.95  # the inverse, predicted better
    assert segmentation.facts["score"] == pytest.approx(0.8)


def test_sam2_exports_take_the_high_resolution_features(tmp_path):
    encoder, decoder = sam2_pair(tmp_path, [0.1, 0.7, 0.3])
    method = methods.create("sam", {"weights": f"{encoder},{decoder}"})
    (segmentation,) = method.compute_prompts(IMAGE, [Prompt(box=BOX)])
    assert _box_iou(1 - segmentation.mask, BOX) > 0.9  # candidate 2 (the inverse) has the best IoU
    assert segmentation.facts["candidates"] == 3


def test_points_alone_are_a_prompt_and_pickling_drops_the_sessions(tmp_path):
    import pickle

    weights = f"{sam1_encoder(tmp_path / 'e.onnx', None)},{sam1_decoder(tmp_path / 'd.onnx', [0.9, 0.3])}"
    method = methods.create("sam", {"weights": weights})
    (segmentation,) = method.compute_prompts(IMAGE, [Prompt(points=((50, 60, 1),))])
    assert segmentation.mask.shape == IMAGE.shape[:2]
    clone = pickle.loads(pickle.dumps(method))
    assert clone == method and clone._model is None


def test_a_graph_that_is_not_a_sam_decoder_is_refused(tmp_path):
    encoder = sam1_encoder(tmp_path / "e.onnx", None)
    method = methods.create("sam", {"weights": f"{encoder},{encoder}"})
    with pytest.raises(WeightsUnavailable, match="not a Segment Anything decoder"):
        method.compute_prompts(IMAGE, [Prompt(box=BOX)])


def test_without_weights_the_model_names_its_download(tmp_path):
    done = run_cli("segment", "samples/coins.png", "-o", str(tmp_path / "out"), "-m", "sam", "--box", "1,1,20,20")
    assert done.returncode == 3, done.stderr.decode()
    message = done.stderr.decode()
    assert "sam_vit_b_01ec64.encoder.onnx" in message and "downloads are off" in message


def test_the_command_line_writes_one_object_per_box(tmp_path):
    image = (IMAGE * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "noise.png"), image)
    weights = f"{sam1_encoder(tmp_path / 'e.onnx', None)},{sam1_decoder(tmp_path / 'd.onnx', [0.9, 0.3])}"
    done = run_cli("segment", str(tmp_path / "noise.png"), "-o", str(tmp_path / "out"), "-m", "sam", "--weights",
                   weights, "--box", "40,30,120,110", "--box", "150,10,190,60", "--label", "thing", "--objects")
    assert done.returncode == 0, done.stderr.decode()
    labels = cv2.imread(str(tmp_path / "out" / "noise.png"), cv2.IMREAD_UNCHANGED)
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2]
    assert _box_iou((labels == 1).astype(np.float32), BOX) > 0.95
    assert (tmp_path / "out" / "noise_2_thing.png").is_file()


def test_multimask_keeps_every_candidate_as_an_object(tmp_path):
    image = (IMAGE * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "noise.png"), image)
    weights = f"{sam1_encoder(tmp_path / 'e.onnx', None)},{sam1_decoder(tmp_path / 'd.onnx', [0.4, 0.6])}"
    method = methods.create("sam", {"weights": weights, "multimask": True})
    found = method.compute_prompts(IMAGE, [Prompt(box=BOX), Prompt(box=(150, 10, 190, 60))])
    assert [(s.facts["prompt"], s.facts["score"]) for s in found] == [(1, 0.6), (1, 0.4), (2, 0.6), (2, 0.4)]
    done = run_cli("segment", str(tmp_path / "noise.png"), "-o", str(tmp_path / "out"), "-m", "sam", "--weights",
                   weights, "-p", "multimask=1", "--box", "40,30,120,110", "--box", "150,10,190,60", "--json")
    assert done.returncode == 0, done.stderr.decode()
    objects = __import__("json").loads(done.stdout.decode())["objects"]
    assert [(o["index"], o["box"][0], o["score"]) for o in objects] == [(1, 40, 0.6), (2, 40, 0.4), (3, 150, 0.6),
                                                                         (4, 150, 0.4)]


# --- EfficientSAM: image and prompts in its own layout ---------------------------------------------------------------

def _efficient_logits(nodes: list, height: str, width: str, ious: list[float]) -> None:
    """output_masks (1×Q×3×H×W): for each query, +10 inside the box its points labelled 2 and 3 give (image
    pixels), -10 outside, then the inverse, then the box again; iou_predictions (1×Q×3): ``ious`` for every query."""
    nodes += [
        _const("zero", 0.0), _const("one", 1.0), _const("half", 0.5),
        helper.make_node("Range", ["zero", width, "one"], ["xr"]),
        helper.make_node("Range", ["zero", height, "one"], ["yr"]),
        helper.make_node("Add", ["xr", "half"], ["xc"]), helper.make_node("Add", ["yr", "half"], ["yc"]),
        _const("xshape", [1, 1, 1, 1, -1], np.int64), _const("yshape", [1, 1, 1, -1, 1], np.int64),
        helper.make_node("Reshape", ["xc", "xshape"], ["xs"]), helper.make_node("Reshape", ["yc", "yshape"], ["ys"]),
        _const("tail", [2, 3, 4], np.int64), _const("points_axis", [2], np.int64)]
    for axis, letter in ((0, "x"), (1, "y")):
        nodes += [_const(f"axis_{letter}", axis, np.int64),
                  helper.make_node("Gather", ["batched_point_coords", f"axis_{letter}"], [f"all_{letter}"], axis=3)]
    for label, name in ((2.0, "0"), (3.0, "1")):  # a box's corners, wherever padding put them
        nodes += [_const(f"label{name}", label),
                  helper.make_node("Equal", ["batched_point_labels", f"label{name}"], [f"is{name}"]),
                  helper.make_node("Cast", [f"is{name}"], [f"weight{name}"], to=FLOAT)]
        for letter in "xy":
            nodes += [helper.make_node("Mul", [f"all_{letter}", f"weight{name}"], [f"{letter}{name}w"]),
                      helper.make_node("ReduceSum", [f"{letter}{name}w", "points_axis"], [f"{letter}{name}q"],
                                       keepdims=0),
                      helper.make_node("Unsqueeze", [f"{letter}{name}q", "tail"], [f"{letter}{name}"])]
    nodes += [
        *_inside_box_logits(),
        helper.make_node("Concat", ["box_logits", "inverse_logits", "box_logits"], ["output_masks"], axis=2),
        helper.make_node("Shape", ["batched_point_labels"], ["label_shape"]),
        _const("s0", [0], np.int64), _const("s2", [2], np.int64),
        helper.make_node("Slice", ["label_shape", "s0", "s2"], ["one_by_q"]),
        _const("three", [3], np.int64), helper.make_node("Concat", ["one_by_q", "three"], ["iou_shape"], axis=0),
        _const("iou_row", [[ious]]), helper.make_node("Expand", ["iou_row", "iou_shape"], ["iou_predictions"]),
        _const("low_res", np.zeros((1, 1, 3, 256, 256)))]


def _efficient_io(extra: list) -> tuple[list, list]:
    inputs = [*extra, helper.make_tensor_value_info("batched_point_coords", FLOAT, [1, "queries", "points", 2]),
              helper.make_tensor_value_info("batched_point_labels", FLOAT, [1, "queries", "points"])]
    outputs = [helper.make_tensor_value_info("output_masks", FLOAT, [1, "queries", 3, "height", "width"]),
               helper.make_tensor_value_info("iou_predictions", FLOAT, [1, "queries", 3]),
               helper.make_tensor_value_info("low_res", FLOAT, [1, 1, 3, 256, 256])]
    return inputs, outputs


IMAGES = helper.make_tensor_value_info("batched_images", FLOAT, [1, 3, "height", "width"])


def efficient_whole(path: Path, ious: list[float]) -> str:
    """``efficient_sam_vitt.onnx``: the image (its own size) and the prompts in, masks at the image's size out."""
    nodes = [helper.make_node("Shape", ["batched_images"], ["image_shape"]),
             _const("ih", 2, np.int64), _const("iw", 3, np.int64),
             helper.make_node("Gather", ["image_shape", "ih"], ["h64"]),
             helper.make_node("Gather", ["image_shape", "iw"], ["w64"]),
             helper.make_node("Cast", ["h64"], ["height"], to=FLOAT),
             helper.make_node("Cast", ["w64"], ["width"], to=FLOAT)]
    _embedding(nodes, "batched_images", 256, 64, "embedding", "e")
    _efficient_logits(nodes, "height", "width", ious)
    inputs, outputs = _efficient_io([IMAGES])
    return _save(helper.make_graph(nodes, "efficient_sam", inputs, outputs), path)


def efficient_pair(folder: Path, ious: list[float]) -> tuple[str, str]:
    nodes: list = []
    _embedding(nodes, "batched_images", 256, 64, "image_embeddings", "e")
    encoder = _save(helper.make_graph(nodes, "efficient_sam_encoder", [IMAGES], [helper.make_tensor_value_info(
        "image_embeddings", FLOAT, [1, 256, 64, 64])]), folder / "efficient.encoder.onnx")
    nodes = [_const("i0", 0, np.int64), _const("i1", 1, np.int64),
             helper.make_node("Gather", ["orig_im_size", "i0"], ["h64"]),
             helper.make_node("Gather", ["orig_im_size", "i1"], ["w64"]),
             helper.make_node("Cast", ["h64"], ["height"], to=FLOAT),
             helper.make_node("Cast", ["w64"], ["width"], to=FLOAT),
             helper.make_node("ReduceMean", ["image_embeddings"], ["unused"], keepdims=0)]
    _efficient_logits(nodes, "height", "width", ious)
    inputs, outputs = _efficient_io([helper.make_tensor_value_info("image_embeddings", FLOAT, [1, 256, 64, 64])])
    inputs.append(helper.make_tensor_value_info("orig_im_size", TensorProto.INT64, [2]))
    decoder = _save(helper.make_graph(nodes, "efficient_sam_decoder", inputs, outputs),
                    folder / "efficient.decoder.onnx")
    return encoder, decoder


@pytest.mark.parametrize("layout", ["one-graph", "encoder-decoder"])
def test_efficient_sam_answers_every_prompt_of_an_image_in_one_run(tmp_path, layout):
    weights = (efficient_whole(tmp_path / "whole.onnx", [0.3, 0.2, 0.9]) if layout == "one-graph"
               else ",".join(efficient_pair(tmp_path, [0.9, 0.2, 0.3])))
    method = methods.create("sam", {"model": "efficient-sam", "weights": weights})
    first, second, third = method.compute_prompts(IMAGE, [
        Prompt(box=BOX), Prompt(box=(150, 10, 190, 60), points=((160, 20, 1), (170, 30, 0))),
        Prompt(box=(5, 100, 60, 140))])
    for segmentation, box in ((first, BOX), (second, (150, 10, 190, 60)), (third, (5, 100, 60, 140))):
        assert segmentation.mask.shape == IMAGE.shape[:2]
        assert _box_iou(segmentation.mask, box) > 0.95  # coordinates in image pixels, masks at the image's size
        assert segmentation.facts["score"] == pytest.approx(0.9) and segmentation.facts["candidates"] == 3


def test_efficient_sam_alone_in_one_file_only_for_its_one_graph_export(tmp_path):
    encoder, _ = efficient_pair(tmp_path, [0.9, 0.2, 0.3])
    with pytest.raises(WeightsUnavailable, match="a whole EfficientSAM graph takes"):
        methods.create("sam", {"model": "efficient-sam", "weights": encoder}).compute_prompts(IMAGE, [Prompt(box=BOX)])
    with pytest.raises(Exception, match="two files"):
        methods.create("sam", {"model": "mobile-sam", "weights": encoder})


def test_mobile_sam_export_single_mask_decoder(tmp_path):
    """Acly/MobileSAM: the H×W×3 encoder at 1024 on the long side, a decoder answering one candidate."""
    weights = f"{sam1_encoder(tmp_path / 'e.onnx', None)},{sam1_decoder(tmp_path / 'd.onnx', [0.8])}"
    method = methods.create("sam", {"model": "mobile-sam", "weights": weights})
    (segmentation,) = method.compute_prompts(IMAGE, [Prompt(box=BOX)])
    assert _box_iou(segmentation.mask, BOX) > 0.95 and segmentation.facts["candidates"] == 1


def test_sam2_decoder_answering_low_resolution_masks(tmp_path):
    """samexporter's SAM 2 decoder answers 256×256 logits of the 1024 frame (no orig_im_size)."""
    encoder, _ = sam2_pair(tmp_path, [0.7])
    nodes = [_const("height", 256.0), _const("width", 256.0)]  # a 256 grid over the 1024 frame
    _box_logits(nodes, "height", "width", [0.7], 1)
    inputs = _decoder_inputs([helper.make_tensor_value_info("image_embed", FLOAT, [1, 256, 64, 64]),
                              helper.make_tensor_value_info("high_res_feats_0", FLOAT, [1, 32, 256, 256]),
                              helper.make_tensor_value_info("high_res_feats_1", FLOAT, [1, 64, 128, 128])])
    decoder = _save(helper.make_graph(nodes, "sam2_decoder", inputs, _decoder_outputs(1, [256, 256])),
                    tmp_path / "low.decoder.onnx")
    (segmentation,) = methods.create("sam", {"model": "sam2-tiny", "weights": f"{encoder},{decoder}"}
                                     ).compute_prompts(IMAGE, [Prompt(box=BOX)])
    assert _box_iou(segmentation.mask, BOX) > 0.9


def test_every_model_names_its_files_checksums_and_licence():
    from maskcli.cnn import sam as zoo

    assert {"sam-vit-b", "sam-vit-l", "mobile-sam", "efficient-sam", "sam2-tiny"} <= set(zoo.names())
    for name in zoo.names():
        spec = zoo.get(name)
        for part in spec.parts:
            assert part.url.startswith("https://") and part.url.endswith(part.filename)
            assert part.filename.endswith(".onnx")
            assert part.checksum() != "unknown", part.name
        assert spec.licence and spec.takes and spec.size_mb > 10
    assert zoo.get("efficient-sam").encoder.checksum() == (
        "sha256:7a73ee65aa2c37237c89b4b18e73082f757ffb173899609c5d97a2bbd4ebb02d")


def test_a_download_of_the_wrong_size_is_discarded(tmp_path, monkeypatch):
    import dataclasses
    import io

    from maskcli.cnn import sam as zoo
    from maskcli.cnn import weights

    monkeypatch.setenv("MASKCLI_OFFLINE", "0")  # the fetch is the test's own
    spec = dataclasses.replace(zoo.get("sam2-tiny").decoder, sha256=None)  # a file known only by its size
    with pytest.raises(WeightsUnavailable, match="not the published 20640886"):
        weights.download(spec, fetch=lambda url: (io.BytesIO(b"abc"), 3), destination=tmp_path / "d.onnx")
    assert not list(tmp_path.iterdir())


def test_models_lists_the_segment_anything_models_beside_the_cnns(tmp_path):
    listing = run_cli("models", env={"MASKCLI_HOME": str(tmp_path), "COLUMNS": "200"})
    assert listing.returncode == 0, listing.stderr.decode()
    text = listing.stdout.decode()
    assert "u2netp" in text and "Segment Anything models" in text
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") > 4}
    assert "boxes, positive" in rows["efficient-sam"] and "~41 MB" in rows["efficient-sam"]
    assert "~155 MB" in rows["sam2-tiny"] and "Apache-2.0" in rows["sam2-tiny"] and "no" in rows["mobile-sam"]
    assert "sam-vit-b (default)" in rows
