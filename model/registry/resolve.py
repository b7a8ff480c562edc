"""Which model is in use: ``--weights``, else ``$BCIR_MODEL``, else the registry's active version (the bundled
one until the site chooses another). The viewer and every ``bcir`` command ask this one function."""

from __future__ import annotations

import os
from pathlib import Path

from model.errors import ModelFileError
from model.registry.versions import ModelRegistry

MODEL_ENV = "BCIR_MODEL"
MODEL_OFF = ("none", "off", "0")  # BCIR_MODEL=none turns the AI off (the viewer's own tests use it)


def resolve_model(explicit: str | Path | None = None) -> Path | None:
    """The model file to use: ``explicit``, else $BCIR_MODEL, else the registry's active one.

    None when the AI is turned off (BCIR_MODEL=none). Raises :class:`ModelFileError` when nothing is given, no
    version is active and none is bundled.
    """
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(MODEL_ENV, "").strip()
    if env.lower() in MODEL_OFF:
        return None
    if env:
        return Path(env).expanduser()
    return ModelRegistry().active_path()


def require_model(explicit: str | Path | None = None) -> Path:
    """:func:`resolve_model` for a command that needs a model: the AI turned off is a one-line refusal."""
    path = resolve_model(explicit)
    if path is None:
        raise ModelFileError(f"the AI is turned off ({MODEL_ENV}={os.environ.get(MODEL_ENV, '').strip()}): "
                             "pass --weights NAME.safetensors or unset it")
    return path


__all__ = ["MODEL_ENV", "MODEL_OFF", "require_model", "resolve_model"]
