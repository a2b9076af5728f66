"""Numbers the whole package agrees on, each defined once.

* :data:`ANNEALED_MEAN_TEMPERATURE`: the temperature ``T`` of the annealed mean that decodes a
  classification head's bin probabilities into ``ab`` (Zhang et al. 2016, Sec. 2.3: ``T = 0.38``); the
  default of every model, config and ONNX graph that has no temperature of its own.
* :data:`REC601_LUMA`: the Rec. 601 luma weights (R, G, B) on gamma-encoded values, as OpenCV's
  ``COLOR_RGB2GRAY``: how an RGB image becomes the one channel of a 1-channel image-to-image model and
  of a line drawing. (The colorizers use CIE ``L`` instead, :mod:`lumachrome.color.lab`.)
* :data:`LINE_AUG_LIMITS`: the accepted range of each line-augmentation parameter, checked by
  :class:`lumachrome.data.line_aug.LineAugment` and by the training config (``data.line_*``) alike.
"""

from __future__ import annotations

__all__ = ["ANNEALED_MEAN_TEMPERATURE", "LINE_AUG_LIMITS", "REC601_LUMA"]

#: Annealed-mean decoding temperature (Zhang et al. 2016: T = 0.38).
ANNEALED_MEAN_TEMPERATURE = 0.38
#: Rec. 601 luma weights of R, G and B (OpenCV's RGB -> gray).
REC601_LUMA = (0.299, 0.587, 0.114)
#: Accepted ranges ``(low, high)`` of the line-augmentation parameters (both inclusive; ``darkness`` stays
#: below 1 so some ink is always left).
LINE_AUG_LIMITS = {"thickness": (0.0, 3.0), "shift": (0.0, 8.0), "elastic": (0.0, 4.0), "darkness": (0.0, 0.95),
                   "gamma": (1.0, 4.0), "elastic_cells": (2, 16)}
