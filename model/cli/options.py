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


def read_config_file(path: str) -> dict:
    """The TrainConfig fields of a ``--config`` JSON file (checked later, with the flags, by TrainConfig); Refusal
    in one line for a file that is missing, not one JSON object, or names a field TrainConfig does not have."""
    import dataclasses

    from model.cli.exit_codes import Refusal
    from model.fileio import UnreadableJson, read_json_object
    from model.train.config import TrainConfig

    try:
        data = read_json_object(path)
    except FileNotFoundError:
        raise Refusal(f"config file {path} does not exist") from None
    except UnreadableJson as exc:
        raise Refusal(f"config file {path} {exc.reason}: it must hold one JSON object of TrainConfig fields") from None
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise Refusal(f"config file {path}: unknown TrainConfig fields {', '.join(unknown)}")
    return data


__all__ = ["DEVICES", "add_device", "add_weights", "read_config_file"]
