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
hue_conc        hue concentration of one image: share of the chroma-         ``[1/6, 1]``
                weighted Lab hue mass within +-30 degrees of its dominant    (match the GT)
                hue; NaN for achromatic images (mean chroma < 0.25)
==============  ==========================================================  ==================

:func:`frechet_distance` (the FID formula on two sets of feature vectors) is the set-level metric
behind ``fd_lite`` (:mod:`lumachrome.fd_lite`).

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
    "NAN_METRICS",
    "PSNR_CAP",
    "ab_auc",
    "HUE_HALF_WINDOW",
    "HUE_MIN_CHROMA",
    "ab_error_auc",
    "ciede2000",
    "colorfulness",
    "frechet_distance",
    "frechet_distance_from_stats",
    "hue_concentration",
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

#: Half-width in degrees of the hue window of :func:`hue_concentration` (the window spans 60 degrees).
HUE_HALF_WINDOW = 30

#: Mean chroma (``sqrt(a^2 + b^2)`` in Lab units, averaged over all pixels) below which an image counts
#: as achromatic and :func:`hue_concentration` is NaN: its hues would be those of 8-bit rounding. The
#: gray baseline's predictions (``ab = 0`` rounded to uint8 RGB) have a mean chroma of at most ~0.01
#: and would score a meaningless ~0.5; one file of ``photos/val`` stored as RGB with gray pixels has
#: 0.001; the least colourful real photo there has 1.05. The threshold sits well above the rounding
#: noise but low enough that a mostly gray image with a small coloured area is still scored (5 % of
#: the pixels at chroma 10 give 0.5; photo v4 makes one such prediction on ``photos/val``, 0.86).
HUE_MIN_CHROMA = 0.25

#: Keys of :func:`image_metrics`, in table order. ``hue_conc``/``hue_conc_gt`` may be NaN
#: (achromatic image): average them with ``nanmean`` and count the NaNs.
METRIC_NAMES = ("psnr", "ssim", "cf", "cf_gt", "auc", "ciede2000", "hue_conc", "hue_conc_gt")

#: Keys of :data:`METRIC_NAMES` that are NaN for achromatic images.
NAN_METRICS = ("hue_conc", "hue_conc_gt")


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
# hue concentration


def hue_concentration(img: np.ndarray, min_chroma: float = HUE_MIN_CHROMA) -> float:
    """Hue concentration of one image: how much of its colour lies in one hue range.

    In CIE Lab (:func:`lumachrome.color.lab.rgb_to_lab_np` of the uint8 image), every pixel has the hue
    ``atan2(b, a)`` and the weight ``C = sqrt(a^2 + b^2)`` (its chroma). The hues are histogrammed
    into 360 one-degree bins weighted by chroma; the dominant hue is the centre of the 60-degree
    circular window (60 consecutive bins, ``+-`` :data:`HUE_HALF_WINDOW`) that holds the most chroma
    mass, and the result is that window's share of the total chroma mass.

    Scale-free: multiplying every pixel's chroma by the same factor leaves it unchanged (no
    per-pixel threshold). A sepia or single-tint wash scores ~1, hues spread uniformly around the
    circle 1/6 (the minimum), colour photos ~0.75-0.8 (``photos/val`` ground truth: 0.78). A
    colorizer that paints everything in one tone scores higher than the ground truth.

    Args:
        img: uint8 ``(H, W, 3)`` RGB.
        min_chroma: achromatic threshold on the mean chroma over all pixels (default
            :data:`HUE_MIN_CHROMA` = 0.25 Lab units).

    Returns:
        Share in ``[1/6, 1]``; ``NaN`` for an (almost) achromatic image (mean chroma below
        ``min_chroma``, e.g. every prediction of the gray baseline), whose hues are rounding noise.
    """
    _check_image(img, "hue_concentration")
    return _hue_conc_from_lab(rgb_to_lab_np(img), min_chroma)


def _hue_conc_from_lab(lab: np.ndarray, min_chroma: float = HUE_MIN_CHROMA) -> float:
    a = lab[..., 1].astype(np.float64).ravel()
    b = lab[..., 2].astype(np.float64).ravel()
    chroma = np.hypot(a, b)
    total = float(chroma.sum())
    if not total > 0.0 or total < float(min_chroma) * chroma.size:
        return math.nan
    hue = np.degrees(np.arctan2(b, a)) % 360.0  # [0, 360]; 360 itself can occur after rounding
    bins = np.floor(hue).astype(np.int64) % 360
    hist = np.bincount(bins, weights=chroma, minlength=360)
    width = 2 * HUE_HALF_WINDOW
    # circular window sums: window s covers bins s, s+1, ..., s+width-1 (mod 360)
    csum = np.concatenate(([0.0], np.cumsum(np.concatenate((hist, hist[: width - 1])))))
    windows = csum[width : width + 360] - csum[:360]
    return float(min(windows.max() / hist.sum(), 1.0))


# --------------------------------------------------------------------------------------------
# Frechet distance (the FID formula)


def frechet_distance_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between the Gaussians ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2))`` (Dowson & Landau 1982; the
    formula of FID, Heusel et al. 2017). ``sqrtm`` is ``scipy.linalg.sqrtm`` in float64; its real part
    is used (round-off gives tiny imaginary parts); scipy's warning about singular matrices is
    silenced (small sets always give them). If it is not finite, it is recomputed with ``1e-6``
    added to both diagonals, as pytorch-fid does. A result below 0 from
    round-off (identical sets) is returned as 0.

    Args:
        mu1, mu2: means ``(d,)``.
        sigma1, sigma2: covariance matrices ``(d, d)`` (symmetric positive semi-definite).

    Returns:
        The distance ``>= 0`` (0 for identical Gaussians), in squared feature units.
    """
    import warnings

    from scipy.linalg import LinAlgWarning, sqrtm

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"frechet_distance: means {mu1.shape}, {mu2.shape} and covariances "
                         f"{s1.shape}, {s2.shape} do not match")
    with warnings.catch_warnings():  # singular products are expected (N < d); checked below
        warnings.simplefilter("ignore", LinAlgWarning)
        covmean = sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(d) * 1e-6
            covmean = sqrtm((s1 + offset) @ (s2 + offset))
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(np.real(covmean)))
    return max(value, 0.0)


def frechet_distance(feats1: np.ndarray, feats2: np.ndarray) -> float:
    """:func:`frechet_distance_from_stats` of two sets of feature vectors.

    Means and sample covariances (``np.cov``, ``N - 1`` denominator) of each set, in float64. When
    the sets are smaller than the dimension (``N1 + N2 + 1 < d``, e.g. a few hundred images and 1280
    features), both are first expressed in an orthonormal basis of the span of the centred vectors
    and the mean difference (a QR decomposition). This changes nothing in exact arithmetic (the
    covariances and the mean difference live in that span, and the non-zero eigenvalues of
    ``S1 S2`` are those of the projected product), but ``sqrtm`` then works on a ``k x k`` matrix,
    ``k = N1 + N2 + 1``, instead of ``d x d``.

    Args:
        feats1, feats2: ``(N1, d)`` and ``(N2, d)``, each with at least 2 rows.

    Returns:
        The distance ``>= 0``. With fewer vectors than dimensions (``N <= d``) the covariances are
        singular estimates: the value is biased upward (roughly by ``d / N``) and only comparable
        between sets of the same size.

    Raises:
        ValueError: fewer than 2 vectors in a set, or different dimensions.
    """
    f1 = np.asarray(feats1, np.float64)
    f2 = np.asarray(feats2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"frechet_distance: expected (N, d) feature arrays of the same d, got {f1.shape}, {f2.shape}")
    if f1.shape[0] < 2 or f2.shape[0] < 2:
        raise ValueError(f"frechet_distance: need at least 2 vectors per set for a covariance, "
                         f"got {f1.shape[0]} and {f2.shape[0]}")
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    d = f1.shape[1]
    if f1.shape[0] + f2.shape[0] + 1 < d:
        span = np.concatenate((f1 - mu1, f2 - mu2, (mu1 - mu2)[None]), axis=0).T  # (d, k)
        q, _ = np.linalg.qr(span)  # orthonormal columns spanning the centred vectors and mu1 - mu2
        f1, f2, mu1, mu2 = f1 @ q, f2 @ q, mu1 @ q, mu2 @ q
    return frechet_distance_from_stats(mu1, np.cov(f1, rowvar=False), mu2, np.cov(f2, rowvar=False))


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
        ``{"psnr", "ssim", "cf" (of pred), "cf_gt", "auc", "ciede2000", "hue_conc" (of pred),
        "hue_conc_gt"}`` (see :data:`METRIC_NAMES`), plain Python floats; the hue concentrations are
        NaN for achromatic images. About 55 ms for a 256x256 pair on one core (SSIM ~35 ms,
        CIEDE2000 ~7 ms, hue concentrations ~4 ms).
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
        "hue_conc": _hue_conc_from_lab(lab_pred),
        "hue_conc_gt": _hue_conc_from_lab(lab_gt),
    }
