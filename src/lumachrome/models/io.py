"""Model folders: ``config.json`` + ``model.safetensors`` + ``README.md``; shipped model names.

Everything that turns a model *name or folder* into files lives here: the shipped models
(``lumachrome/weights/<name>/``, :func:`available_models`), name resolution
(:func:`resolve_model_dir`), reading the config once (:func:`open_model`), strict loading
(:func:`load_model_dir`) and in-place config updates (:func:`update_config`).

``config.json``::

    {"format": "lumachrome-model", "format_version": 1,
     "architecture": "unet", "args": {...},            # create_model(architecture, **args)
     "preprocessing": {"size": 256}, "decoding": {"temperature": 0.38},
     "name": ..., "training": {...}, "metrics": {...},  # free-form extra keys
     "base": {"model": "photo", "sha256": "<64 hex digits>"}}  # optional, see below

Weights are stored with safetensors only (no pickle: loading a model folder never executes code).
Loading is strict: every tensor must match the network built from the config, by name and shape.
The check is made before any memory is allocated: the weights file's header (names and shapes)
against the network built on the meta device, so a config with enormous widths fails at once.

Base models. A folder whose network repeats most of another model's weights (``photo-hints`` is the
shipped ``photo`` frozen plus small hint branches) may store only the tensors that differ from that
*base*: its ``config.json`` has ``"base": {"model": REF, "sha256": HEX}`` and its
``model.safetensors`` holds only the tensors that are not in the base's ``model.safetensors`` or whose
values differ from it (dtype, shape and bytes). ``REF`` is a shipped model name (``"photo"``) or a
folder path relative to this folder (``"../photo"``); the base must be a full model folder (no base of
its own) and ``HEX`` is the SHA-256 of its ``model.safetensors`` when this folder was written. Loading
checks that digest first (a missing or changed base is a one-line ``ModelError`` naming both weights
files), then merges the base's tensors with this folder's own (own ones win) and loads the merged
state as strictly as a full folder's. :func:`save_model_dir` writes such a folder with ``base=``
(``lumachrome export --base``); :func:`read_weights` returns any folder's complete state dict.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from lumachrome.atomic import apply_umask, atomic_write_text
from lumachrome.constants import ANNEALED_MEAN_TEMPERATURE
from lumachrome.errors import ModelError
from lumachrome.precision import resolve_device
from lumachrome.models.registry import create_model, get_factory

__all__ = [
    "BASE_KEY",
    "CONFIG_NAME",
    "CARD_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "WEIGHTS_NAME",
    "ModelFolder",
    "available_models",
    "base_weights",
    "file_sha256",
    "load_model_dir",
    "open_folder",
    "open_model",
    "read_config",
    "read_weights",
    "read_weights_file",
    "resolve_model_dir",
    "same_tensor",
    "save_model_dir",
    "shipped_model_dirs",
    "state_differences",
    "update_config",
    "weights_files",
    "weights_root",
]

FORMAT = "lumachrome-model"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
#: The config key naming the base model whose tensors a folder does not repeat (module doc).
BASE_KEY = "base"
_RESERVED = ("format", "format_version", "architecture", "args", "preprocessing", "decoding", BASE_KEY, "storage")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_LISTED = 3


# --------------------------------------------------------------------------- helpers


def _json_ready(value: Any, what: str) -> Any:
    """Round-trip through JSON (tuples become lists); ``ModelError`` if not serialisable."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ModelError(f"save_model_dir: {what} is not JSON-serialisable ({e})") from None


def _fmt_keys(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f", ... (+{len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else "")


def state_differences(
    expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]
) -> tuple[list[str], list[str], list[str]]:
    """How the tensors ``found`` (name -> shape) differ from ``expected``: the sorted names that are
    missing, unexpected, and present in both with another shape (strict loads, ``model.init``)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = [k for k in sorted(set(expected) & set(found)) if tuple(found[k]) != tuple(expected[k])]
    return missing, unexpected, shapes


def _compare_state(
    expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]
) -> str | None:
    """One-line description of how ``found`` (name -> shape) differs from ``expected``, or None."""
    missing, unexpected, mismatched = state_differences(expected, found)
    shapes = [f"{k} {tuple(found[k])} vs {tuple(expected[k])}" for k in mismatched]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing tensor(s): {_fmt_keys(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected tensor(s): {_fmt_keys(unexpected)}")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatch(es) (file vs config): {_fmt_keys(shapes)}")
    return "; ".join(parts) or None


def _shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def _unreadable(weights: Path, e: BaseException) -> ModelError:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return ModelError(f"{weights}: unreadable safetensors file ({msg})")


def _header_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the tensors in a safetensors file, from its header (no tensor is read)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights), framework="pt", device="cpu") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise _unreadable(weights, e) from None


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file (``ModelError`` naming it when it cannot be read)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as e:
        raise ModelError(f"{path}: cannot read ({e.strerror or e})") from None
    return h.hexdigest()


def same_tensor(a: torch.Tensor, b: torch.Tensor | None) -> bool:
    """Whether ``b`` is bit-identical to ``a``: same dtype, same shape, same bytes (so -0.0 != 0.0 and
    NaNs compare by their bits, unlike ``torch.equal``)."""
    if b is None or a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape):
        return False
    if a.numel() == 0:
        return True
    as_bytes = lambda t: t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8)  # noqa: E731
    return bool(torch.equal(as_bytes(a), as_bytes(b)))


def _load_tensors(weights: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise _unreadable(weights, e) from None


def _default_card(config: dict[str, Any], n_params: int, folder: str) -> str:
    """A generated model card listing the config."""
    name = config.get("name") or folder
    lines = [
        f"# {name}",
        "",
        f"lumachrome colorization model (`{config['architecture']}`, "
        f"{n_params / 1e6:.2f}M parameters): predicts CIE Lab ab from L.",
        "",
        "## Configuration",
        "",
        "| key | value |",
        "| --- | --- |",
        f"| architecture | `{config['architecture']}` |",
    ]
    for k, v in config["args"].items():
        lines.append(f"| args.{k} | `{json.dumps(v)}` |")
    for section in ("preprocessing", "decoding"):
        for k, v in (config.get(section) or {}).items():
            lines.append(f"| {section}.{k} | `{json.dumps(v)}` |")
    for k, v in config.items():
        if k not in _RESERVED and k != "name":
            lines.append(f"| {k} | `{json.dumps(v)}` |")
    lines += [
        "",
        "## Files",
        "",
        f"* `{CONFIG_NAME}`: architecture, arguments, preprocessing and decoding settings.",
        f"* `{WEIGHTS_NAME}`: weights (safetensors)"
        + (f"; only the tensors that differ from the base model `{config[BASE_KEY]['model']}` "
           f"(`{BASE_KEY}` in `{CONFIG_NAME}`, which pins the SHA-256 of the base's {WEIGHTS_NAME})."
           if config.get(BASE_KEY) else "."),
        "",
        "## Usage",
        "",
        "```python",
        "from lumachrome.models.io import load_model_dir",
        f'model, config = load_model_dir("{folder}")',
        "ab = model.predict_ab(L)  # L: (B, 1, H, W) in [0, 100] -> raw ab (B, 2, H, W)",
        "```",
        "",
    ]
    return "\n".join(lines)


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


# --------------------------------------------------------------------------- save


def save_model_dir(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    architecture: str,
    args: dict[str, Any],
    preprocessing: dict[str, Any],
    decoding: dict[str, Any] | None = None,
    card: str = "",
    extra: dict[str, Any] | None = None,
    base: str | os.PathLike[str] | None = None,
    half: bool = False,
) -> Path:
    """Write ``model`` as a model folder at ``path`` (atomically) and return the path.

    Args:
        model: the network; its state dict must match ``create_model(architecture, **args)``
            (checked before anything is written, so a saved folder always loads).
        architecture: a registered name (:func:`~lumachrome.models.registry.list_models`).
        args: factory keyword arguments (JSON-serialisable). For ``UNetColorizer`` prefer
            ``architecture="unet", args=model.args`` (self-contained, independent of presets).
        preprocessing: e.g. ``{"size": 256}``.
        decoding: e.g. ``{"temperature": 0.38}``; default: the model's ``default_temperature``.
        card: ``README.md`` text; empty: a generated card listing the config.
        extra: further top-level config keys (``name``, ``training``, ``metrics``, ...).
        base: a full model folder or shipped name: store only the tensors that are not bit-identical
            to the base's and reference the base (with the SHA-256 of its weights) in ``config.json``
            (module doc). A shipped model is referenced by its name, any other folder by its path
            relative to ``path``. The base may hold no tensor the network lacks (the merged state
            would not load strictly): ``ModelError`` before anything is written. Default: a full folder.
        half: store the network's floating-point *parameters* as float16 (half the file; buffers such as
            BatchNorm statistics stay float32, since small running variances would lose precision).
            Loading casts them back to float32 (``load_state_dict`` copies into the float32 network), so
            the loaded model computes in float32 with weights rounded to 11 significant bits; the config
            records it as ``"storage": {"parameters": "float16"}``.

    The folder is built in a temporary sibling and renamed into place; an existing folder at
    ``path`` is replaced only after the new one is complete.
    """
    path = Path(path)
    get_factory(architecture)  # ModelError for unknown names
    if not isinstance(args, dict):
        raise ModelError(f"save_model_dir: args must be a dict, got {type(args).__name__}")
    if decoding is None:
        decoding = {"temperature": float(getattr(model, "default_temperature", ANNEALED_MEAN_TEMPERATURE))}
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(_RESERVED))
    if clash:
        raise ModelError(f"save_model_dir: extra keys {clash} clash with reserved config keys")
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "args": _json_ready(args, "args"),
        "preprocessing": _json_ready(dict(preprocessing), "preprocessing"),
        "decoding": _json_ready(dict(decoding), "decoding"),
        **_json_ready(extra, "extra"),
    }

    # CPU, contiguous, unshared copies (safetensors refuses shared or strided storage).
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    if half:
        params = {k for k, _ in model.named_parameters()}
        for k in params & set(state):
            v = state[k]
            if v.is_floating_point():
                if v.abs().max().item() >= 65504.0:
                    raise ModelError(f"save_model_dir: parameter {k} exceeds the float16 range; save without half")
                state[k] = v.to(torch.float16)
        config["storage"] = {"parameters": "float16"}
    # The weights must load into the model the config describes: build it on the meta device
    # (no memory, no init) and compare names and shapes.
    with torch.device("meta"):
        reference = create_model(architecture, **config["args"])
    problem = _compare_state(_shapes(reference.state_dict()), _shapes(state))
    if problem:
        raise ModelError(
            f"save_model_dir: model does not match architecture {architecture!r} with args "
            f"{json.dumps(config['args'])}: {problem}"
        )

    from safetensors.torch import save_file

    if path.exists() and not path.is_dir():
        raise ModelError(f"{path}: exists and is not a folder")
    if base is not None:
        ref, base_state, digest = _base_for_save(base, path)
        # The merged state must be exactly this network's (loads are strict): the base may not hold
        # tensors the network lacks.
        extra_in_base = sorted(set(base_state) - set(state))
        if extra_in_base:
            raise ModelError(f"base {os.fspath(base)!r}: has {len(extra_in_base)} tensor(s) this network lacks "
                             f"({_fmt_keys(extra_in_base)}); it cannot be this model's base")
        state = {k: v for k, v in state.items() if not same_tensor(v, base_state.get(k))}
        config[BASE_KEY] = {"model": ref, "sha256": digest}
    n_params = sum(p.numel() for p in model.parameters())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    except OSError as e:
        raise ModelError(f"{path}: cannot write model folder ({e.strerror or e})") from e
    try:
        _write_text(tmp / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        _write_text(tmp / CARD_NAME, card or _default_card(config, n_params, path.name))
        apply_umask(tmp)  # mkdtemp and safetensors make 0700/0600: the umask's modes instead
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / "m")  # move aside, then swap in the new folder
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old / "m", path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except OSError as e:
        raise ModelError(f"{path}: cannot write model folder ({e.strerror or e})") from e
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _base_for_save(base: str | os.PathLike[str], out: Path) -> tuple[str, dict[str, torch.Tensor], str]:
    """For ``save_model_dir(base=...)``: how ``out``'s config refers to the base (a shipped name, else the
    path relative to ``out``), the base's tensors, and the SHA-256 of its weights file."""
    folder = resolve_model_dir(base)
    config = read_config(folder)
    if config.get(BASE_KEY):
        raise ModelError(f"base {os.fspath(base)!r}: {folder} stores only differences from its own base "
                         f"{config[BASE_KEY]['model']!r}; give a full model folder as the base")
    if folder.resolve() == out.resolve():
        raise ModelError(f"base {os.fspath(base)!r}: is the folder being written ({out}); give another model")
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelError(f"base {os.fspath(base)!r}: {folder}: {WEIGHTS_NAME} missing")
    shipped = {p.resolve(): name for name, p in shipped_model_dirs().items()}
    ref = shipped.get(folder.resolve()) or os.path.relpath(os.path.abspath(folder), os.path.abspath(out))
    try:
        data = weights.read_bytes()
    except OSError as e:
        raise ModelError(f"{weights}: cannot read ({e.strerror or e})") from None
    digest = hashlib.sha256(data).hexdigest()  # of the very bytes whose tensors are compared
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    try:
        tensors = load_bytes(data)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise _unreadable(weights, e) from None
    return ref, tensors, digest


# --------------------------------------------------------------------------- load


def _resolve_folder(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_file() and path.name in (CONFIG_NAME, WEIGHTS_NAME):
        path = path.parent  # accept the config or weights file itself
    if not path.exists():
        raise ModelError(f"{path}: model folder not found")
    if not path.is_dir():
        raise ModelError(f"{path}: not a lumachrome model folder (not a directory)")
    return path


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a model folder's ``config.json`` (``ModelError`` naming the file otherwise)."""
    folder = _resolve_folder(path)
    cfg_path = folder / CONFIG_NAME
    if not cfg_path.is_file():
        raise ModelError(f"{folder}: not a lumachrome model folder ({CONFIG_NAME} missing)")
    try:
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ModelError(f"{cfg_path}: invalid JSON ({e.msg} at line {e.lineno})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"{cfg_path}: cannot read ({e})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ModelError(
            f"{cfg_path}: not a lumachrome model config (format {found!r}, expected {FORMAT!r})"
        )
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{cfg_path}: unsupported format_version {version!r} (this lumachrome reads {FORMAT_VERSION})"
        )
    if not isinstance(config.get("architecture"), str):
        raise ModelError(f"{cfg_path}: 'architecture' missing or not a string")
    if not isinstance(config.get("args", {}), dict):
        raise ModelError(f"{cfg_path}: 'args' must be an object")
    for section in ("preprocessing", "decoding"):
        if not isinstance(config.get(section) or {}, dict):
            raise ModelError(f"{cfg_path}: {section!r} must be an object")
    base = config.get(BASE_KEY)
    if base is not None and not (
        isinstance(base, dict) and isinstance(base.get("model"), str) and base["model"].strip()
        and isinstance(base.get("sha256"), str) and _SHA256.fullmatch(base["sha256"])
    ):
        raise ModelError(f"{cfg_path}: {BASE_KEY!r} must be {{\"model\": a shipped name or a folder relative to "
                         f"this one, \"sha256\": 64 lowercase hex digits}}, got {json.dumps(base)[:120]}")
    config.setdefault("args", {})
    config["preprocessing"] = config.get("preprocessing") or {}
    config["decoding"] = config.get("decoding") or {}
    return config


def _base_dir(folder: Path, ref: str) -> Path:
    """The base folder ``ref`` of the model folder ``folder``: a shipped name, else a path relative to it."""
    if "/" not in ref and os.sep not in ref:
        shipped = shipped_model_dirs()
        if ref in shipped:
            return shipped[ref]
    path = Path(ref).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else folder / path))  # lexically, as written


def base_weights(path: str | os.PathLike[str], config: dict[str, Any] | None = None) -> Path | None:
    """The base's weights file of a model folder that stores only differences from a base (module doc),
    checked: present, itself a full folder, and with the SHA-256 pinned in ``config.json``; None for a
    full folder. ``config``: the folder's config when already read.

    Raises:
        ModelError (one line naming this folder's weights file and the base's): the base is missing,
            stores differences itself, or its weights are not the ones this folder was written against.
    """
    folder = _resolve_folder(path)
    if config is None:
        config = read_config(folder)
    base = config.get(BASE_KEY)
    if not base:
        return None
    own = folder / WEIGHTS_NAME
    ref, expected = base["model"], base["sha256"]
    base_folder = _base_dir(folder, ref)
    weights = base_folder / WEIGHTS_NAME
    if not weights.is_file():
        names = ", ".join(shipped_model_dirs()) or "none"
        raise ModelError(f"{own}: stores only the tensors that differ from base model {ref!r}, but the base is "
                         f"missing ({weights} not found; shipped models: {names}); install or restore it")
    if (base_folder / CONFIG_NAME).is_file() and read_config(base_folder).get(BASE_KEY):
        raise ModelError(f"{own}: base model {ref!r} ({base_folder}) stores only differences from a base itself; "
                         "a base must be a full model folder")
    found = file_sha256(weights)
    if found != expected:
        raise ModelError(f"{own}: base weights {weights} have sha256 {found[:12]}..., but {folder / CONFIG_NAME} "
                         f"expects {expected[:12]}... (the base changed since this model was written; restore it "
                         "or re-export this model against it)")
    return weights


def weights_files(path: str | os.PathLike[str], config: dict[str, Any] | None = None) -> list[Path]:
    """The safetensors files whose tensors make up a model folder's state, in merge order: the base's
    weights (checked, :func:`base_weights`) when it has a base, then its own ``model.safetensors``."""
    folder = _resolve_folder(path)
    if config is None:
        config = read_config(folder)
    own = folder / WEIGHTS_NAME
    if not own.is_file():
        raise ModelError(f"{folder}: {WEIGHTS_NAME} missing")
    base = base_weights(folder, config)
    return [base, own] if base is not None else [own]


def read_weights(path: str | os.PathLike[str], config: dict[str, Any] | None = None) -> dict[str, torch.Tensor]:
    """A model folder's complete state dict on the CPU (the base's tensors merged with its own, own ones
    winning; :func:`weights_files`), not checked against the architecture (:func:`load_model_dir` does)."""
    return _merged_tensors(weights_files(path, config))


def read_weights_file(weights: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; when it lies in a model folder (a ``config.json`` beside it), the
    folder's complete state (:func:`read_weights`: with its base model's tensors, if any). Errors of a
    plain file are safetensors' own."""
    from safetensors.torch import load_file

    weights = Path(weights)
    return read_weights(weights.parent) if (weights.parent / CONFIG_NAME).is_file() else load_file(str(weights))


def _merged_tensors(files: list[Path]) -> dict[str, torch.Tensor]:
    """The tensors of ``files`` (:func:`weights_files`' order) in one dict, later files winning."""
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(_load_tensors(f))
    return state


def load_model_dir(
    path: str | os.PathLike, device: str | torch.device = "cpu", *, config: dict[str, Any] | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a model folder written by :func:`save_model_dir`.

    Builds ``create_model(config["architecture"], **config["args"])``, loads ``model.safetensors``
    strictly (names and shapes must match exactly; for a folder with a base, the base's tensors merged
    with its own after the base's SHA-256 is checked, :func:`weights_files`), moves it to ``device``
    (``"auto"``: CUDA when available), sets eval mode and ``model.default_temperature`` from
    ``config["decoding"]``.

    Returns:
        ``(model, config)`` with ``config`` the parsed ``config.json`` (``config`` when given: the
        folder's config already read by :func:`read_config` / :func:`open_model`, not read again).

    Raises:
        ModelError: missing folder/config/weights, invalid JSON, unknown format version or
            architecture, bad args, unreadable safetensors, a missing or changed base, or weights that
            do not match the config.
    """
    folder = _resolve_folder(path)
    if config is None:
        config = read_config(folder)
    cfg_path = folder / CONFIG_NAME

    temperature = config["decoding"].get("temperature", ANNEALED_MEAN_TEMPERATURE)
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not math.isfinite(temperature)
        or temperature <= 0
    ):
        raise ModelError(f"{cfg_path}: decoding.temperature must be a positive number, got {temperature!r}")

    files = weights_files(folder, config)  # the base (checked) first, then the folder's own
    weights = files[-1]
    where = f"{weights} (with base {files[0]})" if len(files) > 1 else str(weights)

    # Names and shapes first, without allocating: the network on the meta device against the
    # file's header (a config with enormous widths used to allocate gigabytes before failing here).
    try:
        with torch.device("meta"):
            reference = create_model(config["architecture"], **config["args"])
    except ModelError as e:
        raise ModelError(f"{cfg_path}: {e}") from None
    header: dict[str, tuple[int, ...]] = {}
    for f in files:
        header.update(_header_shapes(f))
    problem = _compare_state(_shapes(reference.state_dict()), header)
    del reference
    if problem:
        raise ModelError(
            f"{where}: weights do not match {CONFIG_NAME} (architecture "
            f"{config['architecture']!r}): {problem}"
        )
    model = create_model(config["architecture"], **config["args"])
    state = _merged_tensors(files)
    problem = _compare_state(_shapes(model.state_dict()), _shapes(state))
    if problem:  # the header said otherwise: a damaged file
        raise ModelError(f"{where}: weights do not match {CONFIG_NAME}: {problem}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # e.g. dtypes that cannot be copied; keep it to one line
        raise ModelError(f"{where}: {' '.join(str(e).split())[:300]}") from None
    model.to(resolve_device(device))
    model.eval()
    if hasattr(model, "default_temperature"):
        model.default_temperature = float(temperature)
    return model, config


# --------------------------------------------------------------------------- names and shipped models


def weights_root() -> Path | None:
    """The package folder ``lumachrome/weights`` as a filesystem path (None when not a folder)."""
    try:
        root = resources.files("lumachrome") / "weights"
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - broken installation
        return None
    path = Path(str(root))
    return path if path.is_dir() else None


def shipped_model_dirs() -> dict[str, Path]:
    """The shipped models, name -> folder (``lumachrome/weights/<name>/`` with a config), sorted by name."""
    root = weights_root()
    if root is None:
        return {}
    return {p.name: p for p in sorted(root.iterdir(), key=lambda p: p.name) if (p / CONFIG_NAME).is_file()}


def available_models() -> list[str]:
    """Sorted names of the models shipped in ``lumachrome/weights/<name>/`` (folders with a config)."""
    return list(shipped_model_dirs())


def resolve_model_dir(name_or_dir: str | os.PathLike[str]) -> Path:
    """A shipped model name -> its package folder; otherwise the argument as a folder path.

    A plain name (no path separator, given as ``str``) is looked up among the shipped models first,
    so ``"photo"`` means the shipped model even if the current folder has a ``photo/`` folder; write
    ``./photo`` for the latter.
    """
    text = os.fspath(name_or_dir)
    is_plain_name = isinstance(name_or_dir, str) and text and os.sep not in text and "/" not in text
    shipped = shipped_model_dirs()
    if is_plain_name and text in shipped:
        return shipped[text]
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    names = ", ".join(shipped) or "none"
    if path.exists():
        raise ModelError(f"model {text!r}: not a model folder (shipped models: {names})")
    raise ModelError(f"unknown model {text!r}: neither a shipped model (available: {names}) nor a folder")


@dataclass(frozen=True)
class ModelFolder:
    """A model folder whose ``config.json`` has been read (once): what :func:`open_model` returns and
    :func:`lumachrome.pipeline.load_pipeline` loads."""

    #: The folder (a shipped model's package folder, or the folder given).
    path: Path
    #: Its validated ``config.json`` (:func:`read_config`).
    config: dict[str, Any]

    @property
    def task(self) -> str:
        """``"translate"`` for image-to-image models, else ``"colorize"``."""
        return "translate" if self.config.get("task") == "translate" else "colorize"

    def require(self, task: str) -> ModelFolder:
        """``self`` when its :attr:`task` is ``task``, else ``ModelError`` saying which loader it needs."""
        if self.task == task:
            return self
        if task == "colorize":
            raise ModelError(f"{self.path}: an image-to-image model (task 'translate'); load it with "
                             "lumachrome.translate.Translator (the CLI does this for you)")
        raise ModelError(f"{self.path}: not an image-to-image model (config task {self.config.get('task')!r}, "
                         "expected 'translate'); use Colorizer for colorization models")  # fmt: skip


def open_model(name_or_dir: str | os.PathLike[str] | ModelFolder) -> ModelFolder:
    """Resolve a shipped name or folder (:func:`resolve_model_dir`) and read its config, once."""
    if isinstance(name_or_dir, ModelFolder):
        return name_or_dir
    folder = resolve_model_dir(name_or_dir)
    return ModelFolder(folder, read_config(folder))


def open_folder(path: str | os.PathLike[str]) -> ModelFolder:
    """A model *folder* (never a shipped name; its ``config.json`` or weights file is accepted too), its
    config read once; ``ModelError`` "model folder not found" and the like otherwise."""
    folder = _resolve_folder(path)
    return ModelFolder(folder, read_config(folder))


def update_config(folder: str | os.PathLike[str], change: Callable[[dict[str, Any]], None]) -> Path:
    """Update a model folder's ``config.json`` in place: read it (validated), let ``change`` edit the
    dict, write it back atomically (2-space JSON). Returns the config file's path."""
    config = read_config(folder)
    change(config)
    path = _resolve_folder(folder) / CONFIG_NAME
    atomic_write_text(path, json.dumps(config, indent=2) + "\n", error=ModelError, fsync=True)
    return path
