"""The options several ``bcir`` commands share, worded once: which model (``--weights``) and which device."""

from __future__ import annotations

import argparse

DEVICES = "auto, cpu, cuda or cuda:N"


def add_weights(p: argparse.ArgumentParser, *, otherwise: str = "", metavar: str = "FILE",
                role: str = "the model to use") -> None:
    """``--weights``: a model file; else $BCIR_MODEL, else the registry's active model (model.registry.resolve)."""
    p.add_argument("--weights", metavar=metavar,
                   help=f"{role}, a .safetensors file (default: $BCIR_MODEL, else the active model, see `bcir models`"
                        f"{otherwise})")


def add_device(p: argparse.ArgumentParser, *, default: str | None = "auto") -> None:
    """``--device``: where the network runs (model.nn.runtime.resolve_device)."""
    p.add_argument("--device", default=default, metavar="DEVICE",
                   help=f"{DEVICES} (default {default or 'auto'}; auto is the GPU when there is one)")


__all__ = ["DEVICES", "add_device", "add_weights"]
