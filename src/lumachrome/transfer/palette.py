"""Era palettes: the ab distribution of a set of period colour references, stored as JSON.

Plausible colour is not period colour: a 1950s Kodachrome street, a 1930s autochrome portrait and
a 2010s phone photo of the same scene differ in their palette. ``lumachrome palette build
REFS... -o era.json`` learns, from a set of colour references of one era, the ab distribution per
lightness band (:class:`~.local.BandStats`: weights, mean, covariance, 49 quantiles of ``a`` and
``b``, a 22x22 ab histogram per band); ``lumachrome colorize --palette era.json`` moves a model's
colours toward it (per-band histogram matching by default, see :func:`~.local.band_transfer`).

The file is plain JSON (no pickle: palettes can be shared safely)::

    {"format": "lumachrome-palette", "format_version": 1, "name": "...",
     "sources": ["a.jpg", ...], "n_images": 12, "stats": {<BandStats.to_dict()>}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lumachrome.atomic import atomic_write_text
from lumachrome.errors import ConfigError
from lumachrome.transfer.local import DEFAULT_CENTERS, DEFAULT_WIDTH, BandStats
from lumachrome.transfer.references import ReferenceLike, load_references, pooled_samples

__all__ = ["PALETTE_FORMAT", "Palette", "build_palette"]

PALETTE_FORMAT = "lumachrome-palette"
PALETTE_VERSION = 1


@dataclass
class Palette:
    """An era palette: per-band ab statistics plus where they came from."""

    stats: BandStats
    name: str = "palette"
    sources: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PALETTE_FORMAT,
            "format_version": PALETTE_VERSION,
            "name": self.name,
            "n_images": len(self.sources),
            "sources": list(self.sources),
            "stats": self.stats.to_dict(),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the palette as JSON (atomically: temporary file + rename)."""
        path = Path(path)
        text = json.dumps(self.to_json(), separators=(",", ":")) + "\n"
        try:
            atomic_write_text(path, text, error=None)
        except OSError as e:
            raise ConfigError(f"{path}: cannot write the palette: {e.strerror or e}") from None
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Palette":
        """Read a palette file; ``ConfigError`` (one line, naming the file) when it is not one."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: palette file not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read the palette: {e}") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not a palette (invalid JSON at line {e.lineno})") from None
        if not isinstance(data, dict) or data.get("format") != PALETTE_FORMAT:
            raise ConfigError(f"{path}: not a lumachrome palette (missing \"format\": \"{PALETTE_FORMAT}\")")
        if data.get("format_version") != PALETTE_VERSION:
            raise ConfigError(f"{path}: palette format_version {data.get('format_version')!r} is not supported")
        try:
            stats = BandStats.from_dict(data["stats"])
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"{path}: malformed palette statistics ({e})") from None
        return cls(stats=stats, name=str(data.get("name") or path.stem), sources=list(data.get("sources") or []))

    def describe(self) -> str:
        """A few lines: name, sources, mean ab and chroma per band."""
        lines = [f"palette {self.name!r}: {len(self.sources)} reference image(s), {self.stats.count} pixels"]
        for k, c in enumerate(self.stats.centers):
            a, b = self.stats.mean[k]
            lines.append(
                f"  L~{c:4.0f}: weight {self.stats.mass[k]:.2f}, mean a {a:+6.1f} b {b:+6.1f}, "
                f"std {self.stats.std[k][0]:.1f}/{self.stats.std[k][1]:.1f}"
            )
        return "\n".join(lines)


def build_palette(
    references: Sequence[ReferenceLike] | ReferenceLike,
    name: str | None = None,
    *,
    centers: Sequence[float] = DEFAULT_CENTERS,
    width: float = DEFAULT_WIDTH,
    per_reference: int = 65_536,
) -> Palette:
    """Learn a palette from colour references (files, folders, globs or arrays).

    Every reference contributes at most ``per_reference`` pixels (equal weight per image).

    Raises:
        ImageError: unreadable or gray reference; ConfigError: none given.
    """
    refs = load_references(references)
    samples = pooled_samples(refs, per_reference=per_reference)
    stats = BandStats.from_samples(samples, centers=np.asarray(centers, np.float64), width=width)
    return Palette(stats=stats, name=name or "palette", sources=[r.name for r in refs])
