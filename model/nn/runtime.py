"""Running the network fast on the device at hand.

``auto`` picks CUDA when present, else the CPU. On CUDA: cudnn benchmark,
BatchNorm folded, channels_last, fp32 without TF32 (bf16 is measured, not
shipped: see :data:`CUDA_BF16_DEFAULT`). On the CPU: BatchNorm folded into
the convolutions, channels_last, ``inference_mode``, one thread per available
core, fp32 (bf16 autocast on request, where the CPU has native bf16: its masks
do not match fp32's, see :data:`CPU_BF16_DEFAULT`). This is the torch runtime;
:mod:`model.nn.exported` runs the same network in ONNX Runtime or OpenVINO.
"""

from __future__ import annotations

import copy
import os
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from model.errors import ConfigError
from model.nn.network import BCirUNet


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    flags = cpu_flags()
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` as a torch device; ConfigError for a name it is not, or CUDA
    asked for where there is none."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", f"{name!r} asks for CUDA, but this PyTorch build or machine has no CUDA GPU")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ConfigError("device", f"{name!r} is unknown: use auto, cpu or cuda")
    return torch.device(name)


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    return f"CPU ({available_cores()} cores{', bf16' if cpu_has_native_bf16() else ''})"


def fold_batchnorm(net: BCirUNet) -> BCirUNet:
    """A copy of ``net`` (eval) with every BatchNorm that follows a convolution folded into it."""
    net = copy.deepcopy(net).eval()

    def fold(seq: nn.Sequential) -> None:
        modules = list(seq)
        for i in range(1, len(modules)):
            bn = modules[i]
            if not isinstance(bn, nn.BatchNorm2d):
                continue
            prev = modules[i - 1]
            if isinstance(prev, nn.Conv2d):
                seq[i - 1] = fuse_conv_bn_eval(prev, bn)
                seq[i] = nn.Identity()
            elif hasattr(prev, "pointwise"):  # SeparableConv2d: fold into its pointwise conv
                prev.pointwise = fuse_conv_bn_eval(prev.pointwise, bn)
                seq[i] = nn.Identity()

    for module in net.modules():
        if isinstance(module, nn.Sequential):
            fold(module)
    return net


# On CUDA the shipped path stays in fp32 (BatchNorm folded, channels_last, no TF32). Measured with make gpu-check on
# an H200 (README: GPU figures), one 1024 tile of real tissue: fp32 8.1 ms and the very mask of eager fp32; bf16 4.2 ms
# but its mask only Dice 0.94 against fp32's; TF32 5.2 ms, Dice 1.00 on one tile and 0.99 on eight. A whole view at
# the demo model's 0.4 mm is two tiles, so exactness costs the reader no time they would notice.
CUDA_BF16_DEFAULT = False

# On the CPU too the shipped path is fp32. bf16 autocast (avx512_bf16/AMX) was the default where the CPU has it, until
# bcir bench measured it on its four bench tiles (the bundled model, every full view of a synthetic patient, 1024 px):
# its masks against eager fp32's, Dice 0.979 pooled (0.946 to 0.990 per tile), under the 0.99 the runtimes must meet,
# for 1.6x the speed of fp32 (README: CPU speed). ``bf16=True`` still asks for it.
CPU_BF16_DEFAULT = False


@dataclass
class Runner:
    """The network placed on a device, with the fast path chosen for it."""

    net: BCirUNet
    device: torch.device
    autocast_dtype: torch.dtype | None
    channels_last: bool
    tf32: bool = False  # CUDA: TensorFloat-32 in fp32 convolutions and matmuls (faster, 10-bit mantissa)

    @classmethod
    def create(cls, net: BCirUNet, device: str | torch.device = "auto", *, bf16: bool | None = None,
               tf32: bool = False, fast: bool = True) -> "Runner":
        """``fast=False`` gives plain eager fp32 (the benchmark's baseline); ``tf32`` only matters on CUDA, in fp32."""
        device = resolve_device(device) if isinstance(device, str) else device
        if not fast:
            return cls(copy.deepcopy(net).eval().to(device), device, None, False)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            runner_net = fold_batchnorm(net).to(device).to(memory_format=torch.channels_last)
            use_bf16 = CUDA_BF16_DEFAULT if bf16 is None else bf16
            return cls(runner_net, device, dtype if use_bf16 else None, True, tf32)
        torch.set_num_threads(available_cores())
        use_bf16 = (CPU_BF16_DEFAULT and cpu_has_native_bf16()) if bf16 is None else bf16
        runner_net = fold_batchnorm(net).to(memory_format=torch.channels_last)
        return cls(runner_net, device, torch.bfloat16 if use_bf16 else None, True)

    @property
    def description(self) -> str:
        precision = {torch.bfloat16: "bf16", torch.float16: "fp16", None: "fp32"}[self.autocast_dtype]
        if precision == "fp32" and self.tf32 and self.device.type == "cuda":
            precision = "tf32"
        return f"{device_label(self.device)}, {precision}{', channels_last' if self.channels_last else ''}"

    def _input(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self.device, non_blocking=True)
        return batch.contiguous(memory_format=torch.channels_last) if self.channels_last else batch

    def _autocast(self):
        if self.autocast_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    @contextmanager
    def precision(self):
        """The runner's arithmetic while the network runs: its autocast and, on CUDA, TF32 on or off (PyTorch's flags
        are process-wide, so they are set for the call and put back after it)."""
        if self.device.type != "cuda":
            with self._autocast():
                yield
            return
        saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = self.tf32
        try:
            with self._autocast():
                yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved

    @torch.inference_mode()
    def segment(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mask logits, malignancy logits) as float32 on the CPU for a (N, 1, H, W) batch."""
        with self.precision():
            mask, malignancy = self.net(self._input(batch))
        return mask.float().cpu(), malignancy.float().cpu()

    @torch.inference_mode()
    def classify(self, batch: torch.Tensor) -> torch.Tensor:
        """Malignancy logits only: the encoder and the head, without the decoder."""
        with self.precision():
            x = self._input(batch)
            self.net.check_input(x)
            for encoder in self.net.trunk.encoders:
                x = encoder(x)
            logits = self.net.malignancy(x)
        return logits.float().cpu()
