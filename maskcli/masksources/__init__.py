"""Where ``apply``'s masks come from: one class per kind, registered by name in :data:`mask_sources`.

A mask source answers two questions:

* :meth:`MaskSource.pair`, while the items are planned (in the calling process, in input order): which mask file
  goes with this input? It returns a path, or None when the mask is not a file of its own, and raises
  :class:`~maskcli.errors.InputError` when there is none (that item fails, the batch goes on);
* :meth:`MaskSource.load`, when an item is decoded (maybe in a worker process): the mask itself, in the mask
  convention or as a file's integer grey levels (converted band by band where used), or None when a method makes
  it from the decoded image (:class:`MethodMasks`).

The kinds: ``folder`` (a folder of per-image masks matched by relative path and stem, as ``maskcli segment``
writes them), ``file`` (one static mask for every image), ``alpha`` (the image's own alpha channel), ``records``
(the masks named by the JSON records ``maskcli segment --json`` prints), ``method`` (a mask method run on the
fly), ``coco`` (a COCO file) and ``labels`` (a folder of label images with its
``labels.json`` legend), each image's mask the union of the chosen classes. Adding a kind is adding one
class with ``@mask_sources.register(NAME)`` in a module of this package that this file imports.
:func:`open_masks` picks the kind a path given as "the masks" is: a COCO file, a label folder, or a folder.
:func:`~maskcli.masksources.truths.pair_truths` pairs images with true masks of any of these layouts.

The modules: :mod:`~maskcli.masksources.base` (the protocol and the registry), :mod:`~maskcli.masksources.files`
(``folder``, ``file``, ``records``), :mod:`~maskcli.masksources.image` (``alpha``, ``method``),
:mod:`~maskcli.masksources.sets` (``coco``, ``labels``) and :mod:`~maskcli.masksources.truths`. Which file goes
with which image is decided by :mod:`maskcli.io.pairing`.

Examples
--------
>>> import tempfile
>>> from pathlib import Path, PurePosixPath
>>> from maskcli.io.sources import Source
>>> scratch = tempfile.TemporaryDirectory(); root = Path(scratch.name)
>>> (root / "sub").mkdir(); _ = (root / "sub" / "a.png").write_bytes(b"")
>>> MaskFolder(root).pair(Source("photos/sub/a.jpg", PurePosixPath("sub/a.jpg"))).relative_to(root).as_posix()
'sub/a.png'
>>> mask_sources.names()
['alpha', 'coco', 'file', 'folder', 'labels', 'method', 'records']
>>> type(open_masks(root)).__name__
'MaskFolder'
>>> scratch.cleanup()
"""

from maskcli.masksources.base import MaskSource, mask_sources, paired
from maskcli.masksources.files import MaskFolder, SegmentRecords, StaticMask, find_mask, read_mask_file
from maskcli.masksources.image import AlphaMasks, MethodMasks
from maskcli.masksources.sets import (
                                      CocoMasks,
                                      LabelMasks,
                                      classes_for,
                                      is_coco_file,
                                      open_mask_set,
                                      open_mask_sets,
                                      open_masks,
)

__all__ = ["AlphaMasks", "CocoMasks", "LabelMasks", "MaskFolder", "MaskSource", "MethodMasks", "SegmentRecords",
           "StaticMask", "classes_for", "find_mask", "is_coco_file", "mask_sources", "open_mask_set",
           "open_mask_sets", "open_masks", "paired", "read_mask_file"]
