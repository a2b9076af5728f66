"""U-Net colorizer: raw L ``(B, 1, H, W)`` -> raw ab ``(B, 2, H, W)`` or bin logits ``(B, Q, H, W)``.

The whole network is in this file. Layout for ``widths=(w0, w1, ..., wD)`` (``depth = D + 1``)::

    L_raw -> normalize_l -> pad to a multiple of 2**(depth-1) (reflect)
    enc.0        Stage(1  -> w0)                    full resolution   --skip0--+
    enc.1        MaxPool2 + Stage(w0 -> w1)         1/2               --skip1-+|
    ...                                                                       ||
    bottleneck   MaxPool2 + Stage(w(D-1) -> wD)     1/2**(depth-1)            ||
    dec.0        Up(wD -> w(D-1)), concat skip(D-1), Stage(2 w(D-1) -> w(D-1)) ||
    ...                                                               <-------+|
    dec.(D-1)    Up(w1 -> w0), concat skip0, Stage(2 w0 -> w0)       <--------+
    head         1x1 conv w0 -> 2 (regression) or Q (classification)
    -> crop back to (H, W)

A ``Stage`` is ``blocks`` conv3x3-norm-act units with a residual shortcut around them (a 1x1
projection when the width changes), i.e. a ResNet basic block for ``blocks=2`` (He et al. 2016).
Skip connections concatenate as in Ronneberger et al. 2015.

Heads
-----
* ``regression``: ``ab = denormalize_ab(B * tanh(y / B))`` with ``B = AB_BOUND = 1.1``. This soft
  clamp has slope 1 at 0 (behaves like the plain linear output for ordinary colours, so L1/L2
  losses keep their gradients) and bounds the output to ``|ab| < 1.1 * AB_SCALE = 121``, which
  covers the sRGB gamut (``|a|, |b| <= ~108``) but never produces absurd values.
* ``classification``: logits over ``Q = num_bins`` quantised ab bins (Zhang et al. 2016). The bin
  centres ``ab_centers (Q, 2)`` and the empirical prior ``prior (Q,)`` are buffers (zeros /
  uniform until the trainer calls :meth:`UNetColorizer.set_bins`) so they travel in
  ``model.safetensors``; :meth:`UNetColorizer.predict_ab` decodes with the annealed mean (eq. 5).

Submodule names (``enc.0``, ``bottleneck``, ``dec.0``, ``head``) are stable so visualisation code can
attach forward hooks from outside (:meth:`UNetColorizer.stage_layout` lists them with their
strides). The network works with ``channels_last`` (1.3-2.5x faster on a
2-core CPU for unet_small at 256x256, measured) and bf16 autocast (the head output is returned as float32).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

import torch
from torch import nn

from lumachrome.color.lab import denormalize_ab, normalize_l
from lumachrome.constants import ANNEALED_MEAN_TEMPERATURE
from lumachrome.models.heads import ColorHead, check_choice, check_int
from lumachrome.models.layout import StageLayout, unet_layout
from lumachrome.models.registry import register_model

__all__ = [
    "AB_BOUND",
    "PRESETS",
    "UNetColorizer",
    "count_flops",
    "count_macs",
]

#: Regression outputs are soft-clamped to ``|ab_n| < AB_BOUND`` (network scale), see module doc.
AB_BOUND = 1.1

NORMS = ("batch", "group", "instance", "none")
ACTS = ("relu", "silu", "leaky")
UPSAMPLES = ("bilinear", "transpose", "pixelshuffle")
HEADS = ("regression", "classification")


# --------------------------------------------------------------------------- building blocks


def _group_count(channels: int) -> int:
    """GroupNorm groups: at most 32, at least 4 channels per group, dividing ``channels``."""
    g = max(1, min(32, channels // 4))
    while channels % g:
        g -= 1
    return g


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(_group_count(channels), channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def make_act(kind: str) -> nn.Module:
    if kind == "relu":
        return nn.ReLU()
    if kind == "silu":
        return nn.SiLU()
    return nn.LeakyReLU(0.1)


class ConvUnit(nn.Sequential):
    """conv3x3 -> norm (-> act). The conv has a bias only when there is no norm to absorb it."""

    def __init__(self, cin: int, cout: int, norm: str, act: str | None) -> None:
        layers = OrderedDict(
            conv=nn.Conv2d(cin, cout, 3, padding=1, bias=(norm == "none")),
            norm=make_norm(norm, cout),
        )
        if act is not None:
            layers["act"] = make_act(act)
        super().__init__(layers)


class Stage(nn.Module):
    """``blocks`` conv units with a residual shortcut: ``act(units(x) + shortcut(x))``.

    Shapes: ``(B, cin, h, w) -> (B, cout, h, w)``. With ``dropout > 0`` a ``Dropout2d`` follows the
    first unit (channel dropout, active in train mode only).
    """

    def __init__(
        self, cin: int, cout: int, blocks: int, norm: str, act: str, dropout: float = 0.0
    ) -> None:
        super().__init__()
        units: list[nn.Module] = []
        for i in range(blocks):
            last = i == blocks - 1
            units.append(ConvUnit(cin if i == 0 else cout, cout, norm, None if last else act))
            if i == 0 and dropout > 0:
                units.append(nn.Dropout2d(dropout))
        self.units = nn.Sequential(*units)
        self.shortcut = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1, bias=False)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.units(x) + self.shortcut(x))


class Down(nn.Sequential):
    """2x2 max-pool then a :class:`Stage`: ``(B, cin, h, w) -> (B, cout, h/2, w/2)``."""

    def __init__(self, cin: int, cout: int, blocks: int, norm: str, act: str, dropout: float) -> None:
        super().__init__(
            OrderedDict(pool=nn.MaxPool2d(2), stage=Stage(cin, cout, blocks, norm, act, dropout))
        )


def make_upsample(kind: str, cin: int, cout: int) -> nn.Module:
    """2x upsampling ``(B, cin, h, w) -> (B, cout, 2h, 2w)``.

    * ``bilinear``: bilinear interpolation then a 1x1 conv (no checkerboard artefacts).
    * ``transpose``: 2x2 stride-2 transposed conv.
    * ``pixelshuffle``: 1x1 conv to ``4 cout`` then ``PixelShuffle(2)`` (Shi et al. 2016), with
      ICNR initialisation (Aitken et al. 2017) so it starts as nearest-neighbour upsampling.
    """
    if kind == "bilinear":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(cin, cout, 1),
        )
    if kind == "transpose":
        return nn.ConvTranspose2d(cin, cout, 2, stride=2)
    conv = nn.Conv2d(cin, cout * 4, 1)
    with torch.no_grad():  # ICNR: the 4 sub-pixel filters of each output channel start equal
        w = torch.empty(cout, cin, 1, 1)
        nn.init.kaiming_uniform_(w, a=5**0.5)
        conv.weight.copy_(w.repeat_interleave(4, dim=0))
        conv.bias.copy_(conv.bias.view(cout, 4)[:, :1].expand(cout, 4).reshape(-1))
    return nn.Sequential(conv, nn.PixelShuffle(2))


class Up(nn.Module):
    """Upsample the deeper map, concatenate the skip, then a :class:`Stage`.

    ``x (B, cin, h, w)``, ``skip (B, cout, 2h, 2w)`` -> ``(B, cout, 2h, 2w)``.
    """

    def __init__(
        self, cin: int, cout: int, blocks: int, norm: str, act: str, upsample: str, dropout: float
    ) -> None:
        super().__init__()
        self.up = make_upsample(upsample, cin, cout)
        self.stage = Stage(2 * cout, cout, blocks, norm, act, dropout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.stage(torch.cat((self.up(x), skip), dim=1))


class _GlobalContext(nn.Module):
    """Scene-level FiLM: ``x * (1 + gamma) + beta`` with ``(gamma, beta) = MLP(mean_hw(x))``.

    ``(B, C, h, w) -> (B, C, h, w)``. The output layer starts at zero, so the module starts as the
    identity. The mean is over the (padded) map, which at inference covers the whole image.
    """

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, 2 * channels))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.mlp(x.float().mean(dim=(2, 3))).to(x.dtype).chunk(2, dim=1)
        return x * (1 + gamma[..., None, None]) + beta[..., None, None]


# --------------------------------------------------------------------------- the network


class UNetColorizer(ColorHead, nn.Module):
    """U-Net mapping raw ``L`` to raw ``ab`` (regression) or ab-bin logits (classification).

    Args (all JSON-serialisable; :attr:`args` returns them as stored in ``config.json``):
        widths: encoder stage widths, shallow to deep; ``depth = len(widths)``, the deepest one is the
            bottleneck at ``1 / 2**(depth-1)`` resolution.
        blocks: conv3x3 units per stage (>= 1), wrapped in one residual shortcut.
        norm: ``"batch"``, ``"group"``, ``"instance"`` or ``"none"``.
        act: ``"relu"``, ``"silu"`` or ``"leaky"`` (LeakyReLU 0.1).
        upsample: ``"bilinear"``, ``"transpose"`` or ``"pixelshuffle"``.
        head: ``"regression"`` (2 channels) or ``"classification"`` (``num_bins`` channels).
        num_bins: ``Q``, required > 0 for classification, must be 0 for regression.
        dropout: ``Dropout2d`` probability in the bottleneck and decoder stages (0 disables).
        hint_channels: extra input channels concatenated to ``L`` (user colour hints, Zhang et al.
            2017); 0 (the default) builds the plain ``L -> ab`` network, whose weights are unchanged.
        global_context: hidden width of a global-context branch (0, the default, builds none). The
            bottleneck map is averaged over the whole image, passed through a 2-layer MLP and used
            to scale and shift every bottleneck feature (FiLM, Perez et al. 2018), so each pixel's
            colour can depend on the whole scene, as in the global-feature fusion of Iizuka et al.
            2016, not only on the ~62 px receptive field of the convolutions. The last layer is
            zero-initialised: the branch starts as the identity, so a model fine-tuned from a
            context-free one starts exactly where that one ended.

    Input sizes: any ``H, W``; inputs are reflect-padded (bottom/right) to a multiple of
    ``2**(depth-1)`` and the output is cropped back.
    """

    def __init__(
        self,
        widths: Sequence[int] = (32, 64, 128, 256),
        blocks: int = 2,
        norm: str = "batch",
        act: str = "relu",
        upsample: str = "bilinear",
        head: str = "regression",
        num_bins: int = 0,
        dropout: float = 0.0,
        hint_channels: int = 0,
        global_context: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or not widths:
            raise ValueError(f"widths={widths!r} must be a non-empty list of positive integers")
        widths = tuple(check_int("widths[]", w, 1) for w in widths)
        blocks = check_int("blocks", blocks, 1)
        check_choice("norm", norm, NORMS)
        check_choice("act", act, ACTS)
        check_choice("upsample", upsample, UPSAMPLES)
        check_choice("head", head, HEADS)
        num_bins = check_int("num_bins", num_bins, 0)
        if head == "classification" and num_bins < 1:
            raise ValueError("num_bins must be > 0 for head='classification'")
        if head == "regression" and num_bins != 0:
            raise ValueError(f"num_bins={num_bins} must be 0 for head='regression'")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout={dropout!r} must be a number in [0, 1)")
        hint_channels = check_int("hint_channels", hint_channels, 0)
        global_context = check_int("global_context", global_context, 0)

        self._args = dict(
            widths=list(widths), blocks=blocks, norm=norm, act=act, upsample=upsample,
            head=head, num_bins=num_bins, dropout=float(dropout),
        )  # fmt: skip
        if hint_channels:  # only stored when used: configs of hint-free models stay unchanged
            self._args["hint_channels"] = hint_channels
        if global_context:  # likewise only stored when used
            self._args["global_context"] = global_context
        #: Extra input channels for user colour hints (0: a plain L -> ab colorizer), see ``forward``.
        self.hint_channels = hint_channels
        self.widths = widths
        self.depth = len(widths)
        self.multiple = 2 ** (self.depth - 1)
        self.head_type = head
        self.num_bins = num_bins
        #: Annealed-mean temperature used by :meth:`predict_ab` (set from ``config.json``'s decoding).
        self.default_temperature = ANNEALED_MEAN_TEMPERATURE

        # Encoder (with skips): enc.0 at full resolution, enc.i downsamples first.
        enc: list[nn.Module] = [Stage(1 + hint_channels, widths[0], blocks, norm, act)]
        for i in range(1, self.depth - 1):
            enc.append(Down(widths[i - 1], widths[i], blocks, norm, act, 0.0))
        self.enc = nn.ModuleList(enc)
        # Bottleneck: the deepest width (a plain stage when depth == 1: no down/up sampling).
        if self.depth > 1:
            self.bottleneck = Down(widths[-2], widths[-1], blocks, norm, act, dropout)
        else:
            self.bottleneck = Stage(widths[0], widths[0], blocks, norm, act, dropout)
        #: Optional global-context branch (see ``global_context``): pooled bottleneck -> FiLM.
        self.glob = _GlobalContext(widths[-1], global_context) if global_context else None
        # Decoder: dec.0 is the deepest.
        self.dec = nn.ModuleList(
            Up(widths[i + 1], widths[i], blocks, norm, act, upsample, dropout)
            for i in reversed(range(self.depth - 1))
        )
        self._make_head(widths[0])  # zero-initialised (ColorHead._make_head)

    def stage_layout(self) -> StageLayout:
        """The stages by name and stride, for tools that hook into them (:mod:`lumachrome.models.layout`)."""
        return unet_layout(self)

    # ----------------------------------------------------------------------- forward

    def hint_inputs(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(widened, new)`` tensor names for :func:`lumachrome.train.hints.widen_from`: the first
        stage's input convolutions take ``L`` plus the hint channels; there are no hint-only layers."""
        return ("enc.0.units.0.conv.weight", "enc.0.shortcut.weight"), ()

    def forward(self, L: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """Args: ``L`` raw lightness ``(B, 1, H, W)`` in ``[0, 100]``; ``hints`` (models with
        ``hint_channels > 0`` only) ``(B, hint_channels, H, W)`` network-scale hint maps (for the
        3-channel layout of :mod:`lumachrome.hints`: ``a / 110``, ``b / 110`` at hinted pixels and a
        0/1 mask, zeros elsewhere). ``None`` means "no hints" (all zeros), so a hint model is also an
        automatic colorizer.

        Returns: raw ab ``(B, 2, H, W)`` in ``(-121, 121)`` (regression) or logits ``(B, Q, H, W)``
        (classification); float32 even under bf16 autocast.
        """
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"UNetColorizer: expected L of shape (B, 1, H, W), got {tuple(L.shape)}")
        x = normalize_l(L)
        if self.hint_channels:
            if hints is None:
                hints = x.new_zeros((x.shape[0], self.hint_channels) + tuple(x.shape[-2:]))
            elif hints.dim() != 4 or tuple(hints.shape) != (x.shape[0], self.hint_channels) + tuple(x.shape[-2:]):
                raise ValueError(f"UNetColorizer: expected hints of shape "
                                 f"{(x.shape[0], self.hint_channels) + tuple(x.shape[-2:])}, got {tuple(hints.shape)}")
            x = torch.cat((x, hints.to(x.dtype)), dim=1)
        elif hints is not None:
            raise ValueError("UNetColorizer: this model takes no hints (hint_channels=0)")
        h, w = x.shape[-2:]
        x = self._pad(x)  # ColorHead._pad
        skips = []
        for stage in self.enc:
            x = stage(x)
            skips.append(x)
        x = self.bottleneck(x)
        if self.glob is not None:
            x = self.glob(x)
        for up, skip in zip(self.dec, reversed(skips)):
            x = up(x, skip)
        y = self.head(x)[..., :h, :w].float()
        if self.head_type == "classification":
            return y
        return denormalize_ab(AB_BOUND * torch.tanh(y / AB_BOUND))


# --------------------------------------------------------------------------- cost


def count_macs(model: nn.Module, H: int, W: int, in_channels: int = 1) -> int:
    """Multiply-accumulates of one forward pass on a ``(1, in_channels, H, W)`` input.

    Counts ``Conv2d``, ``ConvTranspose2d`` and ``Linear`` layers only (norms, activations, pooling and
    interpolation are ignored), measured with forward hooks at the sizes actually used (so the
    internal padding of :class:`UNetColorizer` is included):

    * Conv2d: ``out_elements * (in_channels / groups) * kh * kw``
    * ConvTranspose2d: ``in_elements * (out_channels / groups) * kh * kw``
    * Linear: ``out_elements * in_features``
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.ConvTranspose2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += inputs[0].numel() * (module.out_channels // module.groups) * k
        elif isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += output.numel() * (module.in_channels // module.groups) * k
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
    ]
    was_training = model.training
    try:
        p = next(iter(model.parameters()), None)
        x = torch.full(
            (1, in_channels, H, W), 50.0,
            device=p.device if p is not None else "cpu",
            dtype=p.dtype if p is not None else torch.float32,
        )  # fmt: skip
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total


def count_flops(model: nn.Module, H: int, W: int, in_channels: int = 1) -> int:
    """FLOPs of one forward pass on a ``(1, in_channels, H, W)`` input, defined as ``2 * MACs``
    (see :func:`count_macs`). GFLOPs = ``count_flops(...) / 1e9``."""
    return 2 * count_macs(model, H, W, in_channels)


# --------------------------------------------------------------------------- registered factories

#: Named configurations (any argument can be overridden, e.g. ``head="classification"``).
#: Regression head; FLOPs = 2 * MACs of one 256x256 image (``count_flops``). The plain ``"unet"``
#: default (widths 32..256, depth 4) has 1.88M parameters and 19.4 GFLOPs.
PRESETS: dict[str, dict[str, Any]] = {
    "unet_tiny": dict(widths=[16, 32, 64, 128], blocks=2),  # 0.47M params, 4.9 GFLOPs (tests, CPU demos)
    "unet_small": dict(widths=[32, 64, 128, 256, 256], blocks=2),  # 5.0M params, 24.0 GFLOPs
    "unet_base": dict(widths=[64, 128, 256, 512, 512], blocks=2),  # 20.1M params, 95.9 GFLOPs
}


@register_model("unet")
def unet(**args: Any) -> UNetColorizer:
    """Generic U-Net colorizer: ``UNetColorizer(**args)``."""
    return UNetColorizer(**args)


def _preset(name: str):
    def factory(**overrides: Any) -> UNetColorizer:
        return UNetColorizer(**{**PRESETS[name], **overrides})

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"Preset {name}: UNetColorizer({PRESETS[name]}), arguments may be overridden."
    return register_model(name)(factory)


unet_tiny = _preset("unet_tiny")
unet_small = _preset("unet_small")
unet_base = _preset("unet_base")
