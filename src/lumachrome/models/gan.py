"""Image-to-image generators and the PatchGAN discriminator (pix2pix and CycleGAN).

Registered architectures (``lumachrome.models.create_model(name, **args)``):

* ``resnet_gen``: :class:`ResnetGenerator`, the CycleGAN generator (Zhu et al. 2017, appendix 7.2,
  after Johnson et al. 2016): ``c7s1-w, d2w, d4w, R4w x n_blocks, u2w, uw, c7s1-out``, reflection
  padding, instance norm, tanh output. ``n_blocks=9`` (the 256 px setting) by default.
* ``unet_gen``: :class:`UNetGenerator`, the pix2pix generator (Isola et al. 2017, section 3.2.1 and
  appendix 6.1.1): ``depth`` 4x4 stride-2 convolutions down (LeakyReLU 0.2), transposed
  convolutions up (ReLU) with skip concatenations, dropout in the innermost decoder layers, tanh.
  Arbitrary input and output channel counts.
* ``patchgan``: :class:`PatchDiscriminator`, the ``N x N`` PatchGAN (Isola et al. 2017, section
  3.2.2): ``n_layers`` stride-2 4x4 convolutions then two stride-1 ones; one logit per patch.
  ``n_layers=3`` sees 70x70 patches (:func:`receptive_field`), 1 -> 16x16, 5 -> 286x286.

All take and return images in ``[-1, 1]``, ``(B, C, H, W)``; the generators accept any ``H, W``
(inputs are reflect-padded to the multiple they need and the output is cropped back). Weights start
from N(0, 0.02) as in both papers' code.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lumachrome.models.registry import register_model

__all__ = [
    "GAN_NORMS",
    "PatchDiscriminator",
    "ResnetGenerator",
    "UNetGenerator",
    "init_gan_weights",
    "receptive_field",
]

GAN_NORMS = ("instance", "batch", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        # CycleGAN's choice: no affine parameters, no running statistics (train == eval behaviour).
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return nn.Identity()


def _check(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    return value


def _check_norm(norm: str) -> str:
    if norm not in GAN_NORMS:
        raise ValueError(f"norm={norm!r} is not one of {', '.join(GAN_NORMS)}")
    return norm


def _check_dropout(p: Any) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise ValueError(f"dropout={p!r} must be a number in [0, 1)")
    return float(p)


#: Generator upsampling: the papers' transposed convolutions, or a bilinear 2x resize then a 3x3
#: convolution (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts"): every output pixel is
#: made the same way, so it cannot draw a checkerboard, which a stride-2 transposed convolution
#: (kernel 3 or 4) draws wherever its taps overlap unevenly.
UPSAMPLES = ("transposed", "resize")


def _check_upsample(upsample: Any) -> str:
    if upsample not in UPSAMPLES:
        raise ValueError(f"upsample={upsample!r} is not one of {', '.join(UPSAMPLES)}")
    return upsample


def _up2(cin: int, cout: int, upsample: str, *, kernel: int, bias: bool, output_padding: int = 0,
         padding_mode: str = "zeros") -> nn.Module:
    """A 2x upsampling convolution: transposed (``kernel`` 3 with output padding 1, or 4) or resize-conv."""
    if upsample == "resize":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                             nn.Conv2d(cin, cout, 3, padding=1, bias=bias, padding_mode=padding_mode))
    return nn.ConvTranspose2d(cin, cout, kernel, stride=2, padding=1, output_padding=output_padding, bias=bias)


def init_gan_weights(module: nn.Module, std: float = 0.02) -> None:
    """pix2pix/CycleGAN initialisation: conv weights N(0, std), biases 0, norm scales N(1, std)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def _pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Pad bottom/right to a multiple (reflect, replicate for tiny inputs); returns the original size."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


# ------------------------------------------------------------------------------ ResNet generator
class ResnetBlock(nn.Module):
    """``x + [reflpad, conv3x3, norm, ReLU, (dropout), reflpad, conv3x3, norm](x)`` (CycleGAN's R-block)."""

    def __init__(self, channels: int, norm: str, dropout: float) -> None:
        super().__init__()
        bias = norm == "instance" or norm == "none"  # the reference code keeps biases with instance norm
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                                   _norm(norm, channels), nn.ReLU(True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), _norm(norm, channels)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class _Generator(nn.Module):
    """Shared by the generators: ``self.net`` on the input padded to a multiple of ``self.multiple``
    (the output is cropped back, float32); ``args`` as stored in ``config.json``."""

    @property
    def args(self) -> dict[str, Any]:
        return dict(self._args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, h, w = _pad_to(x, self.multiple)
        return self.net(x)[..., :h, :w].float()


class ResnetGenerator(_Generator):
    """CycleGAN's ResNet generator: ``(B, in_channels, H, W)`` in ``[-1, 1]`` -> ``(B, out_channels, H, W)``.

    Args:
        in_channels, out_channels: channel counts of the two domains.
        width: channels of the first layer (``ngf``, 64 in the paper).
        n_blocks: residual blocks at 1/4 resolution (9 for 256 px images, 6 for 128 px).
        n_down: stride-2 downsamplings (2 in the paper); inputs are padded to a multiple of ``2**n_down``.
        norm: ``"instance"`` (paper), ``"batch"`` or ``"none"``.
        dropout: dropout inside the residual blocks (0 in CycleGAN).
        upsample: ``"transposed"`` (paper) or ``"resize"`` (bilinear 2x + conv3x3; no checkerboards,
            :data:`UPSAMPLES`).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 64, n_blocks: int = 9,
                 n_down: int = 2, norm: str = "instance", dropout: float = 0.0, upsample: str = "transposed") -> None:
        super().__init__()
        _check("in_channels", in_channels, 1)
        _check("out_channels", out_channels, 1)
        _check("width", width, 1)
        _check("n_blocks", n_blocks, 0)
        _check("n_down", n_down, 0)
        _check_norm(norm)
        dropout = _check_dropout(dropout)
        upsample = _check_upsample(upsample)
        self._args = dict(in_channels=in_channels, out_channels=out_channels, width=width, n_blocks=n_blocks,
                          n_down=n_down, norm=norm, dropout=dropout)
        if upsample != "transposed":  # only written when used: earlier model folders stay byte-identical
            self._args["upsample"] = upsample
        self.multiple = 2 ** n_down
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7, bias=bias),
                                   _norm(norm, width), nn.ReLU(True)]
        c = width
        for _ in range(n_down):
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias), _norm(norm, 2 * c), nn.ReLU(True)]
            c *= 2
        layers += [ResnetBlock(c, norm, dropout) for _ in range(n_blocks)]
        for _ in range(n_down):
            layers += [_up2(c, c // 2, upsample, kernel=3, bias=bias, output_padding=1),
                       _norm(norm, c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(c, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_gan_weights(self)


# -------------------------------------------------------------------------------- U-Net generator
class _UNetLevel(nn.Module):
    """One level of the pix2pix U-Net: ``x -> cat(x, up(inner(down(x))))`` (the outermost: no concat)."""

    def __init__(self, outer: int, inner: int, *, in_channels: int | None = None, sub: nn.Module | None,
                 norm: str, outermost: bool = False, innermost: bool = False, dropout: float = 0.0,
                 out_channels: int | None = None, upsample: str = "transposed", padding: str = "zeros") -> None:
        super().__init__()
        bias = norm != "batch"
        cin = outer if in_channels is None else in_channels
        down: list[nn.Module] = []
        if not outermost:
            down.append(nn.LeakyReLU(0.2, True))
        down.append(nn.Conv2d(cin, inner, 4, stride=2, padding=1, bias=bias, padding_mode=padding))
        if not outermost and not innermost:
            down.append(_norm(norm, inner))
        up_in = inner if innermost else 2 * inner
        up: list[nn.Module] = [nn.ReLU(True)]
        if outermost:
            up += [_up2(up_in, out_channels or outer, upsample, kernel=4, bias=True, padding_mode=padding), nn.Tanh()]
        else:
            up += [_up2(up_in, outer, upsample, kernel=4, bias=bias, padding_mode=padding), _norm(norm, outer)]
            if dropout > 0:
                up.append(nn.Dropout(dropout))
        self.down = nn.Sequential(*down)
        self.sub = sub
        self.up = nn.Sequential(*up)
        self.outermost = outermost

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(x)
        if self.sub is not None:
            y = self.sub(y)
        y = self.up(y)
        return y if self.outermost else torch.cat([x, y], dim=1)


class UNetGenerator(_Generator):
    """The pix2pix U-Net generator: ``(B, in_channels, H, W)`` in ``[-1, 1]`` -> ``(B, out_channels, H, W)``.

    Args:
        in_channels, out_channels: any channel counts (1 for line art / NIR inputs, 3 for RGB).
        width: channels of the first layer (``ngf``, 64 in the paper).
        depth: stride-2 downsamplings (8 for 256 px images: ``unet_256``; 7: ``unet_128``); inputs are
            padded to a multiple of ``2**depth``, so choose ``depth <= log2(crop size)``.
        max_width: cap of the channel doubling (``8 * width`` in the paper).
        norm: ``"batch"`` (paper), ``"instance"`` or ``"none"``; the innermost and outermost
            encoder layers have none (the innermost map is 1x1 at the full depth).
        dropout: dropout after the innermost ``min(3, depth - 1)`` decoder layers (0.5 in the paper;
            active in training mode only).
        upsample: ``"transposed"`` (paper) or ``"resize"`` (bilinear 2x + conv3x3; no checkerboards,
            :data:`UPSAMPLES`).
        padding: ``"zeros"`` (paper) or ``"reflect"`` for the convolutions (transposed ones always pad
            with zeros): with reflection a flat input gives flat feature maps up to the borders, so
            instance norm has no border ramp to blow up into a visible gradient.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 64, depth: int = 8,
                 max_width: int | None = None, norm: str = "batch", dropout: float = 0.5,
                 upsample: str = "transposed", padding: str = "zeros") -> None:
        super().__init__()
        _check("in_channels", in_channels, 1)
        _check("out_channels", out_channels, 1)
        _check("width", width, 1)
        _check("depth", depth, 2)
        max_width = 8 * width if max_width is None else _check("max_width", max_width, 1)
        _check_norm(norm)
        dropout = _check_dropout(dropout)
        upsample = _check_upsample(upsample)
        self._args = dict(in_channels=in_channels, out_channels=out_channels, width=width, depth=depth,
                          max_width=max_width, norm=norm, dropout=dropout)
        if upsample != "transposed":  # only written when used: earlier model folders stay byte-identical
            self._args["upsample"] = upsample
        if padding not in ("zeros", "reflect"):
            raise ValueError(f"padding={padding!r} is not one of zeros, reflect")
        if padding != "zeros":
            self._args["padding"] = padding
        self.multiple = 2 ** depth
        widths = [min(width * 2 ** i, max_width) for i in range(depth)]  # encoder outputs, level 0 = outermost
        level: nn.Module | None = None
        for i in reversed(range(1, depth)):
            innermost = i == depth - 1
            # pix2pix: dropout in the 3 decoder layers above the innermost one.
            drop = dropout if 1 <= depth - 1 - i <= 3 else 0.0
            level = _UNetLevel(widths[i - 1], widths[i], sub=level, norm=norm, innermost=innermost, dropout=drop,
                               upsample=upsample, padding=padding)
        self.net = _UNetLevel(out_channels, widths[0], in_channels=in_channels, sub=level, norm=norm,
                              outermost=True, out_channels=out_channels, upsample=upsample, padding=padding)
        init_gan_weights(self)


# ------------------------------------------------------------------------------------- PatchGAN
class PatchDiscriminator(nn.Module):
    """PatchGAN: ``(B, in_channels, H, W)`` -> logits ``(B, 1, H', W')``, one per overlapping patch.

    Layers (Isola et al. 2017, appendix 6.1.2, ``C64-C128-C256-C512`` for ``n_layers=3``): a 4x4
    stride-2 conv (no norm) + LeakyReLU 0.2, ``n_layers - 1`` 4x4 stride-2 conv + norm + LeakyReLU
    (channels doubling up to ``8 * width``), one 4x4 stride-1 conv + norm + LeakyReLU, and a 4x4
    stride-1 conv to 1 channel. :func:`receptive_field` gives the patch size (70 for ``n_layers=3``).

    Args:
        in_channels: channels of what it judges (conditional GANs: input and output concatenated).
        width: channels of the first layer (``ndf``, 64).
        n_layers: stride-2 layers (3: 70x70 patches).
        norm: ``"instance"`` (default here, as CycleGAN: batch-size independent), ``"batch"`` (pix2pix)
            or ``"none"``.
    """

    def __init__(self, in_channels: int = 6, width: int = 64, n_layers: int = 3, norm: str = "instance") -> None:
        super().__init__()
        _check("in_channels", in_channels, 1)
        _check("width", width, 1)
        _check("n_layers", n_layers, 1)
        _check_norm(norm)
        self._args = dict(in_channels=in_channels, width=width, n_layers=n_layers, norm=norm)
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        c = width
        for n in range(1, n_layers + 1):
            nxt = width * min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(c, nxt, 4, stride=stride, padding=1, bias=bias), _norm(norm, nxt),
                       nn.LeakyReLU(0.2, True)]
            c = nxt
        layers.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        init_gan_weights(self)

    @property
    def args(self) -> dict[str, Any]:
        return dict(self._args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).float()


def receptive_field(model: nn.Module | None = None, *, n_layers: int = 3) -> int:
    """Side of the input patch one output of a fully convolutional stack sees.

    Walks the ``Conv2d`` layers of ``model`` (default: a :class:`PatchDiscriminator` with
    ``n_layers``) from the output back: ``r <- (r - 1) * stride + kernel``, starting from ``r = 1``.
    ``n_layers`` 1, 2, 3, 4, 5 give 16, 34, 70, 142, 286 (the patch sizes of Isola et al. 2017, Table 3).
    """
    if model is None:
        with torch.device("meta"):
            model = PatchDiscriminator(n_layers=n_layers)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    r = 1
    for m in reversed(convs):
        k, s, d = m.kernel_size[0], m.stride[0], m.dilation[0]
        r = (r - 1) * s + d * (k - 1) + 1
    return r


# ------------------------------------------------------------------------------------ registry
@register_model("resnet_gen")
def resnet_gen(**args: Any) -> ResnetGenerator:
    """CycleGAN ResNet generator (ResNet-9 by default): ``ResnetGenerator(**args)``."""
    return ResnetGenerator(**args)


@register_model("unet_gen")
def unet_gen(**args: Any) -> UNetGenerator:
    """pix2pix U-Net generator: ``UNetGenerator(**args)``."""
    return UNetGenerator(**args)


@register_model("patchgan")
def patchgan(**args: Any) -> PatchDiscriminator:
    """PatchGAN discriminator (70x70 by default): ``PatchDiscriminator(**args)``."""
    return PatchDiscriminator(**args)
