"""ONNX export of a model folder and an ONNX Runtime backend for :class:`~lumachrome.colorizer.Colorizer`.

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
(``lumachrome.weights_sha256``) and of the architecture + args (``lumachrome.config_sha256``), the
padding multiple, the head and the opset. :meth:`OnnxNetwork.load` recomputes both digests and
refuses a stale ``model.onnx`` (exported from other weights) with a one-line ``ModelError`` that
says how to re-export. A folder without ``model.onnx`` is exported in memory when loaded (about
0.3 s for the shipped model); nothing is written to the model folder then.

Speed (measured, ``benchmarks/bench_onnx.py``, shipped ``photo`` model, 2-core CPU): the network
alone runs 2.8x (1 thread) / 3.1x (2 threads) faster than eager PyTorch (channels_last) on a 1 MP
input, 1.5-2.1x at 0.25 MP; end to end ``colorize_file`` gains 1.1-1.4x up to 1 MP and nothing from
4 MP on, where the full-resolution join and the JPEG codecs dominate. ab agrees to ~2e-5.
"""

from __future__ import annotations

import hashlib
import io
import json
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
from lumachrome.errors import ConfigError, ModelError

__all__ = [
    "DEFAULT_OPSET",
    "ONNX_NAME",
    "OnnxNetwork",
    "config_digest",
    "export_onnx",
    "export_onnx_bytes",
    "weights_digest",
]

#: File name of the exported graph inside a model folder.
ONNX_NAME = "model.onnx"
#: ONNX opset of exported graphs (ONNX Runtime >= 1.11).
DEFAULT_OPSET = 17
#: Largest accepted |ab| difference between ONNX Runtime and PyTorch in the post-export check.
EXPORT_TOLERANCE = 1e-3

_META_PREFIX = "lumachrome."


# --------------------------------------------------------------------------------------------
# digests
# --------------------------------------------------------------------------------------------
def weights_digest(model_dir: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of ``model_dir/model.safetensors`` (``ModelError`` when it cannot be read)."""
    from lumachrome.models.io import WEIGHTS_NAME

    path = Path(model_dir) / WEIGHTS_NAME
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as e:
        raise ModelError(f"{path}: cannot read ({e.strerror or e})") from None
    return h.hexdigest()


def config_digest(config: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the parts of ``config.json`` that define the graph: architecture and args."""
    key = {"architecture": config.get("architecture"), "args": config.get("args") or {}}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()


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
        args: tuple[torch.Tensor, ...] = (sample_L, torch.tensor([0.38], dtype=torch.float32))
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
    onnx.helper.set_model_props(proto, {_META_PREFIX + k: v for k, v in meta.items()})
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
    from lumachrome.colorizer import _resolve_model_dir
    from lumachrome.models.io import load_model_dir

    folder = _resolve_model_dir(model_dir)
    model, config = load_model_dir(folder, device="cpu")
    config = dict(config)
    config.setdefault("name", folder.name)
    data = export_onnx_bytes(model, config, weights_digest(folder), opset=opset)
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


# --------------------------------------------------------------------------------------------
# the runtime
# --------------------------------------------------------------------------------------------
class OnnxNetwork:
    """An ONNX Runtime session computing raw ab from raw L, as the PyTorch model's ``predict_ab``.

    Args:
        model: path of a ``.onnx`` file or its bytes.
        source: a name for messages (default: the path).
        threads: intra-op threads (default ``torch.get_num_threads()``: the cores, or
            ``OMP_NUM_THREADS``); inter-op threads are 1 (the graph is a chain).
        device: ``"cpu"`` or ``"cuda[:N]"`` (needs the ``onnxruntime-gpu`` build).

    Session options: graph optimisation ``ORT_ENABLE_ALL`` (constant folding, Conv+BatchNorm and
    Conv+activation fusion, NCHWc layout on x86), sequential execution.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes,
        *,
        source: str | None = None,
        threads: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        import onnxruntime as ort

        self.source = source or (str(model) if not isinstance(model, bytes) else "<bytes>")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.threads = int(threads) if threads else max(1, torch.get_num_threads())
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only
        dev = torch.device(device) if not isinstance(device, torch.device) else device
        if dev.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ConfigError(f"device {str(dev)!r}: this onnxruntime build has no CUDA provider (pip install onnxruntime-gpu)")
            providers: list[Any] = [("CUDAExecutionProvider", {"device_id": dev.index or 0}), "CPUExecutionProvider"]
        elif dev.type == "cpu":
            providers = ["CPUExecutionProvider"]
        else:
            raise ConfigError(f"device {str(dev)!r}: the onnx backend runs on cpu or cuda")
        self.device = dev
        what = model if isinstance(model, bytes) else str(model)
        try:
            self.session = ort.InferenceSession(what, opts, providers=providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelError(f"{self.source}: cannot load ONNX model ({' '.join(str(e).split())[:300]})") from None
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        self.multiple = int(self.metadata.get(_META_PREFIX + "multiple", "1") or 1)
        self.head = self.metadata.get(_META_PREFIX + "head", "regression")
        self.input_names = [i.name for i in self.session.get_inputs()]
        if self.input_names[:1] != ["L"]:
            raise ModelError(f"{self.source}: not a lumachrome ONNX graph (first input {self.input_names[:1]}, expected ['L'])")
        self.default_temperature: float | None = None

    # ---------------------------------------------------------------- loading from a model folder
    @classmethod
    def load(
        cls,
        model_dir: str | os.PathLike[str],
        *,
        config: Mapping[str, Any] | None = None,
        model: nn.Module | None = None,
        threads: int | None = None,
        device: str | torch.device = "cpu",
    ) -> "OnnxNetwork":
        """The ONNX graph of a model folder: ``model.onnx`` when present (checked fresh), else an
        in-memory export of ``model`` (loaded from the folder when not given).

        Raises:
            ModelError: ``model.onnx`` is stale (other weights or architecture than the folder's),
                was not written by lumachrome, or cannot be loaded.
        """
        from lumachrome.models.io import load_model_dir, read_config

        folder = Path(model_dir)
        cfg = dict(config) if config is not None else read_config(folder)
        digest = weights_digest(folder)
        path = folder / ONNX_NAME
        if path.is_file():
            net = cls(path, threads=threads, device=device)
            found = net.metadata.get(_META_PREFIX + "weights_sha256")
            if found is None:
                raise ModelError(f"{path}: not exported by lumachrome (no weights digest); re-export: lumachrome export {folder} --format onnx")
            if found != digest or net.metadata.get(_META_PREFIX + "config_sha256") != config_digest(cfg):
                raise ModelError(
                    f"{path}: stale ONNX file (exported from other weights than {folder / 'model.safetensors'}); "
                    f"re-export: lumachrome export {folder} --format onnx"
                )
        else:
            if model is None:
                model, cfg = load_model_dir(folder, device="cpu")
            cfg.setdefault("name", folder.name)
            data = export_onnx_bytes(model, cfg, digest)
            net = cls(data, source=f"{folder} (in-memory ONNX export)", threads=threads, device=device)
        temperature = (cfg.get("decoding") or {}).get("temperature")
        net.default_temperature = None if temperature is None else float(temperature)
        return net

    # ---------------------------------------------------------------- inference
    def __call__(self, L: np.ndarray, temperature: float | None = None) -> np.ndarray:
        """Raw ab ``(B, 2, H, W)`` float32 for raw L ``(B, 1, H, W)`` (any ``H, W``; see the module doc)."""
        L = np.ascontiguousarray(L, dtype=np.float32)
        if L.ndim != 4 or L.shape[1] != 1:
            raise ValueError(f"OnnxNetwork: expected L of shape (B, 1, H, W), got {L.shape}")
        h, w = L.shape[2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:  # as UNetColorizer._pad: reflect (replicate for tiny inputs), bottom/right
            mode = "reflect" if ph < h and pw < w else "edge"
            L = np.pad(L, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)
        feed = {"L": L}
        if "temperature" in self.input_names:
            t = temperature if temperature is not None else self.default_temperature
            t = 0.38 if t is None else float(t)
            if not t > 0:
                raise ConfigError(f"temperature must be > 0, got {t}")
            feed["temperature"] = np.array([t], dtype=np.float32)
        ab = self.session.run(["ab"], feed)[0]
        if ph or pw:
            ab = np.ascontiguousarray(ab[:, :, :h, :w])
        return ab

    def __repr__(self) -> str:
        return f"OnnxNetwork({self.source!r}, head={self.head!r}, threads={self.threads}, device={str(self.device)!r})"
