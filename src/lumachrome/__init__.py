"""lumachrome: automatic colorization (L -> ab in CIE Lab) with PyTorch."""

__version__ = "0.1.0"

from lumachrome.errors import LumachromeError  # noqa: E402

__all__ = ["LumachromeError", "__version__"]
