"""The ONNX Runtime backend of :class:`~lumachrome.colorizer.Colorizer`: an ``onnxruntime`` session that
computes raw ``ab`` from raw ``L`` as the PyTorch model's ``predict_ab`` does.

The graphs are written by :mod:`lumachrome.onnx_export` (see there for what they compute); this module
only runs them, and checks that a folder's ``model.onnx`` is fresh: the file's metadata
(``lumachrome.weights_sha256``, ``lumachrome.config_sha256``) must match the folder's weights and
architecture (:func:`weights_digest`, :func:`config_digest`), else a one-line ``ModelError`` says how
to re-export.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from lumachrome.constants import ANNEALED_MEAN_TEMPERATURE
from lumachrome.errors import ConfigError, ModelError
from lumachrome.models.io import BASE_KEY, CONFIG_NAME, WEIGHTS_NAME, base_weights, file_sha256, read_config

__all__ = ["META_PREFIX", "ONNX_NAME", "OnnxNetwork", "config_digest", "weights_digest"]

#: File name of the exported graph inside a model folder.
ONNX_NAME = "model.onnx"
#: Prefix of the graph's ``metadata_props`` keys.
META_PREFIX = "lumachrome."


# --------------------------------------------------------------------------------------------
# digests
# --------------------------------------------------------------------------------------------
def weights_digest(model_dir: str | os.PathLike[str], config: Mapping[str, Any] | None = None) -> str:
    """SHA-256 (hex) of ``model_dir/model.safetensors`` (``ModelError`` when it cannot be read).

    A folder that stores only differences from a base model (``base`` in its ``config.json``,
    :mod:`lumachrome.models.io`) has its base checked first (present, with the pinned SHA-256) and
    gets the SHA-256 of ``"<own digest>+<base digest>"``, so a graph exported against another base is
    stale too. ``config``: the folder's config when already read.
    """
    folder = Path(model_dir)
    own = file_sha256(folder / WEIGHTS_NAME)
    if config is None and not (folder / CONFIG_NAME).is_file():
        return own  # a bare weights folder: nothing can name a base
    base = base_weights(folder, None if config is None else dict(config))
    if base is None:
        return own
    pinned = (config if config is not None else read_config(folder))[BASE_KEY]["sha256"]
    return hashlib.sha256(f"{own}+{pinned}".encode("ascii")).hexdigest()


def config_digest(config: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the parts of ``config.json`` that define the graph: architecture and args."""
    key = {"architecture": config.get("architecture"), "args": config.get("args") or {}}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()


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
        self.multiple = int(self.metadata.get(META_PREFIX + "multiple", "1") or 1)
        self.head = self.metadata.get(META_PREFIX + "head", "regression")
        self.input_names = [i.name for i in self.session.get_inputs()]
        if self.input_names[:1] != ["L"]:
            raise ModelError(f"{self.source}: not a lumachrome ONNX graph (first input {self.input_names[:1]}, expected ['L'])")
        self.default_temperature: float | None = None

    # ---------------------------------------------------------------- loading from a model folder
    @classmethod
    def load_fresh(
        cls,
        path: str | os.PathLike[str],
        config: Mapping[str, Any],
        weights_sha256: str,
        *,
        threads: int | None = None,
        device: str | torch.device = "cpu",
    ) -> "OnnxNetwork":
        """A model folder's ``model.onnx`` (``path``), refused unless it was exported from these weights
        (``weights_sha256``, :func:`weights_digest`) and this architecture (``config``).

        Raises:
            ModelError: ``model.onnx`` is stale (other weights or architecture than the folder's),
                was not written by lumachrome, or cannot be loaded.
        """
        path = Path(path)
        folder = path.parent
        net = cls(path, threads=threads, device=device)
        found = net.metadata.get(META_PREFIX + "weights_sha256")
        if found is None:
            raise ModelError(f"{path}: not exported by lumachrome (no weights digest); re-export: lumachrome export {folder} --format onnx")
        if found != weights_sha256 or net.metadata.get(META_PREFIX + "config_sha256") != config_digest(config):
            raise ModelError(
                f"{path}: stale ONNX file (exported from other weights than {folder / WEIGHTS_NAME}); "
                f"re-export: lumachrome export {folder} --format onnx"
            )
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
            t = ANNEALED_MEAN_TEMPERATURE if t is None else float(t)
            if not t > 0:
                raise ConfigError(f"temperature must be > 0, got {t}")
            feed["temperature"] = np.array([t], dtype=np.float32)
        ab = self.session.run(["ab"], feed)[0]
        if ph or pw:
            ab = np.ascontiguousarray(ab[:, :, :h, :w])
        return ab

    def __repr__(self) -> str:
        return f"OnnxNetwork({self.source!r}, head={self.head!r}, threads={self.threads}, device={str(self.device)!r})"
