"""What every L -> ab colorizer of :mod:`lumachrome.models` shares: its argument checks and its two
heads (regression: raw ab; classification: logits over quantised ab bins, decoded by the annealed
mean of Zhang et al. 2016, eq. 5).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from lumachrome.errors import ModelError

__all__ = ["ColorHead", "check_choice", "check_int"]


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``; ValueError naming the argument otherwise."""
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int if it is an integer >= ``minimum`` (bools refused); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


class ColorHead:
    """Mixin for colorizer modules with ``head_type`` (``"regression"`` / ``"classification"``),
    ``num_bins``, ``default_temperature``, ``multiple`` (the input padding step) and, for classification, the ``ab_centers`` ``(Q, 2)`` and
    ``prior`` ``(Q,)`` buffers."""

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """Pad ``x`` bottom/right to multiples of :attr:`multiple` (reflect; replicate when the padding
        is not smaller than the size, which reflect cannot do). The network crops its output back."""
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode=mode)
        return x

    def _make_head(self, channels: int) -> None:
        """The 1x1 output conv (2 channels, or ``num_bins`` logits), zero-initialised: the untrained
        model predicts grey (regression) or the uniform distribution over bins (classification) instead
        of saturated random colours; classification also gets its ``ab_centers`` / ``prior`` buffers."""
        self.head = nn.Conv2d(channels, 2 if self.head_type == "regression" else self.num_bins, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        if self.head_type == "classification":
            self.register_buffer("ab_centers", torch.zeros(self.num_bins, 2))
            self.register_buffer("prior", torch.full((self.num_bins,), 1.0 / self.num_bins))

    @property
    def args(self) -> dict[str, Any]:
        """The constructor arguments, JSON-ready (what ``config.json`` stores as ``args``)."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self._args.items()}

    def predict_ab(self, L: torch.Tensor, temperature: float | None = None,
                   hints: torch.Tensor | None = None) -> torch.Tensor:
        """Raw ab ``(B, 2, H, W)`` for both heads (``hints``: see the model's ``forward``).

        Classification decodes the logits with the annealed mean (Zhang et al. 2016, eq. 5) over
        ``ab_centers`` at ``temperature`` (default :attr:`default_temperature`). Gradients flow; wrap
        in ``torch.no_grad()`` for inference.
        """
        out = self(L) if hints is None else self(L, hints)
        if self.head_type == "regression":
            return out
        from lumachrome.color.bins import annealed_mean

        t = self.default_temperature if temperature is None else temperature
        return annealed_mean(out, self.ab_centers.float(), t)

    @torch.no_grad()
    def set_bins(self, centers: torch.Tensor, prior: torch.Tensor | None = None) -> None:
        """Store the ab bin centres ``(Q, 2)`` (raw ab) and optionally the empirical prior ``(Q,)``."""
        if self.head_type != "classification":
            raise ModelError("set_bins: this is a regression model (head='regression'), it has no bins")
        centers = torch.as_tensor(centers)
        if tuple(centers.shape) != (self.num_bins, 2):
            raise ModelError(
                f"set_bins: centers have shape {tuple(centers.shape)}, model expects ({self.num_bins}, 2)"
            )
        self.ab_centers.copy_(centers)
        if prior is not None:
            prior = torch.as_tensor(prior)
            if tuple(prior.shape) != (self.num_bins,):
                raise ModelError(
                    f"set_bins: prior has shape {tuple(prior.shape)}, model expects ({self.num_bins},)"
                )
            self.prior.copy_(prior)
