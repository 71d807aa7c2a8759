"""Inputs to items: folders, recursion, globs, lists, name templates, and the destinations maskcli refuses."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from maskcli.errors import OptionError
from maskcli.io.sources import Destinations, Source, expand_inputs, listed_files, read_path_list


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    for name in ("b.jpg", "a.png", "notes.txt", ".hidden.png", "sub/c.tif", "sub/deeper/d.webp"):
        (root / name).write_bytes(b"x")
    (root / "folder.png").mkdir()  # a folder named like an image
    return root


def names(sources):
    return [s.relpath.as_posix() for s in sources]


def test_folder_lists_images_in_name_order(tree):
    assert names(expand_inputs([str(tree)])) == ["a.png", "b.jpg"]


def test_recursive_keeps_relative_paths(tree):
    assert names(expand_inputs([str(tree)], recursive=True)) == ["a.png", "b.jpg", "sub/c.tif", "sub/deeper/d.webp"]


def test_recursion_does_not_follow_folder_symlinks(tree):
    (tree / "sub" / "loop").symlink_to(tree, target_is_directory=True)
    assert names(expand_inputs([str(tree)], recursive=True)) == ["a.png", "b.jpg", "sub/c.tif", "sub/deeper/d.webp"]


def test_globs_and_misses(tree):
    sources = list(expand_inputs([str(tree / "*.png"), str(tree / "*.gif"), str(tree / "missing.jpg")]))
    assert names(sources) == ["a.png", "*.gif", "missing.jpg"]
    assert [s.error for s in sources] == [None, "no files match this pattern", "no such file or folder"]


def test_explicit_files_are_taken_whatever_their_suffix(tree):
    assert names(expand_inputs([str(tree / "notes.txt")])) == ["notes.txt"]


def test_path_lists_newline_and_nul():
    assert list(read_path_list(b"a.png\r\n  b c.jpg \n\n")) == ["a.png", "b c.jpg"]
    assert list(read_path_list(b"a\nb.png\0 c.png\0", null=True)) == ["a\nb.png", " c.png"]


def plan(template, sources, output, existing="error"):
    return list(Destinations(output, template, existing).plan(sources))


def test_outputs_mirror_the_tree(tree, tmp_path):
    items = plan("{stem}.png", expand_inputs([str(tree)], recursive=True), tmp_path / "out")
    assert [i.destination.relative_to(tmp_path / "out").as_posix() for i in items] == [
        "a.png", "b.png", "sub/c.png", "sub/deeper/d.png"]
    assert all(i.error is None for i in items)


def test_template_fields(tmp_path):
    source = Source("x/photo.jpeg", PurePosixPath("sub/photo.jpeg"))
    d = Destinations(tmp_path, "{index:03d}-{name}-{ext}.png")
    assert d.render(source, 7).as_posix() == "sub/007-photo.jpeg-jpeg.png"
    assert Destinations(tmp_path, "flat/{relpath}_mask.png").render(source, 0).as_posix() == "flat/sub/photo_mask.png"
    with pytest.raises(OptionError, match="unknown field {size}"):
        Destinations(tmp_path, "{size}.png").render(source, 0)


@pytest.mark.parametrize("template", ["../{stem}.png", "/tmp/{stem}.png", "a/../../{stem}.png"])
def test_templates_cannot_leave_the_output_folder(tmp_path, template):
    (item,) = plan(template, [Source("in/a.jpg", PurePosixPath("a.jpg"))], tmp_path / "out")
    assert item.destination is None and "would leave the output folder" in item.error


def test_symlinked_subfolder_cannot_lead_outside(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    (item,) = plan("{stem}.png", [Source("in/sub/a.jpg", PurePosixPath("sub/a.jpg"))], out)
    assert "outside the output folder" in item.error


def test_symlinked_destination_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").symlink_to(tmp_path / "target.png")
    (item,) = plan("{stem}.png", [Source("in/a.jpg", PurePosixPath("a.jpg"))], out, existing="overwrite")
    assert "symlink" in item.error


def test_output_equal_to_input_is_refused_even_with_overwrite(tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(b"x")
    (item,) = plan("{stem}.png", expand_inputs([str(image)]), tmp_path, existing="overwrite")
    assert "is the input itself" in item.error


def test_existing_outputs_policy(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").write_bytes(b"old")
    source = [Source("in/a.jpg", PurePosixPath("a.jpg"))]
    (item,) = plan("{stem}.png", source, tmp_path / "out")
    assert "exists (use `existing='overwrite'` to replace or `existing='skip'`)" in item.error
    (item,) = plan("{stem}.png", source, tmp_path / "out", existing="skip")
    assert item.skip and item.error is None
    (item,) = plan("{stem}.png", source, tmp_path / "out", existing="overwrite")
    assert not item.skip and item.error is None


def test_two_inputs_with_one_output_name(tmp_path):
    sources = [Source("in/a.jpg", PurePosixPath("a.jpg")), Source("in/a.png", PurePosixPath("a.png"))]
    first, second = plan("{stem}.png", sources, tmp_path / "out")
    assert first.error is None
    assert "also the output of in/a.jpg" in second.error


def test_listing_is_lazy(tmp_path):
    # A generator of a million names costs nothing until pulled.
    def many():
        for i in range(1_000_000):
            yield f"{i}.png"

    planned = Destinations(tmp_path, "{stem}.png").plan(expand_inputs(many()))
    first = next(planned)
    assert first.source.path == "0.png"
    assert os.listdir(tmp_path) == []


def test_list_entries_are_files_exactly(tmp_path):
    (tmp_path / "sub.png").mkdir()
    (tmp_path / "a*.png").write_bytes(b"x")
    sources = list(listed_files([str(tmp_path / "sub.png"), str(tmp_path / "a*.png"), str(tmp_path / "gone.png")]))
    assert [s.relpath.name for s in sources] == ["sub.png", "a*.png", "gone.png"]
    assert [s.error for s in sources] == [None, None, "no such file"]


def test_an_empty_folder_is_an_error_not_silence(tmp_path):
    (tmp_path / "empty").mkdir()
    (source,) = expand_inputs([str(tmp_path / "empty")])
    assert source.error == "no images in this folder (sub-folders are searched with `recursive=True`)"
