"""He et al.'s guided filter: a mask's edges snapped to the image's edges.

References
----------
.. [1] K. He, J. Sun and X. Tang, "Guided Image Filtering", IEEE Transactions on Pattern Analysis and Machine
   Intelligence 35(6), 1397–1409, 2013. https://doi.org/10.1109/TPAMI.2012.213
.. [2] K. He and J. Sun, "Fast Guided Filter", arXiv:1505.00996, 2015.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["guided_filter"]


def _guide(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3 and image.shape[2] >= 3:
        return np.ascontiguousarray(image[..., :3], dtype=np.float32)
    return np.ascontiguousarray(image if image.ndim == 2 else image[..., 0], dtype=np.float32)


def guided_filter(mask: np.ndarray, image: np.ndarray, radius: int = 8, eps: float = 1e-3,
                  scale: int | None = None) -> np.ndarray:
    """He et al.'s guided filter: the mask made locally linear in the image, so its edges follow the image's.

    Box filters (OpenCV) make it O(N) in the radius; a colour image guides with the full 3×3 covariance. On large
    images the coefficients are computed at 1/``scale`` resolution and upsampled (the *fast* guided filter, He &
    Sun 2015); by default ``scale`` keeps the long side near 1024 px.

    Parameters
    ----------
    mask : ndarray
        float32 H×W in [0, 1], the mask to filter.
    image : ndarray
        The guide: grey H×W or RGB H×W×3 in [0, 1] (resized to the mask's size if it differs).
    radius : int
        Window radius in pixels (at full resolution).
    eps : float
        Regularisation: larger keeps the mask smoother, smaller follows the image's edges more closely.
    scale : int, optional
        Subsampling factor of the fast guided filter; default: keep the long side near 1024 px.

    Returns
    -------
    ndarray
        float32 H×W in [0, 1].

    References
    ----------
    .. [1] K. He, J. Sun and X. Tang, "Guided Image Filtering", IEEE TPAMI 35(6), 1397–1409, 2013.
       https://doi.org/10.1109/TPAMI.2012.213

    Examples
    --------

    >>> image = np.zeros((8, 8), np.float32); image[:, 4:] = 1
    >>> blurry = np.clip(np.linspace(-0.5, 1.5, 8, dtype=np.float32), 0, 1)[None].repeat(8, 0)
    >>> [round(float(v), 1) for v in blurry[0]]
    [0.0, 0.0, 0.1, 0.4, 0.6, 0.9, 1.0, 1.0]
    >>> [round(float(v), 1) for v in guided_filter(blurry, image, radius=2, eps=1e-4)[0]]  # a sharper step
    [0.1, 0.1, 0.1, 0.2, 0.8, 0.9, 0.9, 0.9]
    """
    guide = _guide(image)
    if guide.shape[:2] != mask.shape:
        guide = cv2.resize(guide, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_AREA)
    height, width = mask.shape
    if scale is None:
        scale = max(1, int(max(height, width) // 1024))
    full_guide, src = guide, np.asarray(mask, np.float32)
    guide = np.asarray(guide)
    if scale > 1:
        size = (max(1, width // scale), max(1, height // scale))
        guide = cv2.resize(guide, size, interpolation=cv2.INTER_AREA)
        src = np.asarray(cv2.resize(src, size, interpolation=cv2.INTER_AREA), np.float32)
        radius = max(1, radius // scale)
    box = lambda x: cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)  # noqa
    mean_p = box(src)
    if guide.ndim == 2:
        mean_i = box(guide)
        cov_ip = box(guide * src) - mean_i * mean_p
        var_i = box(guide * guide) - mean_i * mean_i
        a = cov_ip / (var_i + eps)
        b = mean_p - a * mean_i
        mean_a, mean_b = box(a), box(b)
        if scale > 1:
            mean_a = cv2.resize(mean_a, (width, height), interpolation=cv2.INTER_LINEAR)
            mean_b = cv2.resize(mean_b, (width, height), interpolation=cv2.INTER_LINEAR)
        out = mean_a * full_guide + mean_b
    else:
        channels = [np.ascontiguousarray(guide[..., c]) for c in range(3)]
        means_i = [box(c) for c in channels]
        covs_ip = [box(c * src) - m * mean_p for c, m in zip(channels, means_i)]
        var = {}
        for i in range(3):
            for j in range(i, 3):
                var[i, j] = box(channels[i] * channels[j]) - means_i[i] * means_i[j] + (eps if i == j else 0.0)
        rr, rg, rb, gg, gb, bb = var[0, 0], var[0, 1], var[0, 2], var[1, 1], var[1, 2], var[2, 2]
        # The inverse of the symmetric 3×3 covariance, by cofactors, for every pixel at once.
        inv_rr, inv_rg, inv_rb = gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb
        inv_gg, inv_gb, inv_bb = rr * bb - rb * rb, rb * rg - rr * gb, rr * gg - rg * rg
        det = rr * inv_rr + rg * inv_rg + rb * inv_rb
        a_r = (inv_rr * covs_ip[0] + inv_rg * covs_ip[1] + inv_rb * covs_ip[2]) / det
        a_g = (inv_rg * covs_ip[0] + inv_gg * covs_ip[1] + inv_gb * covs_ip[2]) / det
        a_b = (inv_rb * covs_ip[0] + inv_gb * covs_ip[1] + inv_bb * covs_ip[2]) / det
        b = mean_p - a_r * means_i[0] - a_g * means_i[1] - a_b * means_i[2]
        coefficients = [box(a_r), box(a_g), box(a_b), box(b)]
        if scale > 1:
            coefficients = [cv2.resize(c, (width, height), interpolation=cv2.INTER_LINEAR) for c in coefficients]
        out = (coefficients[0] * full_guide[..., 0] + coefficients[1] * full_guide[..., 1]
               + coefficients[2] * full_guide[..., 2] + coefficients[3])
    return np.clip(np.nan_to_num(out), 0, 1).astype(np.float32)
