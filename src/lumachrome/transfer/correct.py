"""Colour correction of a colorizer's output toward references or an era palette.

:class:`ColorCorrection` is a callable ``(L (h, w), ab (h, w, 2)) -> ab`` that the colorizer runs on
its working-resolution prediction (``Colorizer.colorize_array(..., ab_transform=corr)``): the
corrected ``ab`` is then upsampled and joined with the full-resolution ``L`` as usual, so a
correction costs the same for a 0.3 MP and a 24 MP photo. Methods:

* ``"reinhard"``: global mean/std transfer of ``a, b`` (:mod:`.reinhard`);
* ``"bands"``: the same per lightness band (:mod:`.local`);
* ``"histogram"``: per-band quantile matching of ``a`` and ``b`` (:mod:`.local`);
* ``"exemplar"``: ignore the network's colours and colour the gray image from the references
  (Welsh et al. 2002, :mod:`.exemplar`); needs reference images (not a palette).

``strength`` in ``[0, 1]`` blends: ``ab = ab_model + strength (ab_corrected - ab_model)``.

For film, ``source_momentum`` (e.g. 0.9) smooths the *image's* statistics over successive calls
(exponential moving average), so the correction of consecutive frames does not flicker with each
frame's own statistics.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from lumachrome.errors import ConfigError
from lumachrome.transfer.exemplar import welsh_ab
from lumachrome.transfer.local import BandStats, band_transfer
from lumachrome.transfer.palette import Palette
from lumachrome.transfer.references import Reference, ReferenceLike, load_references, pooled_samples
from lumachrome.transfer.reinhard import LabStats, reinhard_ab

__all__ = ["METHODS", "ABTransform", "ColorCorrection", "chain"]

METHODS = ("reinhard", "bands", "histogram", "exemplar")

#: ``(L (h, w) float32, ab (h, w, 2) float32) -> ab (h, w, 2)``: the colorizer's ``ab_transform`` hook.
ABTransform = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _ema(old: BandStats, new: BandStats, m: float) -> BandStats:
    def mix(a, b):
        return m * np.asarray(a) + (1 - m) * np.asarray(b)

    return BandStats(
        centers=new.centers,
        width=new.width,
        mass=mix(old.mass, new.mass),
        mean=mix(old.mean, new.mean),
        std=mix(old.std, new.std),
        cov=mix(old.cov, new.cov),
        quantiles=np.sort(mix(old.quantiles, new.quantiles), axis=1),
        hist=new.hist,
        global_mean=mix(old.global_mean, new.global_mean),
        global_std=mix(old.global_std, new.global_std),
        count=new.count,
    )


@dataclass
class ColorCorrection:
    """Move a colorizer's ``ab`` toward references / a palette (see the module docstring).

    Build it with :meth:`from_references` or :meth:`from_palette`.

    Attributes:
        target: reference statistics per lightness band.
        references: the reference images (needed by ``"exemplar"``; None for a palette).
        method: one of :data:`METHODS`.
        strength: blend in ``[0, 1]``.
        max_gain: bound of the spread gain / quantile-map slope.
        source_momentum: EMA factor of the image statistics across calls (0: per call).
        label: what the correction is toward (for messages).
    """

    target: BandStats
    references: list[Reference] | None = None
    method: str = "bands"
    strength: float = 1.0
    max_gain: float = 3.0
    source_momentum: float = 0.0
    label: str = ""
    _source: BandStats | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown transfer method {self.method!r} (choose from {', '.join(METHODS)})")
        if not (0.0 <= float(self.strength) <= 1.0):
            raise ConfigError(f"strength must be in [0, 1], got {self.strength}")
        if not (0.0 <= float(self.source_momentum) < 1.0):
            raise ConfigError(f"source_momentum must be in [0, 1), got {self.source_momentum}")
        if self.method == "exemplar" and not self.references:
            raise ConfigError("the exemplar method needs colour reference images (--reference), not a palette")

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_references(
        cls,
        references: Sequence[ReferenceLike] | ReferenceLike,
        method: str = "bands",
        strength: float = 1.0,
        **kwargs,
    ) -> "ColorCorrection":
        """From reference images (paths, folders, globs, arrays or :class:`Reference` objects)."""
        refs = load_references(references)
        target = BandStats.from_samples(pooled_samples(refs))
        label = ", ".join(r.name for r in refs[:3]) + (f" (+{len(refs) - 3})" if len(refs) > 3 else "")
        return cls(target=target, references=refs, method=method, strength=strength, label=label, **kwargs)

    @classmethod
    def from_palette(
        cls, palette: Palette | str | os.PathLike, method: str = "histogram", strength: float = 1.0, **kwargs
    ) -> "ColorCorrection":
        """From an era palette (a :class:`~.palette.Palette` or its JSON file)."""
        pal = palette if isinstance(palette, Palette) else Palette.load(palette)
        return cls(target=pal.stats, references=None, method=method, strength=strength, label=pal.name, **kwargs)

    def reset(self) -> None:
        """Forget the accumulated image statistics (start of a new clip)."""
        self._source = None

    # ---------------------------------------------------------------- the hook
    def corrected(self, L: np.ndarray, ab: np.ndarray) -> np.ndarray:
        """The fully corrected ``ab`` (strength 1)."""
        if self.method == "exemplar":
            assert self.references
            return welsh_ab(L, self.references)
        src = BandStats.from_lab(L, ab, centers=self.target.centers, width=self.target.width)
        if self.source_momentum > 0 and self._source is not None:
            src = _ema(self._source, src, self.source_momentum)
        self._source = src
        if self.method == "reinhard":
            t = self.target
            target = LabStats(np.r_[50.0, t.global_mean], np.r_[1.0, t.global_std], float(t.count))
            source = LabStats(np.r_[50.0, src.global_mean], np.r_[1.0, src.global_std], float(src.count))
            return reinhard_ab(L, ab, target, source=source, max_gain=self.max_gain)
        return band_transfer(L, ab, self.target, method=self.method, source=src, max_gain=self.max_gain)

    def __call__(self, L: np.ndarray, ab: np.ndarray) -> np.ndarray:
        """``ab + strength (corrected - ab)``: float32 ``(h, w, 2)``.

        Toward black and white (``L`` below 8 or above 92, linearly) the correction fades back to
        the network's own ``ab``: band statistics give every lightness a colour, but near-black
        letterbox bars and blown highlights should not be tinted by the references.
        """
        ab = np.asarray(ab, np.float32)
        if self.strength == 0.0:
            return ab
        L = np.asarray(L, np.float32)
        out = self.corrected(L, ab)
        taper = np.clip(np.minimum(L, 100.0 - L) / np.float32(8.0), 0.0, 1.0)[..., None]
        out = ab + taper * (out - ab)
        if self.strength < 1.0:
            out = ab + np.float32(self.strength) * (out - ab)
        return out.astype(np.float32)


def chain(*transforms: ABTransform | None) -> ABTransform | None:
    """Compose ``ab`` transforms left to right (None entries skipped); None when there are none."""
    fs = [t for t in transforms if t is not None]
    if not fs:
        return None
    if len(fs) == 1:
        return fs[0]

    def run(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
        for f in fs:
            ab = f(L, ab)
        return ab

    return run
