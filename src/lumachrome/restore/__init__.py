"""Old photographs: preparation of damaged prints (:mod:`.prepare`) and the aging function
(:mod:`.degrade`) used for tests, documentation examples and training augmentation."""

from lumachrome.color.lab import gray_from_lightness, lightness
from lumachrome.restore.degrade import TINTS, Aging, degrade, degrade_lightness, random_aging, tone
from lumachrome.restore.prepare import (
    PrepareOptions,
    Prepared,
    Step,
    Tint,
    before_after,
    denoise,
    detect_defects,
    detect_tint,
    estimate_noise,
    inpaint,
    local_contrast,
    normalize_levels,
    prepare,
    remove_defects,
)

__all__ = [
    "TINTS",
    "Aging",
    "PrepareOptions",
    "Prepared",
    "Step",
    "Tint",
    "before_after",
    "degrade",
    "degrade_lightness",
    "denoise",
    "detect_defects",
    "detect_tint",
    "estimate_noise",
    "gray_from_lightness",
    "inpaint",
    "lightness",
    "local_contrast",
    "normalize_levels",
    "prepare",
    "random_aging",
    "remove_defects",
    "tone",
]
