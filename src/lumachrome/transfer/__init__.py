"""Reference colour transfer: global (Reinhard et al. 2001), per lightness band / ab histogram
matching, exemplar-based colorization (Welsh et al. 2002) and era palettes.

Typical use (a correction hook for the colorizer)::

    from lumachrome.transfer import ColorCorrection
    corr = ColorCorrection.from_references(["ref1950.jpg"], method="bands", strength=0.8)
    rgb = colorizer.colorize_array(gray, ab_transform=corr)
"""

from lumachrome.transfer.correct import METHODS, ABTransform, ColorCorrection, chain
from lumachrome.transfer.exemplar import local_std, welsh_ab
from lumachrome.transfer.local import BandStats, band_transfer, band_weights
from lumachrome.transfer.palette import Palette, build_palette
from lumachrome.transfer.references import Reference, load_references, pooled_samples
from lumachrome.transfer.reinhard import LabStats, lab_stats, reinhard_ab

__all__ = [
    "METHODS",
    "ABTransform",
    "BandStats",
    "ColorCorrection",
    "LabStats",
    "Palette",
    "Reference",
    "band_transfer",
    "band_weights",
    "build_palette",
    "chain",
    "lab_stats",
    "load_references",
    "local_std",
    "pooled_samples",
    "reinhard_ab",
    "welsh_ab",
]
