"""Training checkpoints: one safetensors file holds the model, the optimiser and (in its metadata) the loop state."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from model.fileio import atomic_write_bytes
from model.nn.network import BCirUNet


def save_checkpoint(path: Path, net: BCirUNet, optimizer: torch.optim.Optimizer, state: dict) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    opt_state = optimizer.state_dict()
    for pid, values in opt_state["state"].items():
        for name, value in values.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"optim.{pid}.{name}"] = t.detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {"state": json.dumps(state), "param_groups": json.dumps(opt_state["param_groups"])}
    atomic_write_bytes(path, save_safetensors(tensors, metadata=meta))


def load_checkpoint(path: Path, net: BCirUNet, optimizer: torch.optim.Optimizer) -> dict:
    """Restore ``net``, ``optimizer`` and torch's RNG from ``path``; the loop state saved with them."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_state: dict = {"state": {}, "param_groups": json.loads(meta["param_groups"])}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            opt_state["state"].setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict(opt_state)
    torch.set_rng_state(tensors["rng.torch"])
    return json.loads(meta["state"])
