"""Name -> factory registry for colorization networks.

A model folder's ``config.json`` stores ``architecture`` (a registered name) and ``args`` (the
keyword arguments of its factory), so :func:`create_model` can rebuild the exact network before its
weights are loaded. Factories register themselves with :func:`register_model` when their module is
imported; ``lumachrome.models`` imports every architecture module explicitly, nothing else does.

Example::

    @register_model("unet")
    def unet(**args) -> nn.Module:
        return UNetColorizer(**args)

    model = create_model("unet", widths=[16, 32], head="regression")
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from lumachrome.errors import ModelError

__all__ = ["create_model", "list_models", "register_model"]

Factory = Callable[..., nn.Module]

_REGISTRY: dict[str, Factory] = {}


def register_model(name: str) -> Callable[[Factory], Factory]:
    """Decorator registering ``factory(**args) -> nn.Module`` under ``name``.

    Registering the same name twice is a programming error (``ValueError``), unless it is the very
    same function (a module imported twice under different names).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_model: name must be a non-empty string, got {name!r}")

    def decorator(factory: Factory) -> Factory:
        old = _REGISTRY.get(name)
        if old is not None and old is not factory and (
            old.__module__ != factory.__module__ or old.__qualname__ != factory.__qualname__
        ):
            raise ValueError(
                f"register_model: {name!r} is already registered by {old.__module__}.{old.__qualname__}"
            )
        _REGISTRY[name] = factory
        return factory

    return decorator


def list_models() -> list[str]:
    """Sorted names of every registered architecture."""
    return sorted(_REGISTRY)


def get_factory(name: str) -> Factory:
    """The factory registered under ``name`` (``ModelError`` listing the known names otherwise)."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        known = ", ".join(list_models()) or "none"
        raise ModelError(f"unknown model architecture {name!r} (known: {known})") from None


def create_model(name: str, **args: Any) -> nn.Module:
    """Build the network registered as ``name`` with keyword ``args``.

    Raises:
        ModelError: unknown ``name``; an argument the factory does not accept; a bad value (the
            factory raised ``TypeError``/``ValueError``). The message names the architecture and
            the argument.
    """
    factory = get_factory(name)
    try:
        inspect.signature(factory).bind(**args)
    except TypeError as e:  # unknown keyword / missing required one: report before building
        raise ModelError(f"model architecture {name!r}: bad arguments {sorted(args)}: {e}") from None
    except ValueError:  # builtins without a signature: let the call below decide
        pass
    try:
        model = factory(**args)
    except (TypeError, ValueError) as e:
        raise ModelError(f"model architecture {name!r}: {e}") from e
    if not isinstance(model, nn.Module):
        raise TypeError(f"factory for {name!r} returned {type(model).__name__}, not an nn.Module")
    return model
