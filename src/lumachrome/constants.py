"""Numbers the whole package agrees on, each defined once.

* :data:`ANNEALED_MEAN_TEMPERATURE`: the temperature ``T`` of the annealed mean that decodes a
  classification head's bin probabilities into ``ab`` (Zhang et al. 2016, Sec. 2.3: ``T = 0.38``); the
  default of every model, config and ONNX graph that has no temperature of its own.
* :data:`REC601_LUMA`: the Rec. 601 luma weights (R, G, B) on gamma-encoded values, as OpenCV's
  ``COLOR_RGB2GRAY``: how an RGB image becomes the one channel of a 1-channel image-to-image model and
  of a line drawing. (The colorizers use CIE ``L`` instead, :mod:`lumachrome.color.lab`.)
"""

from __future__ import annotations

__all__ = ["ANNEALED_MEAN_TEMPERATURE", "REC601_LUMA"]

#: Annealed-mean decoding temperature (Zhang et al. 2016: T = 0.38).
ANNEALED_MEAN_TEMPERATURE = 0.38
#: Rec. 601 luma weights of R, G and B (OpenCV's RGB -> gray).
REC601_LUMA = (0.299, 0.587, 0.114)
