"""How a colorizer is put together, stage by stage, for tools that look inside it from outside.

A colorization network describes itself with ``model.stage_layout() -> StageLayout``: the submodule
names of its encoder stages, bottleneck, decoder stages and head, the stride of each one's output
relative to the input, which encoder stage feeds which decoder stage, and its scene-context module.
:mod:`lumachrome.explain` attaches forward hooks to those names (probes, feature maps, ablations,
receptive fields), so it needs no knowledge of any particular architecture.

Contract of the names (each architecture keeps it):

* every stage name is a submodule whose forward output is that stage's feature map ``(B, C, h, w)``
  at ``1/stride`` of the (padded) input;
* a decoder stage named in :attr:`StageLayout.skips` is called as ``stage(x, skip)``: its second
  positional argument is the skip tensor of the encoder stage it receives;
* the context module (if any) is called as ``context(x, ...)`` and returns a tensor shaped like ``x``
  (so switching it off means returning its first argument);
* the head is the last module before the output's decoding; it maps a decoder feature map to the raw
  head output at ``1/head.stride`` (the network upsamples it to the input size when that is not 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Stage", "StageLayout", "unet_layout"]


@dataclass(frozen=True)
class Stage:
    """One stage: its submodule name and the stride of its output (1 = full resolution)."""

    name: str
    stride: int


@dataclass(frozen=True)
class StageLayout:
    """A colorizer's stages (see the module docstring).

    Attributes:
        encoder: encoder stages whose outputs the decoder uses, shallow to deep.
        bottleneck: the deepest stage, the decoder's first input.
        decoder: decoder stages, deep to shallow.
        head: the output layer.
        skips: ``(encoder stage, decoder stage that receives it)``, shallow first.
        context: name of the scene-context module (FiLM from the whole image), or None.
        summary: one line describing the network (shown in reports).
        probe_encoder: whether linear probes of the encoder stages are informative (a pretrained
            encoder whose features were not trained for colour: how much colour do they carry?).
    """

    encoder: tuple[Stage, ...]
    bottleneck: Stage
    decoder: tuple[Stage, ...]
    head: Stage
    skips: tuple[tuple[str, str], ...]
    context: str | None = None
    summary: str = ""
    probe_encoder: bool = False

    def stages(self) -> tuple[Stage, ...]:
        """Every stage in forward order: encoder, bottleneck, decoder, head."""
        return self.encoder + (self.bottleneck,) + self.decoder + (self.head,)

    def stride(self, name: str) -> int | None:
        """The stride of a stage's output, or None when ``name`` is not a stage."""
        for s in self.stages():
            if s.name == name:
                return s.stride
        return None


def unet_layout(model: Any) -> StageLayout:
    """The layout of a :class:`lumachrome.models.unet.UNetColorizer`-like module: ``enc.i`` at
    stride ``2**i``, ``bottleneck`` at ``2**(depth-1)``, ``dec.j`` deepest first, ``enc.i`` feeding
    ``dec.{D-2-i}``, ``head`` at full resolution, ``glob`` as the context branch when present."""
    n_enc, n_dec = len(model.enc), len(model.dec)
    depth = int(getattr(model, "depth", n_dec + 1))
    return StageLayout(
        encoder=tuple(Stage(f"enc.{i}", 2**i) for i in range(n_enc)),
        bottleneck=Stage("bottleneck", 2 ** (depth - 1)),
        decoder=tuple(Stage(f"dec.{j}", 2 ** (n_dec - 1 - j)) for j in range(n_dec)),
        head=Stage("head", 1),
        skips=tuple((f"enc.{i}", f"dec.{n_dec - 1 - i}") for i in range(n_enc) if n_dec - 1 - i >= 0),
        context="glob" if getattr(model, "glob", None) is not None else None,
        summary=f"U-Net, depth {depth}, widths {list(getattr(model, 'widths', []))}",
    )
