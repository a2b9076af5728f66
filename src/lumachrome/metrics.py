"""Colorization metrics on 8-bit sRGB images (the DDColor / CT2 evaluation protocol).

Every function takes ``uint8`` numpy arrays of shape ``(H, W, 3)`` (gamma-encoded sRGB, 0..255):
the prediction first, the ground truth second, both of the same shape. Metrics are computed
per image; :mod:`lumachrome.evaluate` averages them over a folder.

==============  ==========================================================  ==================
metric          definition                                                  range (better)
==============  ==========================================================  ==================
PSNR            ``10 log10(255^2 / MSE)`` over all RGB values, capped at     ``[0, 48.13]`` dB
                :data:`PSNR_CAP` (``MSE`` floored at one 8-bit level)        (higher)
SSIM            scikit-image ``structural_similarity``, RGB, defaults:       ``[-1, 1]`` (higher)
                7x7 uniform window, sample covariance, K1 0.01, K2 0.03,
                ``data_range=255``, mean over the three channels
CF              colourfulness, Hasler & Suesstrunk 2003 (``|rg|, |yb|`` form   ``>= 0``
                of DDColor's code) of one image                              (match the GT)
AuC             area under the cumulative ab-error curve, thresholds        ``[0, 1]`` (higher)
                0..150 (Zhang et al. 2016), normalised
CIEDE2000       mean ``deltaE_ciede2000`` between the Lab of both images     ``[0, ~150]``
                                                                             (lower)
==============  ==========================================================  ==================

Lab values (AuC, CIEDE2000) are recomputed from the quantised ``uint8`` images with
:func:`lumachrome.color.lab.rgb_to_lab_np` (float32 OpenCV, agrees with scikit-image's ``rgb2lab``
to ~1e-4). With these settings the gray baseline (``ab = 0``) on ``photos/val`` reproduces the
reference numbers (PSNR 22.67, SSIM 0.930, AuC 0.882, CIEDE2000 11.52, CF 0.08 / GT 37.9).
"""

from __future__ import annotations

import math

import numpy as np

from lumachrome.color.lab import rgb_to_lab_np

__all__ = [
    "AUC_MAX_THRESHOLD",
    "METRIC_NAMES",
    "PSNR_CAP",
    "ab_auc",
    "ab_error_auc",
    "ciede2000",
    "colorfulness",
    "image_metrics",
    "psnr",
    "ssim",
]

#: Highest PSNR reported: ``20 log10(255)`` = 48.13 dB, the PSNR of an RMS error of one 8-bit
#: level. Identical images (MSE 0, PSNR infinite) score this instead of ``inf``, so that means over
#: a folder stay finite. It is what reproduces the reference gray-baseline mean (22.67 dB on
#: ``photos/val``, which holds one RGB file with equal channels); ``inf`` would make the mean
#: infinite, excluding such images gives 22.63 and a cap of 100 dB gives 22.76.
PSNR_CAP = 20.0 * math.log10(255.0)

#: Largest ab-error threshold of the AuC curve (Zhang et al. 2016 use 0..150 in steps of 1).
AUC_MAX_THRESHOLD = 150

#: Keys of :func:`image_metrics`, in table order.
METRIC_NAMES = ("psnr", "ssim", "cf", "cf_gt", "auc", "ciede2000")


def _check_pair(pred: np.ndarray, gt: np.ndarray, name: str) -> None:
    for label, img in (("pred", pred), ("gt", gt)):
        _check_image(img, f"{name}: {label}")
    if pred.shape != gt.shape:
        raise ValueError(f"{name}: pred shape {pred.shape} differs from gt shape {gt.shape}")


def _check_image(img: np.ndarray, name: str) -> None:
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(img).__name__}")
    if img.dtype != np.uint8:
        raise ValueError(f"{name}: expected a uint8 image, got dtype {img.dtype}")
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"{name}: expected shape (H, W, 3), got {img.shape}")


# --------------------------------------------------------------------------------------------
# PSNR / SSIM


def psnr(pred: np.ndarray, gt: np.ndarray, cap: float | None = PSNR_CAP) -> float:
    """Peak signal-to-noise ratio over all RGB values, data range 255.

    ``PSNR = 10 log10(255^2 / MSE)`` with ``MSE`` the mean squared difference over ``H*W*3`` values.

    Args:
        pred, gt: uint8 ``(H, W, 3)``.
        cap: upper bound in dB (default :data:`PSNR_CAP` = 48.13, i.e. ``MSE`` floored at 1);
            ``None`` returns ``inf`` for identical images.

    Returns:
        PSNR in dB, in ``[0, cap]`` (0 only for a black/white inversion); higher is better.
    """
    _check_pair(pred, gt, "psnr")
    diff = pred.astype(np.int16) - gt.astype(np.int16)
    mse = float(np.mean(np.square(diff, dtype=np.int32), dtype=np.float64))
    value = math.inf if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)
    return value if cap is None else min(value, float(cap))


def ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004) via ``skimage.metrics.structural_similarity``.

    Settings (they reproduce the reference SSIM 0.930 of the gray baseline; the Gaussian 11x11
    variant of the paper gives 0.933): ``channel_axis=-1``, ``data_range=255``, scikit-image
    defaults otherwise: 7x7 uniform window, sample covariance, ``K1=0.01``, ``K2=0.03``; the
    per-channel means are averaged.

    Args:
        pred, gt: uint8 ``(H, W, 3)``, both sides at least 7 px.

    Returns:
        Mean SSIM in ``[-1, 1]`` (1 for identical images); higher is better.
    """
    from skimage.metrics import structural_similarity

    _check_pair(pred, gt, "ssim")
    if min(gt.shape[:2]) < 7:
        raise ValueError(f"ssim: images must be at least 7x7 pixels, got {gt.shape[1]}x{gt.shape[0]}")
    return float(structural_similarity(pred, gt, channel_axis=-1, data_range=255))


# --------------------------------------------------------------------------------------------
# colourfulness


def colorfulness(img: np.ndarray) -> float:
    """Colourfulness of one image (Hasler & Suesstrunk 2003, Eq. 3 / metric ``M^(3)``).

    On 0..255 values, as in DDColor's code: ``rg = |R - G|``, ``yb = |(R + G) / 2 - B|``,
    ``CF = sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)``
    (population standard deviations over all pixels).

    Args:
        img: uint8 ``(H, W, 3)`` RGB.

    Returns:
        CF >= 0: 0 for any gray image; about 15 "slightly", 33 "moderately", 59 "quite",
        82 "highly", 109 "extremely" colourful (the paper's scale); half pure red, half black
        scores 185.3.
    """
    _check_image(img, "colorfulness")
    x = img.astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    rg = np.abs(r - g)
    yb = np.abs(0.5 * (r + g) - b)
    std = math.hypot(float(rg.std(dtype=np.float64)), float(yb.std(dtype=np.float64)))
    mean = math.hypot(float(rg.mean(dtype=np.float64)), float(yb.mean(dtype=np.float64)))
    return std + 0.3 * mean


# --------------------------------------------------------------------------------------------
# AuC of the ab error (Zhang et al. 2016)


def ab_error_auc(errors: np.ndarray, max_threshold: int = AUC_MAX_THRESHOLD) -> float:
    """Normalised area under the cumulative error curve.

    ``acc(t)`` is the fraction of ``errors`` that are ``<= t`` for ``t = 0, 1, ..., max_threshold``;
    the area under ``acc`` (trapezoidal rule) is divided by ``max_threshold`` (Zhang et al. 2016,
    Sec. 3.1, "AuC"). The trapezoidal area is the one that reproduces the reference AuC 0.882
    (the mean of ``acc`` over the 151 thresholds would give 0.879).

    Args:
        errors: any shape, float, non-negative (e.g. per-pixel Euclidean ab distances).
        max_threshold: positive integer, the last threshold.

    Returns:
        AuC in ``[0, 1]``: 1 when every error is 0, 0 when every error exceeds ``max_threshold``.
    """
    max_threshold = int(max_threshold)
    if max_threshold < 1:
        raise ValueError(f"ab_error_auc: max_threshold must be >= 1, got {max_threshold}")
    e = np.sort(np.asarray(errors, dtype=np.float64), axis=None)
    if e.size == 0:
        raise ValueError("ab_error_auc: no errors given (empty array)")
    thresholds = np.arange(max_threshold + 1, dtype=np.float64)
    acc = np.searchsorted(e, thresholds, side="right") / e.size  # fraction <= t
    area = float(np.sum(acc[1:] + acc[:-1]) * 0.5)  # trapezoids of width 1
    return area / max_threshold


def ab_auc(pred: np.ndarray, gt: np.ndarray, max_threshold: int = AUC_MAX_THRESHOLD) -> float:
    """AuC of the per-pixel ab error (Zhang et al. 2016): see :func:`ab_error_auc`.

    The ab channels are recomputed from the quantised ``uint8`` images; the per-pixel error is the
    Euclidean distance ``||ab_pred - ab_gt||_2`` in raw Lab units.

    Args:
        pred, gt: uint8 ``(H, W, 3)``.
        max_threshold: last threshold (default 150).

    Returns:
        AuC in ``[0, 1]``; 1 for identical images; higher is better.
    """
    _check_pair(pred, gt, "ab_auc")
    return _auc_from_lab(rgb_to_lab_np(pred), rgb_to_lab_np(gt), max_threshold)


def _auc_from_lab(lab_pred: np.ndarray, lab_gt: np.ndarray, max_threshold: int) -> float:
    d = lab_pred[..., 1:] - lab_gt[..., 1:]
    err = np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1])
    return ab_error_auc(err, max_threshold)


# --------------------------------------------------------------------------------------------
# CIEDE2000


def ciede2000(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference (``skimage.color.deltaE_ciede2000``, kL = kC = kH = 1).

    Args:
        pred, gt: uint8 ``(H, W, 3)``; Lab is recomputed from these quantised images.

    Returns:
        Mean Delta E 2000 over pixels, ``>= 0`` (0 for identical images, ~1 is a just noticeable
        difference); lower is better.
    """
    _check_pair(pred, gt, "ciede2000")
    return _ciede_from_lab(rgb_to_lab_np(pred), rgb_to_lab_np(gt))


def _ciede_from_lab(lab_pred: np.ndarray, lab_gt: np.ndarray) -> float:
    from skimage.color import deltaE_ciede2000

    # float32 Lab: ~2x faster than float64 (7 ms vs 13 ms at 256x256), differences ~1e-4.
    return float(np.mean(deltaE_ciede2000(lab_gt, lab_pred), dtype=np.float64))


# --------------------------------------------------------------------------------------------
# all at once


def image_metrics(pred: np.ndarray, gt: np.ndarray, max_threshold: int = AUC_MAX_THRESHOLD) -> dict[str, float]:
    """All metrics of one prediction (Lab of each image is computed once and shared).

    Args:
        pred, gt: uint8 ``(H, W, 3)`` of the same shape, both sides >= 7 px.
        max_threshold: last AuC threshold.

    Returns:
        ``{"psnr", "ssim", "cf" (of pred), "cf_gt", "auc", "ciede2000"}`` (see :data:`METRIC_NAMES`),
        plain Python floats. About 50 ms for a 256x256 pair on one core (SSIM ~35 ms, CIEDE2000 ~7 ms).
    """
    _check_pair(pred, gt, "image_metrics")
    lab_pred = rgb_to_lab_np(pred)
    lab_gt = rgb_to_lab_np(gt)
    return {
        "psnr": psnr(pred, gt),
        "ssim": ssim(pred, gt),
        "cf": colorfulness(pred),
        "cf_gt": colorfulness(gt),
        "auc": _auc_from_lab(lab_pred, lab_gt, max_threshold),
        "ciede2000": _ciede_from_lab(lab_pred, lab_gt),
    }
