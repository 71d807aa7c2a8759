"""COCO instance annotations: masks out as RLE or polygons, and a COCO file in as masks matched by file name.

Run-length encoding is pycocotools' own (the reference implementation), so an exported mask decodes to the same
pixels in every tool built on it. pycocotools is one of maskcli's dependencies (small, and the README's tour needs it).

>>> import numpy as np
>>> mask = np.zeros((4, 5), bool); mask[1:3, 1:4] = True
>>> rle = rle_encode(mask)
>>> bool((rle_decode(rle) == mask).all())
True
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from maskcli._version import __version__
from maskcli.errors import InputError, OptionError, SetupError
from maskcli.formats import Encoded, ExportFormat, ImageRegions, Region, export_formats
from maskcli.formats.geometry import bbox, mask_to_polygons, self_intersects
from maskcli.io.pairing import KeyIndex, name_key

INSTALL_HINT = "COCO files need pycocotools, a dependency of maskcli missing here: pip install pycocotools"


def pycocotools_mask() -> Any:
    """``pycocotools.mask``, or a :class:`SetupError` saying how to install it."""
    try:
        from pycocotools import mask
    except ImportError:
        raise SetupError(INSTALL_HINT) from None
    return mask


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """A boolean H×W mask as COCO's compressed RLE, ``{"size": [h, w], "counts": str}``."""
    coco_mask = pycocotools_mask()
    rle = coco_mask.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """A COCO RLE (compressed string counts, or the uncompressed list form) as a boolean H×W mask."""
    coco_mask = pycocotools_mask()
    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        compressed = coco_mask.frPyObjects(rle, height, width)
    else:
        compressed = {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return _decode(coco_mask, compressed)


def polygons_decode(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """Polygons filled as pycocotools fills them (a union of polygons), as a boolean H×W mask."""
    coco_mask = pycocotools_mask()
    rles = coco_mask.frPyObjects([list(map(float, p)) for p in polygons], height, width)
    return _decode(coco_mask, coco_mask.merge(rles))


def _decode(coco_mask: Any, rle: Any) -> np.ndarray:
    # pycocotools 2.0.x hands numpy 2 an __array__ without the copy keyword: a DeprecationWarning of theirs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return coco_mask.decode(rle).astype(bool)


# -- out ------------------------------------------------------------------------------------------------------


@export_formats.register("coco")
class CocoFormat(ExportFormat):
    """A COCO instances file: ``images``, ``categories``, ``annotations`` with area and box."""

    summary = "COCO instances JSON (RLE, or polygons), one file for the batch."
    suffix = None

    def __init__(self, categories: Sequence[str], *, polygons: bool = False, instances: bool = False) -> None:
        super().__init__(categories, polygons=polygons, instances=instances)
        if not polygons:
            pycocotools_mask()  # a missing extra stops the run before the first mask

    def encode(self, image: ImageRegions) -> Encoded:
        regions = self.regions(image)
        annotations = []
        for region in regions:
            area = int(np.count_nonzero(region.mask))
            if area == 0:
                continue
            segmentation: Any = mask_to_polygons(region.mask) if self.polygons else rle_encode(region.mask)
            annotation = {"category": region.category, "segmentation": segmentation, "area": area,
                          "bbox": bbox(region.mask), "iscrowd": 0}
            if region.score is not None:
                annotation["score"] = round(region.score, 4)
            annotations.append(annotation)
        entry = {"file_name": image.file_name, "width": image.width, "height": image.height}
        return Encoded(b"", {"image": entry, "annotations": annotations})

    def finish(self, output: Path, parts: Sequence[dict[str, Any]]) -> list[Path]:
        from maskcli.io.files import write_atomic

        document = build_document(parts, self.categories)
        write_atomic(output, json.dumps(document, separators=(",", ":")).encode())
        return [output]


def build_document(parts: Iterable[dict[str, Any]], categories: Sequence[str]) -> dict[str, Any]:
    """A COCO document from per-image parts (``{"image": ..., "annotations": [{"category": name, ...}]}``).

    Image ids follow the parts' order and category ids the categories' order, both from 1.

    >>> document = build_document([{"image": {"file_name": "a.jpg", "width": 4, "height": 3},
    ...                              "annotations": [{"category": "cat", "area": 2, "bbox": [0, 0, 1, 2],
    ...                                               "iscrowd": 0, "segmentation": [[0, 0, 1, 0, 1, 2]]}]}],
    ...                            ["cat"])
    >>> document["images"][0]["id"], document["annotations"][0]["category_id"], document["categories"]
    (1, 1, [{'id': 1, 'name': 'cat', 'supercategory': 'cat'}])
    """
    ids = {name: number for number, name in enumerate(categories, start=1)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, part in enumerate(parts, start=1):
        images.append({"id": image_id, **part["image"]})
        for annotation in part["annotations"]:
            fields = {k: v for k, v in annotation.items() if k != "category"}
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": ids[annotation["category"]], **fields})
    return {
        "info": {"description": "masks exported by maskcli", "version": __version__},
        "licenses": [],
        "images": images,
        "categories": [{"id": ids[name], "name": name, "supercategory": name} for name in categories],
        "annotations": annotations,
    }


# -- in -------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class CocoImage:
    """One image of a COCO file and its annotations."""

    id: int
    file_name: str
    width: int
    height: int
    annotations: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class CocoAnnotations:
    """A COCO file read as masks, matched to images by file name.

    An image matches an entry whose ``file_name`` has the same relative path without suffix (``sub/a.jpg``
    matches ``sub/a.png``), else the same stem when only one entry has it. Problems that leave the rest usable
    (an annotation for an image the file does not list, an entry without a size) are kept in ``problems``, one
    line each; a file that is not COCO at all is a :class:`SetupError`.

    Examples
    --------
    >>> import tempfile, json
    >>> scratch = tempfile.TemporaryDirectory(); path = Path(scratch.name) / "a.json"
    >>> _ = path.write_text(json.dumps({"images": [{"id": 1, "file_name": "photos/a.jpg", "width": 4, "height": 3}],
    ...     "categories": [{"id": 7, "name": "cat"}],
    ...     "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]},
    ...                     {"id": 2, "image_id": 9, "category_id": 7, "segmentation": [[0, 0, 1, 0, 1, 1]]}]}))
    >>> coco = CocoAnnotations.load(path)
    >>> coco.categories, coco.problems
    ({7: 'cat'}, ['annotation 2: image id 9 is not in images; ignored'])
    >>> int(coco.mask(coco.find("a.png")).sum())
    4
    >>> scratch.cleanup()
    """

    path: str
    categories: dict[int, str]
    #: The entries by key (:func:`maskcli.io.pairing.name_key` of their file names).
    images: KeyIndex[CocoImage]
    problems: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CocoAnnotations:
        name = str(path)
        from maskcli.io.files import read_regular_file

        try:
            document = json.loads(read_regular_file(path))  # a FIFO or a device is refused, not read forever
        except InputError as error:
            raise SetupError(f"{name}: cannot read: {error}") from None
        except (ValueError, UnicodeDecodeError) as error:
            raise SetupError(f"{name}: not a JSON file ({error})") from None
        if not isinstance(document, dict) or not isinstance(document.get("images"), list) \
                or not isinstance(document.get("annotations"), list):
            raise SetupError(f"{name}: not a COCO file (expected an object with images and annotations lists)")
        coco = cls(name, {}, KeyIndex())
        for entry in document.get("categories") or []:
            try:
                coco.categories[int(entry["id"])] = str(entry["name"])
            except (KeyError, TypeError, ValueError):
                coco.problems.append(f"category {entry!r}: needs an id and a name; ignored")
        by_id: dict[int, CocoImage] = {}
        for number, entry in enumerate(document["images"]):
            try:
                image = CocoImage(int(entry["id"]), str(entry["file_name"]), int(entry["width"]),
                                  int(entry["height"]))
            except (KeyError, TypeError, ValueError):
                coco.problems.append(f"images[{number}]: needs id, file_name, width and height; ignored")
                continue
            if image.width < 1 or image.height < 1:
                coco.problems.append(f"image {image.file_name}: size {image.width}×{image.height}; ignored")
                continue
            if image.id in by_id or not coco.images.add(name_key(image.file_name), image):
                coco.problems.append(f"image {image.file_name} (id {image.id}): listed twice; the first is used")
                continue
            by_id[image.id] = image
        for number, annotation in enumerate(document["annotations"]):
            if not isinstance(annotation, dict):
                coco.problems.append(f"annotations[{number}]: not an object; ignored")
                continue
            label = f"annotation {annotation.get('id', f'[{number}]')}"
            # The ignore below: a missing image_id finds no image: reported below.
            target = by_id.get(annotation.get("image_id"))  # type: ignore[arg-type]
            if target is None:
                coco.problems.append(f"{label}: image id {annotation.get('image_id')} is not in images; ignored")
                continue
            target.annotations.append(annotation)
        return coco

    def find(self, relpath: str | PurePosixPath) -> CocoImage | None:
        """The entry for an image (or mask) at ``relpath``, or None."""
        return self.images.find(name_key(relpath))

    def category_ids(self, classes: Sequence[str] | None) -> set[int] | None:
        """The ids of the named categories (None: all); an unknown name is an :class:`OptionError`."""
        if not classes:
            return None
        names = {name: number for number, name in self.categories.items()}
        unknown = [name for name in classes if name not in names]
        if unknown:
            raise OptionError("class", f"{self.path} has no category {unknown[0]!r}; its categories: "
                                       f"{', '.join(sorted(names)) or 'none'}")
        return {names[name] for name in classes}

    def mask(self, image: CocoImage, shape: tuple[int, int] | None = None,
             category_ids: set[int] | None = None) -> np.ndarray:
        """The union of an image's annotations (of ``category_ids``, or all) as a float32 hard mask.

        ``shape`` is the real image's (height, width): a COCO size that disagrees is an :class:`InputError`.
        A malformed annotation (empty or self-intersecting polygon, an RLE of another size, a category the
        file does not list) fails the image, naming the annotation.
        """
        if shape is not None and tuple(shape) != (image.height, image.width):
            raise InputError(f"{self.path} gives {image.file_name} as {image.width}×{image.height}, but the image "
                             f"is {shape[1]}×{shape[0]}")
        mask = np.zeros((image.height, image.width), bool)
        for annotation in image.annotations:
            category = annotation.get("category_id")
            if category not in self.categories:
                raise InputError(f"{self.path}: annotation {annotation.get('id')} of {image.file_name}: category "
                                 f"id {category} is not in categories")
            if category_ids is not None and category not in category_ids:
                continue
            mask |= self._region(annotation, image)
        return mask.astype(np.float32)

    def regions(self, image: CocoImage) -> list[Region]:
        """Each annotation of an image as its own region (an object), with its category and score, if any."""
        regions = []
        for annotation in image.annotations:
            category = annotation.get("category_id")
            if category not in self.categories:
                raise InputError(f"{self.path}: annotation {annotation.get('id')} of {image.file_name}: category "
                                 f"id {category} is not in categories")
            score = annotation.get("score")
            regions.append(Region(self.categories[category], self._region(annotation, image).astype(bool),
                                  float(score) if isinstance(score, (int, float)) else None))
        return regions

    def _region(self, annotation: dict[str, Any], image: CocoImage) -> np.ndarray:
        where = f"{self.path}: annotation {annotation.get('id')} of {image.file_name}"
        segmentation = annotation.get("segmentation")
        if isinstance(segmentation, dict):
            size = segmentation.get("size")
            if not isinstance(size, list) or [int(v) for v in size] != [image.height, image.width]:
                raise InputError(f"{where}: RLE size {size} is not the image's [{image.height}, {image.width}]")
            try:
                return rle_decode(segmentation)
            except (KeyError, TypeError, ValueError) as error:
                raise InputError(f"{where}: unreadable RLE ({error})") from None
        if not isinstance(segmentation, list) or not segmentation:
            raise InputError(f"{where}: empty segmentation (no polygon and no RLE)")
        for number, polygon in enumerate(segmentation):
            if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2 \
                    or not all(isinstance(v, (int, float)) for v in polygon):
                raise InputError(f"{where}: polygon {number} is not a list of at least 3 x, y points")
            if self_intersects(polygon):
                raise InputError(f"{where}: polygon {number} intersects itself")
        return polygons_decode(segmentation, image.height, image.width)
