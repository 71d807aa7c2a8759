"""--shard K/N: N runs cover a batch exactly once, with disjoint shares, and write what one run writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from maskcli.errors import OptionError
from maskcli.io.shards import Shard

from conftest import SAMPLES, run_cli


def _photos(root: Path, copies: int = 4) -> Path:
    """The samples, each copied ``copies`` times into sub-folders: enough files for every share to get some."""
    folder = root / "photos"
    for copy in range(copies):
        for sample in sorted(SAMPLES.glob("*.png")):
            target = folder / f"set{copy}" / sample.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sample, target)
    return folder


def _written(done) -> list[str]:
    return sorted(record["output"] for record in map(json.loads, done.stdout.decode().splitlines())
                  if record["status"] == "written")


@pytest.mark.parametrize("count", [2, 3])
def test_shards_cover_a_batch_once_and_write_what_one_run_writes(tmp_path, count):
    photos = _photos(tmp_path)
    whole = run_cli("segment", str(photos), "-r", "-o", str(tmp_path / "whole"), "-m", "otsu", "--name",
                    "{index:03d}_{stem}.png", "--json")
    assert whole.returncode == 0, whole.stderr
    shares = []
    for index in range(1, count + 1):
        done = run_cli("segment", str(photos), "-r", "-o", str(tmp_path / "sharded"), "-m", "otsu", "--name",
                       "{index:03d}_{stem}.png", "--shard", f"{index}/{count}", "--json")
        assert done.returncode == 0, done.stderr
        shares.append({Path(output).relative_to(tmp_path / "sharded").as_posix() for output in _written(done)})
    assert all(shares), shares  # every share got some of the files
    assert sum(len(share) for share in shares) == len(set().union(*shares))  # disjoint
    names = sorted(path.relative_to(tmp_path / "whole").as_posix() for path in (tmp_path / "whole").rglob("*.png"))
    assert sorted(set().union(*shares)) == names
    # Byte for byte, {index} numbered across the whole batch in every share.
    for name in names:
        assert (tmp_path / "sharded" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


def test_a_path_list_is_sharded_by_its_paths(tmp_path):
    photos = _photos(tmp_path, copies=2)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{path}\n" for path in sorted(photos.rglob("*.png"))))
    outputs = []
    for index in (1, 2):
        done = run_cli("apply", "-T", str(listing), "-m", "otsu", "--mode", "color", "-o", str(tmp_path / "out"),
                       "--name", "{index:03d}_{stem}.png", "--shard", f"{index}/2", "--json")
        assert done.returncode == 0, done.stderr
        outputs += _written(done)
    assert len(outputs) == len(set(outputs)) == len(listing.read_text().splitlines())


@pytest.mark.parametrize("text", ["0/2", "3/2", "2", "a/b", "1/0"])
def test_a_bad_shard_is_a_usage_error(text, tmp_path):
    with pytest.raises(OptionError, match="shard"):
        Shard.parse(text)
    done = run_cli("segment", str(SAMPLES / "coins.png"), "-o", str(tmp_path), "--shard", text)
    assert done.returncode == 2 and "--shard" in done.stderr.decode(), done.stderr


def test_no_share_writes_over_another_shares_input(tmp_path):
    """z.jpg, the first input, has its mask named 0.png: the second input. One run refuses it; so does every share,
    though z.jpg and 0.png fall in different shares and a share alone would not know 0.png is an input."""
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "z.jpg"), cv2.imread(str(SAMPLES / "coins.png")))
    shutil.copyfile(SAMPLES / "camera.png", folder / "0.png")
    assert Shard(1, 2).holds("photos/z.jpg") != Shard(1, 2).holds("photos/0.png")
    before = (folder / "0.png").read_bytes()
    for index in (1, 2):
        done = run_cli("segment", "photos/z.jpg", "photos/0.png", "-o", "photos", "--overwrite", "--name",
                       "{index}.png", "--shard", f"{index}/2", cwd=tmp_path)
        assert (folder / "0.png").read_bytes() == before, done.stderr
