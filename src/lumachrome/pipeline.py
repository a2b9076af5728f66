"""One way to load a model for inference: :func:`load_pipeline`.

::

    from lumachrome.pipeline import load_pipeline

    pipe = load_pipeline("photo")     # a Colorizer (config task: colorize, the default)
    pipe = load_pipeline("nir")       # a Translator (config task: translate)

A shipped name or a model folder is resolved and its ``config.json`` read **once**
(:func:`lumachrome.models.io.open_model`); ``config.task`` picks the inference object, which is built
from the already read config (:meth:`Colorizer.from_folder <lumachrome.colorizer.Colorizer.from_folder>`,
:meth:`Translator.from_folder <lumachrome.translate.Translator.from_folder>`: one load path, the device
resolved once by :func:`lumachrome.precision.resolve_device`). The CLI, the web app, evaluation and
explain all load through here; a caller that must know the task before loading (to check its options
first) opens the folder itself and passes the :class:`~lumachrome.models.io.ModelFolder` on.
"""

from __future__ import annotations

import os
from typing import Any, Union

import torch

from lumachrome.colorizer import Colorizer
from lumachrome.errors import ConfigError
from lumachrome.models.io import ModelFolder, open_model
from lumachrome.translate import Translator

__all__ = ["Pipeline", "TASKS", "load_pipeline"]

#: What :func:`load_pipeline` returns.
Pipeline = Union[Colorizer, Translator]
#: ``config.task`` -> the inference class.
TASKS: dict[str, type] = {"colorize": Colorizer, "translate": Translator}


def load_pipeline(
    name_or_dir: str | os.PathLike[str] | ModelFolder,
    device: str | torch.device = "auto",
    *,
    task: str | None = None,
    **options: Any,
) -> Pipeline:
    """The inference object of a shipped model or model folder: a :class:`Colorizer` or a :class:`Translator`.

    Args:
        name_or_dir: a shipped name, a model folder, or a folder already opened with
            :func:`~lumachrome.models.io.open_model` (its config is not read again).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``.
        task: when given, the task the caller expects (``"colorize"`` / ``"translate"``): another one is a
            ``ModelError`` (the message of :meth:`Colorizer.load` / :meth:`Translator.load`).
        **options: keyword arguments of :meth:`Colorizer.from_folder` (``size``, ``backend``, ``saturation``,
            ``flip``, ``adaptive``...) or of :class:`Translator` (``size``, ``mode``, ``tile``...); None
            values are left out (the model's defaults apply).

    Raises:
        ModelError: unknown name, not a model folder, weights that do not match the config, another task
            than ``task``.
        ConfigError: a bad device or option.
    """
    if task is not None and task not in TASKS:
        raise ConfigError(f"task {task!r}: use one of {', '.join(TASKS)}")
    model = open_model(name_or_dir)
    if task is not None:
        model.require(task)
    kwargs = {k: v for k, v in options.items() if v is not None}
    return TASKS[model.task].from_folder(model, device, **kwargs)
