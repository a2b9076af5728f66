"""ONNX export of a model folder (the runtime that runs the graphs: :mod:`lumachrome.onnx_runtime`).

``lumachrome export MODEL --format onnx`` writes ``MODEL/model.onnx`` next to ``config.json`` and
``model.safetensors``; ``lumachrome colorize ... --backend onnx`` (or
``Colorizer.load(..., backend="onnx")``) runs the network with ONNX Runtime instead of eager PyTorch.
Pre- and post-processing (working-size resize, Lab, full-resolution join) are the same code for
both backends; only the ``L -> ab`` network call differs.

The graph
---------
* Exported with PyTorch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``),
  **opset 17** (:data:`DEFAULT_OPSET`; ONNX Runtime >= 1.11 runs it). The torch.export-based
  exporter needs the extra ``onnxscript`` package and gains nothing for this plain conv net.
* Input ``L``: float32 ``(batch, 1, height, width)``, raw lightness in ``[0, 100]``, all three axes
  dynamic. ``height`` and ``width`` must be multiples of the network's padding multiple (stored in
  the metadata as ``lumachrome.multiple``; 8 for a 4-level U-Net, 32 for ``effunet``): the PyTorch
  model pads other sizes itself, the graph does not (the traced input was a multiple).
  :class:`OnnxNetwork` pads such inputs exactly like the model (reflect, bottom/right) and crops the
  output, and the Colorizer always uses multiples of 16 (of the model's multiple when larger) anyway.
  ``effunet`` exports as it is (static TF-"same" padding, the scene vector a mean over the map, its
  head at 1/2 upsampled in the graph); ab agrees with PyTorch to ~1e-5.
* Output ``ab``: float32 ``(batch, 2, height, width)``, raw ab, for **both heads**. Classification
  models take a second input ``temperature`` (float32 ``(1,)``) and decode in the graph with the
  annealed mean (Zhang et al. 2016, eq. 5: ``softmax(logits / T)`` weighted by the bin centres,
  here a 1x1 convolution with the ``(Q, 2)`` centres), so the temperature stays a run-time choice.
* BatchNorm layers are exported as they are; ONNX Runtime folds them into the convolutions when
  the session is built (graph optimisation level ``ORT_ENABLE_ALL``).

Freshness
---------
The file carries metadata (``onnx`` ``metadata_props``): the SHA-256 of ``model.safetensors``
(``lumachrome.weights_sha256``; for a folder with a base model, of its own and the base's digests:
:func:`~lumachrome.onnx_runtime.weights_digest`) and of the architecture + args (``lumachrome.config_sha256``), the
padding multiple, the head and the opset. :meth:`OnnxNetwork.load` recomputes both digests and
refuses a stale ``model.onnx`` (exported from other weights) with a one-line ``ModelError`` that
says how to re-export. A folder without ``model.onnx`` is exported in memory when loaded
(:func:`onnx_network`, about 0.3 s for the shipped model); nothing is written to the model folder then.

Speed (measured, ``benchmarks/bench_onnx.py``, shipped ``photo`` model, 2-core CPU): the network
alone runs 2.8x (1 thread) / 3.1x (2 threads) faster than eager PyTorch (channels_last) on a 1 MP
input, 1.5-2.1x at 0.25 MP; end to end ``colorize_file`` gains 1.1-1.4x up to 1 MP and nothing from
4 MP on, where the full-resolution join and the JPEG codecs dominate. ab agrees to ~2e-5.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lumachrome import __version__
from lumachrome.atomic import atomic_write_bytes
from lumachrome.constants import ANNEALED_MEAN_TEMPERATURE
from lumachrome.errors import ModelError
from lumachrome.models.io import load_model_dir, resolve_model_dir
from lumachrome.onnx_runtime import META_PREFIX, ONNX_NAME, OnnxNetwork, config_digest, weights_digest

__all__ = [
    "DEFAULT_OPSET",
    "ONNX_NAME",
    "OnnxNetwork",
    "config_digest",
    "export_onnx",
    "export_onnx_bytes",
    "onnx_network",
    "weights_digest",
]

#: ONNX opset of exported graphs (ONNX Runtime >= 1.11).
DEFAULT_OPSET = 17
#: Largest accepted |ab| difference between ONNX Runtime and PyTorch in the post-export check.
EXPORT_TOLERANCE = 1e-3


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------
class _GraphNet(nn.Module):
    """What the graph computes: raw L ``(B,1,H,W)`` (+ ``T (1,)`` for classification) -> raw ab ``(B,2,H,W)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.classification = getattr(model, "head_type", "regression") == "classification"
        if self.classification:
            centers = model.ab_centers.detach().float()  # (Q, 2) raw ab
            # Annealed mean as a 1x1 convolution: ab_c = sum_q p_q * centers[q, c].
            self.register_buffer("centers_kernel", centers.t().contiguous()[:, :, None, None])

    def forward(self, L: torch.Tensor, temperature: torch.Tensor | None = None) -> torch.Tensor:
        out = self.model(L)
        if not self.classification:
            return out
        # Zhang et al. 2016, eq. 5: f_T(z) = softmax(log z / T) = softmax(logits / T) (see bins.annealed_mean).
        p = torch.softmax(out / temperature, dim=1)
        return F.conv2d(p, self.centers_kernel)


def _sample_side(multiple: int, factor: int) -> int:
    return max(16, multiple) * factor


def export_onnx_bytes(
    model: nn.Module,
    config: Mapping[str, Any],
    weights_sha256: str,
    *,
    opset: int = DEFAULT_OPSET,
) -> bytes:
    """Serialized ONNX graph of ``model`` (a loaded lumachrome model, eval mode) with metadata.

    Args:
        model: the network (moved to the CPU for export; its device is restored).
        config: its ``config.json`` (architecture and args go into ``lumachrome.config_sha256``).
        weights_sha256: :func:`weights_digest` of the folder the weights came from.
        opset: ONNX opset (default :data:`DEFAULT_OPSET`).

    Raises:
        ModelError: the exporter failed (the message names the model).
    """
    import onnx

    name = str(config.get("name") or "model")
    multiple = int(getattr(model, "multiple", 1) or 1)
    head = getattr(model, "head_type", "regression")
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.cpu().eval()
    net = _GraphNet(model).eval()
    sample_L = torch.full((1, 1, _sample_side(multiple, 4), _sample_side(multiple, 6)), 50.0)
    axes = {0: "batch", 2: "height", 3: "width"}
    if net.classification:
        args: tuple[torch.Tensor, ...] = (sample_L, torch.tensor([ANNEALED_MEAN_TEMPERATURE], dtype=torch.float32))
        input_names = ["L", "temperature"]
    else:
        args = (sample_L,)
        input_names = ["L"]
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The legacy exporter warns that it is deprecated, and the tracer about Python
            # conditions on shapes (the padding branch, see the module docstring).
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net, args, buf, dynamo=False, opset_version=int(opset), input_names=input_names,
                output_names=["ab"], dynamic_axes={"L": axes, "ab": axes}, do_constant_folding=True,
            )  # fmt: skip
    except Exception as e:  # noqa: BLE001 - exporter errors come in many types; report one line
        raise ModelError(f"model {name!r}: ONNX export failed ({type(e).__name__}: {' '.join(str(e).split())[:300]})") from None
    finally:
        model.to(device).train(was_training)

    proto = onnx.load_from_string(buf.getvalue())
    proto.doc_string = f"lumachrome model {name}: raw L (B,1,H,W) in [0,100] -> raw ab (B,2,H,W)"
    proto.producer_name, proto.producer_version = "lumachrome", __version__
    meta = {
        "weights_sha256": weights_sha256,
        "config_sha256": config_digest(config),
        "multiple": str(multiple),
        "head": str(head),
        "opset": str(int(opset)),
        "name": name,
    }
    onnx.helper.set_model_props(proto, {META_PREFIX + k: v for k, v in meta.items()})
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def export_onnx(
    model_dir: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
) -> Path:
    """Export a model folder's network to ONNX (default ``model_dir/model.onnx``), atomically.

    Args:
        model_dir: a model folder (``config.json`` + ``model.safetensors``) or a shipped name.
        output: the ``.onnx`` file to write (default inside the model folder).
        opset: ONNX opset (default 17).
        check: run the graph with ONNX Runtime on a batch of 2 at a size other than the traced one
            and compare with PyTorch; ``ModelError`` when any ab differs by more than 1e-3.

    Returns:
        The path written.

    Raises:
        ModelError: not a model folder, export failure, failed check, unwritable target.
    """
    folder = resolve_model_dir(model_dir)
    model, config = load_model_dir(folder, device="cpu")
    config = dict(config)
    config.setdefault("name", folder.name)
    data = export_onnx_bytes(model, config, weights_digest(folder, config), opset=opset)
    if check:
        _check_export(model, data, folder)
    target = Path(output) if output is not None else folder / ONNX_NAME
    if target.suffix.lower() != ".onnx":
        raise ModelError(f"{target}: ONNX output must end in .onnx")
    return atomic_write_bytes(target, data, error=ModelError, fsync=True)


def _check_export(model: nn.Module, data: bytes, folder: Path) -> None:
    """ONNX Runtime vs PyTorch on random L at a size the graph was not traced at (batch 2)."""
    net = OnnxNetwork(data, source=f"{folder} (in-memory export)", threads=1)
    m = max(16, net.multiple)
    gen = torch.Generator().manual_seed(0)
    L = torch.rand(2, 1, 3 * m, 5 * m, generator=gen) * 100.0
    temperature = getattr(model, "default_temperature", None)
    with torch.no_grad():
        want = model.predict_ab(L, temperature=temperature) if hasattr(model, "predict_ab") else model(L)
    got = net(L.numpy(), temperature=temperature)
    err = float(np.abs(got - want.float().numpy()).max())
    if not err <= EXPORT_TOLERANCE:
        raise ModelError(f"{folder}: ONNX export check failed: ab differs from PyTorch by {err:.3g} > {EXPORT_TOLERANCE}")


def onnx_network(
    model_dir: str | os.PathLike[str],
    *,
    config: Mapping[str, Any],
    model: nn.Module | None = None,
    threads: int | None = None,
    device: str | torch.device = "cpu",
) -> OnnxNetwork:
    """The ONNX graph of a model folder (``config``: its config, already read): ``model.onnx`` when
    present (checked fresh, :meth:`OnnxNetwork.load_fresh`), else an in-memory export of ``model``
    (loaded from the folder when not given).

    Raises:
        ModelError: ``model.onnx`` is stale (other weights or architecture than the folder's),
            was not written by lumachrome, or cannot be loaded.
    """
    folder = Path(model_dir)
    cfg = dict(config)
    digest = weights_digest(folder, cfg)
    path = folder / ONNX_NAME
    if path.is_file():
        net = OnnxNetwork.load_fresh(path, cfg, digest, threads=threads, device=device)
    else:
        if model is None:
            model, cfg = load_model_dir(folder, device="cpu", config=cfg)
        cfg.setdefault("name", folder.name)
        data = export_onnx_bytes(model, cfg, digest)
        net = OnnxNetwork(data, source=f"{folder} (in-memory ONNX export)", threads=threads, device=device)
    temperature = (cfg.get("decoding") or {}).get("temperature")
    net.default_temperature = None if temperature is None else float(temperature)
    return net
