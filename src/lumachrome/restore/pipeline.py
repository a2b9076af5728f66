"""Old photo pipeline: restore -> colorize -> reference / palette correction, each step optional.

Python::

    from lumachrome.colorizer import Colorizer
    from lumachrome.restore.pipeline import colorize_old_photo

    col = Colorizer.load("photo")
    res = colorize_old_photo(col, old_rgb, restore=True, references=["ref_1950.jpg"], strength=0.8)
    res.rgb              # float32 (H, W, 3) colour result
    res.prepared.report()  # what each restoration step did
    res.before_after()   # uint8 side-by-side: input | restored | colorized

The command line does the same with ``lumachrome colorize old.jpg --restore --reference ref.jpg
[--strength 0.8] [--palette era.json] [--before-after]``, through :class:`Restorer` (a
``preprocess`` hook of :meth:`Colorizer.colorize_file`) and
:class:`~lumachrome.transfer.ColorCorrection` (its ``ab_transform`` hook).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np

from lumachrome.color.lab import as_float_image
from lumachrome.restore.prepare import PrepareOptions, Prepared, before_after, prepare

__all__ = ["RESTORE_STEPS", "OldPhotoResult", "Restorer", "build_correction", "colorize_old_photo", "restorer_without"]

#: Restoration steps a user may switch off (``colorize --restore-skip``, the web app): name ->
#: :class:`~lumachrome.restore.prepare.PrepareOptions` field.
RESTORE_STEPS = {"levels": "levels", "defects": "defects", "denoise": "denoise", "contrast": "contrast"}

#: Long side of the input copy a :class:`Restorer` keeps for the before/after view.
PREVIEW_SIDE = 768


def _preview(x: np.ndarray, side: int = PREVIEW_SIDE) -> np.ndarray:
    h, w = x.shape[:2]
    if max(h, w) <= side:
        return x.copy()
    s = side / max(h, w)
    return cv2.resize(x, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


class Restorer:
    """A ``preprocess`` hook: ``rgb -> prepared gray (H, W)``; keeps the last result.

    Attributes:
        options: :class:`PrepareOptions`.
        last: the last :class:`Prepared` (its ``L`` is full resolution).
        last_input: a copy of the last input, long side at most 768 px (for :meth:`before_after`).
    """

    def __init__(self, options: PrepareOptions | None = None) -> None:
        self.options = (options or PrepareOptions()).validate()
        self.last: Prepared | None = None
        self.last_input: np.ndarray | None = None

    def __call__(self, image: np.ndarray) -> np.ndarray:
        x = as_float_image(image)
        self.last_input = _preview(x)
        self.last = prepare(x, self.options)
        return self.last.gray()

    def before_after(self, colorized: np.ndarray | None, height: int = 512) -> np.ndarray:
        """uint8 side-by-side ``input | restored [| colorized]`` of the last image."""
        if self.last is None or self.last_input is None:
            raise ValueError("Restorer.before_after: no image restored yet")
        panels = [self.last_input, _preview(self.last.image())]
        labels = ["input", "restored"]
        if colorized is not None:
            panels.append(_preview(as_float_image(colorized)))
            labels.append("colorized")
        return before_after(panels, labels, height=height)


def restorer_without(skip: Sequence[str]) -> Restorer:
    """A :class:`Restorer` with the default preparation but the steps named in ``skip`` (names of
    :data:`RESTORE_STEPS`, checked by the caller) switched off."""
    opts = PrepareOptions()
    for step in skip:
        setattr(opts, RESTORE_STEPS[step], 0.0 if step == "contrast" else False)
    return Restorer(opts)


def build_correction(
    references: Sequence[Any] | None = None,
    palette: str | os.PathLike | Any | None = None,
    *,
    method: str | None = None,
    strength: float = 1.0,
    source_momentum: float = 0.0,
):
    """The ``ab_transform`` for references and/or a palette (None when neither is given).

    With both, the palette is applied first, then the references (the more specific one wins).
    ``method`` defaults to ``"bands"`` for references and ``"histogram"`` for a palette.
    """
    from lumachrome.transfer import ColorCorrection, chain

    parts = []
    if palette is not None:
        m = method if method not in (None, "exemplar") else "histogram"
        parts.append(ColorCorrection.from_palette(palette, method=m, strength=strength, source_momentum=source_momentum))
    if references:
        parts.append(
            ColorCorrection.from_references(
                references, method=method or "bands", strength=strength, source_momentum=source_momentum
            )
        )
    return chain(*parts)


@dataclass
class OldPhotoResult:
    """Result of :func:`colorize_old_photo`."""

    rgb: np.ndarray
    prepared: Prepared | None
    input_preview: np.ndarray

    def before_after(self, height: int = 512) -> np.ndarray:
        """uint8 ``input | restored | colorized`` (``input | colorized`` without restoration)."""
        panels = [self.input_preview]
        labels = ["input"]
        if self.prepared is not None:
            panels.append(_preview(self.prepared.image()))
            labels.append("restored")
        panels.append(_preview(self.rgb))
        labels.append("colorized")
        return before_after(panels, labels, height=height)


def colorize_old_photo(
    colorizer: Any,
    image: np.ndarray,
    *,
    restore: bool | PrepareOptions = True,
    references: Sequence[Any] | None = None,
    palette: str | os.PathLike | Any | None = None,
    method: str | None = None,
    strength: float = 1.0,
    size: int | None = None,
) -> OldPhotoResult:
    """Restore (optional), colorize, and correct toward references / a palette (optional).

    Args:
        colorizer: a :class:`lumachrome.colorizer.Colorizer`.
        image: ``(H, W)`` or ``(H, W, 3)`` sRGB (float [0, 1], uint8, uint16).
        restore: True (all preparation steps), False, or :class:`PrepareOptions`.
        references: colour reference images (paths, folders, arrays).
        palette: an era palette (path or :class:`~lumachrome.transfer.Palette`).
        method: transfer method (``reinhard``, ``bands``, ``histogram``, ``exemplar``).
        strength: correction strength in ``[0, 1]``.
        size: working resolution of the network.
    """
    x = as_float_image(image)
    prepared = None
    if restore:
        prepared = prepare(x, restore if isinstance(restore, PrepareOptions) else None)
        net_in = prepared.gray()
    else:
        net_in = x
    corr = build_correction(references, palette, method=method, strength=strength)
    rgb = colorizer.colorize_array(net_in, size=size, ab_transform=corr)
    return OldPhotoResult(rgb=rgb, prepared=prepared, input_preview=_preview(x))
