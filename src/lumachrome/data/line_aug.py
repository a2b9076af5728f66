"""Line-art augmentation for paired sketch training (``data.line_aug``): the A (line) side only.

Synthesised and drawn line art differ from the drawings users bring in line weight, ink darkness and
registration: OpenMoji strokes are ~3 px at 96 px, Canny edges 1 px, XDoG lines anything between,
and a drawing coloured by hand never sits exactly on its colours. :class:`LineAugment` varies those
on the line image of each training pair, so that the generator cannot key on one line style or on
pixel-exact alignment; the colour target is never touched.

For a batch ``(b, 1, s, s)`` of line images in ``[-1, 1]`` (white paper 1, black ink -1), per image,
with ``ink = 1 - paper`` in ``[0, 1]``:

1. **thickness**: the half-width of every line changes by ``t`` px, drawn uniformly from
   ``{-T, ..., -0.5, 0, 0.5, ..., T}`` (``T`` = ``thickness``, steps of 0.5 px): the ink is upsampled
   2x (nearest: pixel-exact), grown (``t > 0``: max filter) or shrunk (``t < 0``: min filter) by ``2|t|`` px there,
   and averaged back down. ``t = 0`` leaves the image as it is. Thinning by 0.5 px lightens a 1 px
   line rather than deleting it.
2. **jitter**: the line image moves against its colour target by a random offset of up to
   ``shift`` px per axis plus a smooth random displacement field of up to ``elastic`` px
   (``elastic_cells`` x ``elastic_cells`` random control vectors, bicubically interpolated), bilinear
   resampling; paper (white) comes in at the border.
3. **darkness / contrast**: the ink is scaled by ``d`` uniform in ``[1 - darkness, 1]`` (grey pencil
   to black ink), then the paper value ``p`` becomes ``p ** g`` with ``log g`` uniform in
   ``[-log gamma, log gamma]`` (darker or lighter anti-aliased edges; paper and full ink stay).

All draws come from the generator given to :meth:`LineAugment.draw`, for the whole (global) batch at
once, so a run is deterministic under its seed and every rank of a distributed run can take its
slice of the same draw. With every amplitude 0 the output equals the input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lumachrome.constants import LINE_AUG_LIMITS
from lumachrome.errors import ConfigError

__all__ = ["LINE_AUG_LIMITS", "LineAugment"]


@dataclass(frozen=True)
class LineAugment:
    """Random line thickness, jitter and darkness for line images (see the module doc)."""

    thickness: float = 1.0  # max change of the line half-width, px (steps of 0.5 px, both ways)
    shift: float = 2.0  # max offset of the whole line image per axis, px
    elastic: float = 1.0  # max amplitude of the smooth displacement field, px
    darkness: float = 0.3  # the ink keeps between (1 - darkness) and all of its darkness
    gamma: float = 1.5  # paper values p -> p ** g, g in [1/gamma, gamma] (log-uniform)
    elastic_cells: int = 4  # control vectors per side of the displacement field

    def __post_init__(self) -> None:
        for name, (lo, hi) in LINE_AUG_LIMITS.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
                raise ConfigError(f"line augmentation: {name} must be a number in [{lo:g}, {hi:g}], got {v!r}")
        if not float(self.elastic_cells).is_integer():
            raise ConfigError(f"line augmentation: elastic_cells must be an integer, got {self.elastic_cells!r}")

    @property
    def steps(self) -> int:
        """Number of 0.5 px thickness steps each way."""
        return int(math.floor(2 * self.thickness + 1e-9))

    def draw(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Random parameters for ``n`` images (CPU tensors, first dimension ``n``)."""
        k, c = self.steps, int(self.elastic_cells)
        return {
            "t": (torch.randint(-k, k + 1, (n,), generator=generator) if k else torch.zeros(n, dtype=torch.long)),
            "shift": (torch.rand(n, 2, generator=generator) * 2 - 1) * self.shift,
            "field": (torch.rand(n, 2, c, c, generator=generator) * 2 - 1) * self.elastic,
            "dark": 1.0 - torch.rand(n, generator=generator) * self.darkness,
            "gamma": torch.exp((torch.rand(n, generator=generator) * 2 - 1) * math.log(self.gamma)),
        }

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Augment line images ``x`` ``(b, 1, s, s)`` in ``[-1, 1]`` with the parameters of :meth:`draw`."""
        if x.dim() != 4 or x.shape[1] != 1:
            raise ConfigError(f"line augmentation works on one-channel line images (b, 1, s, s), got {list(x.shape)}")
        if int(params["t"].shape[0]) != x.shape[0]:
            raise ConfigError(f"line augmentation: {params['t'].shape[0]} parameter sets for {x.shape[0]} images")
        dev = x.device
        ink = ((1.0 - x.float()) * 0.5).clamp(0.0, 1.0)
        ink = self._thickness(ink, params["t"].to(dev))
        if self.shift > 0 or self.elastic > 0:
            ink = self._warp(ink, params["shift"].to(dev), params["field"].to(dev))
        ink = ink * params["dark"].to(dev).view(-1, 1, 1, 1)
        paper = (1.0 - ink).clamp(0.0, 1.0) ** params["gamma"].to(dev).view(-1, 1, 1, 1)
        return (paper * 2.0 - 1.0).to(x.dtype)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.apply(x, self.draw(int(x.shape[0]), generator))

    @staticmethod
    def _thickness(ink: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = ink.clone()
        for step in sorted({int(v) for v in t.tolist()} - {0}):
            rows = (t == step).nonzero().flatten()
            sub = F.interpolate(ink.index_select(0, rows), scale_factor=2, mode="nearest")
            r = abs(step)  # 0.5 px steps at 1x are 1 px at 2x
            if step > 0:
                sub = F.max_pool2d(sub, 2 * r + 1, stride=1, padding=r)
            else:
                shrunk = -F.max_pool2d(-sub, 2 * r + 1, stride=1, padding=r)
                # strokes the shrinking removes entirely (thinner than 2 r there) are kept as they are:
                # where the opening (shrink, then grow back) holds less than half the ink, keep the ink
                opened = F.max_pool2d(shrunk, 2 * r + 1, stride=1, padding=r)
                sub = torch.where(opened < 0.5 * sub, sub, shrunk)
            out[rows] = F.avg_pool2d(sub, 2)
        return out

    @staticmethod
    def _warp(ink: torch.Tensor, shift: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
        b, _, h, w = ink.shape
        ys = (torch.arange(h, device=ink.device, dtype=torch.float32) + 0.5) / h * 2 - 1
        xs = (torch.arange(w, device=ink.device, dtype=torch.float32) + 0.5) / w * 2 - 1
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        amp = field.abs().amax(dim=(1, 2, 3), keepdim=True)  # bicubic overshoot stays within the control values
        disp = F.interpolate(field.float(), size=(h, w), mode="bicubic", align_corners=True)  # (b, 2, h, w) px
        disp = torch.maximum(torch.minimum(disp, amp), -amp)
        disp = disp + shift.float().view(b, 2, 1, 1)
        # px -> normalised coordinates; the image content moves by +disp, so sample at -disp
        grid = torch.stack([gx - disp[:, 0] * 2.0 / w, gy - disp[:, 1] * 2.0 / h], dim=-1)
        return F.grid_sample(ink, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
