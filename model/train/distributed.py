"""Training on several processes under ``torchrun``: the rank, the process group, the ranks kept in step."""

from __future__ import annotations

import hashlib
import os

import torch


def dist_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) as ``torchrun`` sets them; (0, 1, 0) on one process."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def init_distributed(device: torch.device) -> bool:
    """Join the process group when there are several ranks (gloo on CPU, NCCL on CUDA); False on one process."""
    rank, world, _ = dist_env()
    if world <= 1:
        return False
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


def average_buffers(net: torch.nn.Module, world: int) -> None:
    """BatchNorm statistics are updated by each rank's own batches; average them so every rank holds the same model."""
    import torch.distributed as dist

    for buffer in net.buffers():
        if buffer.is_floating_point():
            dist.all_reduce(buffer)
            buffer.div_(world)
        else:
            dist.broadcast(buffer, src=0)


def weight_digest(net: torch.nn.Module) -> str:
    """A short hash of the weights: the ranks' digests agree when they hold the same model."""
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
