"""Which file goes with which (maskcli.io.pairing): the one rule behind eval, train, preview, export and the mask
sources, on real files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

from maskcli.errors import InputError
from maskcli.evaluate import evaluate_folders
from maskcli.io.files import write_atomic
from maskcli.io.masks import encode_mask
from maskcli.io.pairing import KeyIndex, index_files, name_key, pair_files, pair_key
from maskcli.io.sources import Destinations, Source, walk_folder
from maskcli.jobs.export import ImageIndex
from maskcli.masksources import CocoMasks, MaskFolder, find_mask
from maskcli.masksources.truths import pair_truths

from conftest import SAMPLES


def mask_file(path: Path, rows: int = 4, cols: int = 6, top: int = 2) -> Path:
    """A real mask PNG: the first ``top`` rows foreground."""
    mask = np.zeros((rows, cols), np.float32)
    mask[:top] = 1
    write_atomic(path, encode_mask(mask))
    return path


def photo(path: Path, sample: str = "coins.png") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLES / sample, path)
    return path


def test_a_stem_with_dots_loses_only_its_last_suffix(tmp_path):
    assert pair_key("scan.2024.01.jpg") == "scan.2024.01"
    for name in ("scan.2024.01.png", "scan.2024.png"):
        mask_file(tmp_path / "pred" / name)
    mask_file(tmp_path / "gt" / "scan.2024.01.tif")
    pairing = pair_files(tmp_path / "pred", tmp_path / "gt")
    assert [(p.key, Path(p.source).name, Path(p.truth).name) for p in pairing.pairs] == [
        ("scan.2024.01", "scan.2024.01.png", "scan.2024.01.tif")]
    assert pairing.unpaired_sources == ["scan.2024.png"] and pairing.unpaired_truths == []


def test_nested_folders_pair_within_their_own_folder(tmp_path):
    for side in ("pred", "gt"):
        for folder in ("x", "y/deeper"):
            mask_file(tmp_path / side / folder / "a.png", top=1 if folder == "x" else 3)
    pairing = pair_files(tmp_path / "pred", tmp_path / "gt")
    assert [p.key for p in pairing.pairs] == ["x/a", "y/deeper/a"]
    for pair in pairing.pairs:
        assert Path(pair.source).relative_to(tmp_path / "pred").parent == \
            Path(pair.truth).relative_to(tmp_path / "gt").parent
    # Same-named masks in different folders never cross: each scores perfectly against its own truth.
    assert [image.scores["iou"] for image in evaluate_folders(tmp_path / "pred", tmp_path / "gt").images] == [1.0, 1.0]


def test_duplicate_keys_pair_the_first_file_and_report_the_others(tmp_path):
    first = mask_file(tmp_path / "pred" / "a.jpg.png")  # key "a.jpg": not a duplicate of a.png
    mask_file(tmp_path / "pred" / "a.bmp")
    mask_file(tmp_path / "pred" / "a.png")
    mask_file(tmp_path / "gt" / "a.png")
    mask_file(tmp_path / "gt" / "a.tif")
    pairing = pair_files(tmp_path / "pred", tmp_path / "gt")
    assert [(p.key, Path(p.source).name, Path(p.truth).name) for p in pairing.pairs] == [("a", "a.bmp", "a.png")]
    assert pairing.unpaired_sources == [first.name]
    assert sorted((Path(path).name, why.split(" as ")[0]) for path, why in pairing.problems) == [
        ("a.png", "same name"), ("a.tif", "same name")]
    assert all(why.endswith("; only that one is used") for _, why in pairing.problems)


def test_two_single_files_pair_whatever_their_names(tmp_path):
    pairing = pair_files(mask_file(tmp_path / "mine.png"), mask_file(tmp_path / "theirs.png"))
    assert [(p.key, Path(p.truth).name) for p in pairing.pairs] == [("mine", "theirs.png")]


def test_a_stem_that_only_one_entry_has_finds_it_wherever_it_lies():
    index: KeyIndex[str] = KeyIndex()
    for key in ("photos/a", "x/c", "y/c"):
        assert index.add(key, key)
    assert not index.add("photos/a", "again") and index["photos/a"] == "photos/a"
    assert index.find("photos/a") == "photos/a"  # by key first
    assert index.find("a") == index.find("elsewhere/a") == "photos/a"  # else by the stem only it has
    assert index.find("c") is None and index.find("x/c") == "x/c"  # two entries share the stem c


def _coco(path: Path, names: list[str], size: tuple[int, int]) -> Path:
    height, width = size
    images = [{"id": i, "file_name": name, "width": width, "height": height} for i, name in enumerate(names, 1)]
    annotations = [{"id": i, "image_id": i, "category_id": 1, "segmentation": [[0, 0, 20, 0, 20, 10, 0, 10]]}
                   for i in range(1, len(names) + 1)]
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "coin"}]}))
    return path


def test_truths_in_a_coco_file_pair_by_key_else_by_a_unique_stem(tmp_path):
    # coins.png is 303×384; the COCO file names its images in another layout, one with Windows separators.
    for name in ("a.png", "sub/b.png", "c.png", "d.png"):
        photo(tmp_path / "photos" / name)
    coco = _coco(tmp_path / "truth.json", ["elsewhere\\a.jpg", "sub/b.jpg", "x/c.jpg", "y/c.jpg"], (303, 384))
    pairing, read_truth = pair_truths(tmp_path / "photos", coco)
    assert [(p.key, p.truth.split(":")[-1]) for p in pairing.pairs] == [("a", "elsewhere\\a.jpg"),
                                                                         ("sub/b", "sub/b.jpg")]
    assert pairing.unpaired_sources == ["c", "d"]  # c: two entries have that stem, so neither is guessed
    assert pairing.unpaired_truths == ["x/c", "y/c"]
    truth = read_truth(pairing.pairs[0])
    assert truth.shape == (303, 384) and 150 < truth.sum() < 250  # the 20×10 polygon
    assert name_key("elsewhere\\a.jpg") == "elsewhere/a"
    assert CocoMasks(coco).mask_entry("sub/b.png").file_name == "sub/b.jpg"
    with pytest.raises(InputError, match="no image named c.png"):
        CocoMasks(coco).mask_entry("c.png")


def test_export_indexes_images_as_eval_pairs_them(tmp_path):
    for name in ("sub/a.png", "sub/a.jpg", "b.png"):
        photo(tmp_path / "photos" / name)
    index = ImageIndex.of(tmp_path / "photos")
    assert index.find(PurePosixPath("sub/a.png")).relpath.as_posix() == "sub/a.jpg"  # the first in name order
    assert {key: s.path for key, s in index.images.items()} == \
        {key: s.path for key, s in index_files(tmp_path / "photos").items()}
    with pytest.raises(InputError, match=r"no image named c\.\*"):
        index.find(PurePosixPath("c.png"))


@pytest.mark.parametrize("template", ["{stem}.png", "{stem}_mask.png", "{relpath}.mask.png", "{name}.png"])
def test_a_mask_folder_finds_the_file_a_run_named_for_the_same_input(tmp_path, template):
    photos = tmp_path / "photos"
    for name in ("sub/scan.01.jpg", "top.png"):
        photo(photos / name)
    destinations = Destinations(tmp_path / "masks", template)
    for source in walk_folder(photos, recursive=True):
        mask_file(tmp_path / "masks" / destinations.render(source, 0))
    for source in walk_folder(photos, recursive=True):
        found = MaskFolder(tmp_path / "masks", template).pair(source)
        assert found == tmp_path / "masks" / destinations.render(source, 0)


def test_a_missing_mask_falls_back_to_the_same_stem_then_says_where_it_looked(tmp_path):
    mask_file(tmp_path / "masks" / "sub" / "a.tif")
    source = Source(str(tmp_path / "a.jpg"), PurePosixPath("sub/a.jpg"))
    assert find_mask(tmp_path / "masks", source) == tmp_path / "masks" / "sub" / "a.tif"
    with pytest.raises(InputError, match=r"looked for .*masks/sub/b\.png"):
        find_mask(tmp_path / "masks", Source(str(tmp_path / "b.jpg"), PurePosixPath("sub/b.jpg")))
