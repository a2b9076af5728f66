"""The numbers behind the explain report: what an encoder-decoder colorizer computes, stage by stage.

Everything here works on the model's *working resolution* (the lightness the network really sees,
:meth:`lumachrome.colorizer.Colorizer.network_input`) and on any network that describes its stages
with ``stage_layout()`` (:class:`lumachrome.models.layout.StageLayout`: submodule names and strides
of the encoder stages, bottleneck, decoder stages and head, which encoder stage feeds which decoder
stage, the scene-context module; forward hooks attach to those names from outside). The U-Net
(``enc.i``, ``bottleneck``, ``dec.i``, ``head``) and the EfficientNet U-Net (``encoder.blocks.i``,
``bottleneck``, ``dec.i``, ``head``) both do; a module without ``stage_layout`` but with the U-Net's
``enc``, ``bottleneck``, ``dec`` and ``head`` children is read as a U-Net.

* :class:`Network` - one forward pass with captured stage outputs, optional ablations (a skip
  connection or the bottleneck replaced by its per-channel spatial mean, or by zeros; the
  scene-context branch made the identity) and the decoded ``ab`` for both heads.
* :func:`entropy_bits` - per-pixel entropy of the ab-bin distribution (classification models).
* :func:`input_gradient` - how strongly each input pixel moves a chosen output (the *effective*
  receptive field, Luo et al. 2016, "Understanding the Effective Receptive Field in Deep CNNs"); its
  non-zero support is the theoretical receptive field clipped to the image.
* :func:`top_channels` - the most active feature maps of a layer.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lumachrome.constants import ANNEALED_MEAN_TEMPERATURE
from lumachrome.errors import ConfigError, ModelError
from lumachrome.models.layout import StageLayout, unet_layout

__all__ = [
    "ABLATION_MODES",
    "Network",
    "Pass",
    "entropy_bits",
    "input_gradient",
    "top_channels",
]

#: How an ablated path is switched off: ``mean`` keeps each channel's spatial mean (the path's
#: statistics survive, its spatial information does not; BatchNorm downstream sees ordinary values),
#: ``zero`` sends zeros.
ABLATION_MODES = ("mean", "zero")


@dataclass
class Pass:
    """One forward pass: ``ab`` ``(1, 2, h, w)`` raw, ``logits`` ``(1, Q, h, w)`` or None, captured outputs."""

    ab: torch.Tensor
    logits: torch.Tensor | None
    features: dict[str, torch.Tensor] = field(default_factory=dict)


class Network:
    """A colorizer seen from outside through the stage names of its :class:`StageLayout`.

    Args:
        model: a lumachrome colorizer with ``stage_layout()`` (:class:`~lumachrome.models.unet.UNetColorizer`,
            :class:`~lumachrome.models.effnet.EffUNetColorizer`), or any module with ``enc``,
            ``bottleneck``, ``dec`` and ``head`` children (read as a U-Net); ``head_type`` and, for
            classification, ``ab_centers``.
        temperature: annealed-mean temperature for classification models (default: the model's).

    Raises:
        ModelError: the model has no stage layout and is not a U-Net with those submodules.
    """

    def __init__(self, model: nn.Module, temperature: float | None = None) -> None:
        describe = getattr(model, "stage_layout", None)
        if callable(describe):
            layout = describe()
        else:
            missing = [n for n in ("enc", "bottleneck", "dec", "head") if not hasattr(model, n)]
            if missing:
                raise ModelError(
                    f"explain: {type(model).__name__} is not a lumachrome U-Net (no {', '.join(missing)} submodule)"
                )
            layout = unet_layout(model)
        self.model = model
        self.layout: StageLayout = layout
        self.head_type = str(getattr(model, "head_type", "regression"))
        self.depth = int(getattr(model, "depth", len(layout.decoder) + 1))
        if self.head_type == "classification":
            self.centers = model.ab_centers.detach().float()
            if not torch.any(self.centers != 0):
                raise ModelError("explain: classification model without ab bin centres (ab_centers is all zero)")
        else:
            self.centers = None
        t = temperature if temperature is not None else getattr(model, "default_temperature", ANNEALED_MEAN_TEMPERATURE)
        self.temperature = float(t)
        self._modules = dict(model.named_modules())

    # ---------------------------------------------------------------- names
    @property
    def is_classification(self) -> bool:
        return self.head_type == "classification"

    @property
    def num_bins(self) -> int:
        return 0 if self.centers is None else int(self.centers.shape[0])

    def decoder_stages(self) -> list[str]:
        """Coarse to fine: ``bottleneck``, then the decoder stages deepest first (U-Net: ``dec.0`` ...
        ``dec.{D-2}``, the last at full resolution)."""
        return [self.layout.bottleneck.name] + [s.name for s in self.layout.decoder]

    def encoder_stages(self) -> list[str]:
        """The encoder stages whose outputs the decoder uses, shallow to deep."""
        return [s.name for s in self.layout.encoder]

    def probe_stages(self) -> list[str]:
        """Stages that get a linear probe: the decoder stages, preceded by the encoder stages when the
        layout asks for them (a pretrained encoder: how much colour do its features carry?)."""
        return (self.encoder_stages() if self.layout.probe_encoder else []) + self.decoder_stages()

    def skips(self) -> list[tuple[str, str]]:
        """``(skip, receiving decoder stage)``, shallow first (U-Net: ``enc.i`` feeds ``dec.{D-2-i}``)."""
        return list(self.layout.skips)

    def ablations(self) -> list[str]:
        """What can be switched off: every skip connection (``skip:<encoder stage>``), the bottleneck
        and, for models with a global-context branch, ``glob`` (the branch made the identity: no scene
        context)."""
        names = [f"skip:{s}" for s, _ in self.skips()] + ([self.layout.bottleneck.name] if self.layout.decoder else [])
        return names + (["glob"] if self.layout.context is not None else [])

    def default_layers(self) -> list[str]:
        """Layers whose feature maps the report shows: first encoder stage, bottleneck, first and last decoder stage."""
        dec = [s.name for s in self.layout.decoder]
        return [s.name for s in self.layout.encoder[:1]] + [self.layout.bottleneck.name] + dec[:1] + dec[1:][-1:]

    def layer_names(self) -> list[str]:
        """Every named submodule (the valid ``layers``)."""
        return [n for n in self._modules if n]

    def check_layers(self, layers: Sequence[str]) -> list[str]:
        bad = [n for n in layers if n not in self._modules or not n]
        if bad:
            top = ", ".join(self.default_layers() + [self.layout.head.name])
            raise ConfigError(f"explain: unknown layer(s) {', '.join(bad)} (e.g. {top}; any submodule name of the model)")
        return list(layers)

    def stride(self, name: str) -> int:
        """Downsampling factor of a stage output relative to the input (1 for names that are no stage)."""
        return self.layout.stride(name) or 1

    # ---------------------------------------------------------------- forward passes
    def decode(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Head output -> ``(ab, logits or None)`` (annealed mean for classification, Zhang et al. 2016 eq. 5)."""
        if not self.is_classification:
            return out, None
        from lumachrome.color.bins import annealed_mean

        return annealed_mean(out, self.centers.to(out), self.temperature), out

    @contextmanager
    def _hooks(self, capture: Sequence[str], ablate: str | None, mode: str, store: dict) -> Iterator[None]:
        if mode not in ABLATION_MODES:
            raise ConfigError(f"explain: ablation mode {mode!r}: use one of {', '.join(ABLATION_MODES)}")
        handles = []

        def off(t: torch.Tensor) -> torch.Tensor:
            if mode == "zero":
                return torch.zeros_like(t)
            return t.mean(dim=(2, 3), keepdim=True).expand_as(t).contiguous()

        try:
            for name in capture:
                def keep(_m, _i, out, name=name):
                    store[name] = out
                handles.append(self._modules[name].register_forward_hook(keep))
            if ablate is not None:
                if ablate == self.layout.bottleneck.name:
                    handles.append(self._modules[ablate].register_forward_hook(lambda _m, _i, out: off(out)))
                elif ablate == "glob" and self.layout.context is not None:  # FiLM off: its output is its input
                    handles.append(self._modules[self.layout.context].register_forward_hook(lambda _m, args, _out: args[0]))
                elif ablate.startswith("skip:"):
                    receiver = dict(self.skips()).get(ablate[5:])
                    if receiver is None:
                        raise ConfigError(f"explain: unknown ablation {ablate!r} (use {', '.join(self.ablations())})")
                    handles.append(
                        self._modules[receiver].register_forward_pre_hook(lambda _m, args: (args[0], off(args[1])))
                    )
                else:
                    raise ConfigError(f"explain: unknown ablation {ablate!r} (use {', '.join(self.ablations())})")
            yield
        finally:
            for h in handles:
                h.remove()

    def run(
        self, L: torch.Tensor, capture: Sequence[str] = (), *, ablate: str | None = None, mode: str = "mean"
    ) -> Pass:
        """Forward ``L`` ``(1, 1, h, w)`` raw lightness without gradients; capture stage outputs (detached)."""
        store: dict[str, torch.Tensor] = {}
        was = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), self._hooks(capture, ablate, mode, store):
                out = self.model(L.to(self._device()))
        finally:
            self.model.train(was)
        ab, logits = self.decode(out)
        feats = {k: (v[0] if isinstance(v, tuple) else v).detach().float() for k, v in store.items()}
        return Pass(ab=ab.detach().float(), logits=None if logits is None else logits.detach().float(), features=feats)

    def _device(self) -> torch.device:
        p = next(iter(self.model.parameters()), None)
        return p.device if p is not None else torch.device("cpu")


# -------------------------------------------------------------------------------------------
# per-pixel quantities
# -------------------------------------------------------------------------------------------
def entropy_bits(logits: torch.Tensor) -> np.ndarray:
    """Per-pixel entropy ``-sum_q p_q log2 p_q`` of ``softmax(logits)`` (T = 1): ``(h, w)`` float32.

    0 bits: all the probability in one bin; ``log2(Q)`` (8.03 bits for 262 bins): uniform.
    """
    logp = torch.log_softmax(logits.float(), dim=1)
    h = -(logp.exp() * logp).sum(dim=1) / math.log(2.0)
    return h[0].cpu().numpy().astype(np.float32)


def top_channels(feature: torch.Tensor, k: int) -> list[tuple[int, float]]:
    """The ``k`` channels of ``feature`` ``(C, h, w)`` (or ``(1, C, h, w)``) with the highest mean
    activation, as ``(channel, mean)`` pairs, most active first."""
    f = feature[0] if feature.dim() == 4 else feature
    means = f.float().mean(dim=(1, 2))
    k = max(0, min(int(k), means.numel()))
    vals, idx = torch.topk(means, k)
    return [(int(i), float(v)) for i, v in zip(idx, vals)]


class _Stop(Exception):
    """Raised by a forward hook once the target of :func:`input_gradient` is computed."""


def input_gradient(net: Network, L: torch.Tensor, target: str, y: int, x: int) -> np.ndarray:
    """``|d target / d L|`` over the input, ``(h, w)`` float32 (>= 0).

    ``target`` is ``"output"`` (the decoded ``a`` and ``b`` at pixel ``(y, x)``: the two gradient maps
    are combined as ``sqrt(ga^2 + gb^2)``) or a submodule name (its feature vector at the location of
    ``(y, x)`` in that stage's grid: gradient of ``sum(v^2) / 2``; when every unit is zero there, the
    3x3 cells around it). Pixels that cannot influence the
    target get exactly 0, so the non-zero support is the theoretical receptive field.

    Only what the target needs is computed: the forward pass stops at a submodule target, and for
    ``"output"`` of a network whose 1x1 head works at full resolution (the U-Net) the head runs on the
    one pixel (its input is cropped by a pre-hook; the padding of the U-Net is bottom/right only, so
    the pixel keeps its coordinates). A head at a coarser stride (the EfficientNet U-Net's, at 1/2,
    upsampled after it) runs on the whole map and the pixel is taken from the output.
    """
    model = net.model
    was = model.training
    model.eval()
    store: dict[str, torch.Tensor] = {}
    inp = L.detach().to(net._device()).clone().requires_grad_(True)
    handles = []

    def stop(_m, _i, out):
        store["t"] = out[0] if isinstance(out, tuple) else out
        raise _Stop

    try:
        with torch.enable_grad():
            if target == "output":
                head = net.layout.head
                oy, ox = y, x  # the pixel in the output
                if head.stride == 1:
                    handles.append(net._modules[head.name].register_forward_pre_hook(
                        lambda _m, args: (args[0][:, :, y : y + 1, x : x + 1],) + tuple(args[1:])))
                    oy = ox = 0  # the output is (1, 2, 1, 1): the pixel itself
                ab, _ = net.decode(model(inp))
                ga = torch.autograd.grad(ab[0, 0, oy, ox], inp, retain_graph=True)[0]
                gb = torch.autograd.grad(ab[0, 1, oy, ox], inp)[0]
                g = torch.sqrt(ga * ga + gb * gb)
            else:
                handles.append(net._modules[target].register_forward_hook(stop))
                try:
                    model(inp)
                except _Stop:
                    pass
                feat = store["t"]
                h, w = inp.shape[-2:]
                fy = min(feat.shape[-2] - 1, int(y * feat.shape[-2] / h))
                fx = min(feat.shape[-1] - 1, int(x * feat.shape[-1] / w))
                v = feat[0, :, fy, fx]
                if not bool(torch.any(v != 0)):  # every unit is off here (ReLU): use the 3x3 cells around it
                    v = feat[0, :, max(0, fy - 1) : fy + 2, max(0, fx - 1) : fx + 2]
                g = torch.autograd.grad(0.5 * (v * v).sum(), inp)[0].abs()
    finally:
        for hd in handles:
            hd.remove()
        model.train(was)
    return g[0, 0].detach().float().cpu().numpy()


def receptive_box(grad: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(y0, x0, y1, x1)`` (exclusive ends) of the non-zero support of ``grad``, or None when all zero."""
    ys, xs = np.nonzero(grad > 0)
    if ys.size == 0:
        return None
    return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1


def mass_radius(grad: np.ndarray, y: int, x: int, fraction: float = 0.9) -> float:
    """Radius (px) of the disc around ``(y, x)`` that holds ``fraction`` of the gradient mass (nan if none)."""
    total = float(grad.sum())
    if total <= 0:
        return float("nan")
    yy, xx = np.indices(grad.shape)
    r = np.hypot(yy - y, xx - x).ravel()
    order = np.argsort(r, kind="stable")
    cum = np.cumsum(grad.ravel()[order], dtype=np.float64)
    i = int(np.searchsorted(cum, fraction * total))
    return float(r[order[min(i, r.size - 1)]])


def downsample_to(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-average ``(B, C, h, w)`` to ``size`` (identity when equal)."""
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    return F.interpolate(t, size=size, mode="area")
