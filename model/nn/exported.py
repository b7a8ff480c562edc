"""The network exported to ONNX and run by ONNX Runtime or OpenVINO on the CPU, and which runtime runs a model.

The export: the BatchNorm-folded fp32 network (:func:`model.nn.runtime.fold_batchnorm`) as two ONNX graphs, made
once by ``torch.onnx.export`` (the torch.export-based exporter) with batch, height and width left free:
``segment`` (mask and malignancy logits, as :meth:`Runner.segment`) and ``classify`` (the encoder and the head alone,
as :meth:`Runner.classify`). They are cached beside the model, in ``.bcir-exported/`` next to ``NAME.safetensors``,
named by the weights' SHA-256 (the card's, which :func:`load_model` checked against the file) and the export recipe;
where that folder cannot be written, in the user cache folder (``user_cache_dir()/exported``). New weights have
another hash, so they are exported anew, and the stale export of the same model file is removed. A model without a
file (random weights, a test's network) is keyed by the hash of its tensors. Each file is written whole under a
temporary name and renamed. ONNX files are protobuf: nothing here unpickles.

ONNX Runtime and OpenVINO are optional (``pip install 'bcir-review[runtimes]'``); asking for one that is not
installed is a ConfigError in one line. OpenVINO runs in f32 unless asked otherwise: on a CPU with bf16 its own
default is bf16, whose masks do not match fp32's (README: CPU speed).

``runtime="auto"`` (the default everywhere) is :data:`CPU_RUNTIME_DEFAULT` on the CPU for a model that has a file
(its export is cached beside it) where that runtime is installed; torch (:class:`Runner`) otherwise: on a GPU, without
the extra, for a network without a file (random weights, a test's), or when bf16 is asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model.errors import ConfigError
from model.fileio import atomic_write_bytes, user_cache_dir
from model.nn.limits import TILE_PX
from model.nn.network import BCirUNet
from model.nn.runtime import Runner, available_cores, device_label, fold_batchnorm, resolve_device
from model.nn.weights import LoadedModel

RUNTIMES = ("auto", "torch", "onnxruntime", "openvino")
EXTRA = "pip install 'bcir-review[runtimes]'"
# How a graph is made; part of the cache key, so a change here exports every model anew.
EXPORT_RECIPE = f"torch.onnx dynamo opset 18, BatchNorm folded, fp32, free batch/height/width; torch {torch.__version__}"
OPSET = 18
CACHE_FOLDER = ".bcir-exported"
PARTS = ("segment", "classify")
_OUTPUTS = {"segment": ["mask", "malignancy"], "classify": ["malignancy"]}
_PACKAGES = {"onnxruntime": ("onnxruntime", "ONNX Runtime"), "openvino": ("openvino", "OpenVINO")}

# What ``runtime="auto"`` runs on the CPU when its package is installed (torch otherwise, and always on CUDA).
# bcir bench, one run, four 1024 bench tiles of the bundled model (README: CPU speed): OpenVINO f32 drew eager fp32's
# masks on every tile (Dice 1.0) at 2.9x the speed of torch's fp32 path and 1.8x that of the bf16 path shipped before
# (whose masks did not match); ONNX Runtime matched too, at 2.1x and 1.3x.
CPU_RUNTIME_DEFAULT = "openvino"

log = logging.getLogger(__name__)


def runtime_problem(runtime: str) -> str | None:
    """Why ``runtime`` cannot run here, as one line; None when it can (torch always can)."""
    if runtime not in _PACKAGES:
        return None
    module, label = _PACKAGES[runtime]
    try:
        __import__(module)
    except Exception as exc:  # noqa: BLE001 - absent, or installed but broken: either way one line, not a traceback
        kind = "not installed" if isinstance(exc, ModuleNotFoundError) else f"not usable ({type(exc).__name__}: {exc})"
        return f"{runtime}: {label} is {kind}: {EXTRA}, or use the torch runtime"
    return None


def _export_problem() -> str | None:
    for module in ("onnx", "onnxscript"):
        try:
            __import__(module)
        except Exception:  # noqa: BLE001
            return f"exporting the network to ONNX needs the {module} package: {EXTRA}, or use the torch runtime"
    return None


def weights_hash(model: LoadedModel) -> str:
    """The SHA-256 of the model's weights: its card's (checked against the file at load) when it has a file, else
    the hash of its tensors."""
    if model.path is not None and model.card.weights_sha256:
        return model.card.weights_sha256
    digest = hashlib.sha256()
    for name, tensor in sorted(model.net.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def _writable(folder: Path) -> bool:
    """Whether ``folder`` can be written, or made and written, without making it."""
    where = folder if folder.is_dir() else folder.parent
    return where.is_dir() and os.access(where, os.W_OK | os.X_OK)


def cache_folder(model: LoadedModel) -> Path:
    """``.bcir-exported`` beside the model's file when that can be written, else the user cache folder."""
    if model.path is not None:
        beside = Path(model.path).parent / CACHE_FOLDER
        if _writable(beside):
            return beside
    return user_cache_dir() / "exported"


@dataclass(frozen=True)
class ExportedModel:
    """The ONNX graphs of one model, and how long making them took here (0 when they came from the cache)."""

    segment: Path
    classify: Path
    weights_sha256: str
    export_seconds: float

    def path(self, part: str) -> Path:
        return self.segment if part == "segment" else self.classify


class _Classifier(nn.Module):
    """Runner.classify as a module: the encoder and the malignancy head, without the skips and the decoder."""

    def __init__(self, net: BCirUNet):
        super().__init__()
        self.encoders, self.head = net.trunk.encoders, net.malignancy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for encoder in self.encoders:
            x = encoder(x)
        return self.head(x)


@contextlib.contextmanager
def _quiet():
    """The exporter's progress lines, warnings and log records kept off stdout and stderr (``bcir ... --json``)."""
    loggers = [logging.getLogger(name) for name in ("torch", "torch.onnx", "torch.export", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _onnx_bytes(module: nn.Module, multiple: int, outputs: list[str]) -> bytes:
    dim = torch.export.Dim
    side = dict(min=1, max=TILE_PX[1] // multiple)
    shapes = ({0: dim("batch", min=1, max=1024), 2: multiple * dim("h", **side), 3: multiple * dim("w", **side)},)
    example = torch.zeros(2, 1, 2 * multiple, 2 * multiple)
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(module, (example,), dynamo=True, input_names=["tile"], output_names=outputs,
                                    dynamic_shapes=shapes, opset_version=OPSET, external_data=False, optimize=True,
                                    verbose=False)
    return program.model_proto.SerializeToString()


def _stem(model: LoadedModel) -> str:
    return Path(model.path).stem if model.path is not None else "unsaved"


def _cache_paths(model: LoadedModel, folder: Path | None = None) -> tuple[str, dict[str, Path]]:
    """The weights' hash and where their graphs are cached: ``STEM-HASH16-RECIPE8-PART.onnx``."""
    sha = weights_hash(model)
    recipe = hashlib.sha256(EXPORT_RECIPE.encode()).hexdigest()[:8]
    folder = Path(folder) if folder is not None else cache_folder(model)
    return sha, {part: folder / f"{_stem(model)}-{sha[:16]}-{recipe}-{part}.onnx" for part in PARTS}


def export_onnx(model: LoadedModel, folder: Path | None = None) -> ExportedModel:
    """The model's ONNX graphs: from the cache when they were made for these weights and this recipe, else made now
    and cached (and the stale ones of the same model file removed). ConfigError when the exporter is missing."""
    sha, paths = _cache_paths(model, folder)
    folder, stem = paths["segment"].parent, _stem(model)
    if all(p.is_file() for p in paths.values()):
        return ExportedModel(paths["segment"], paths["classify"], sha, 0.0)
    problem = _export_problem()
    if problem:
        raise ConfigError("runtime", problem)
    start = time.perf_counter()
    net = fold_batchnorm(model.net).float()
    modules = {"segment": net, "classify": _Classifier(net).eval()}
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # beside the model after all not writable (a read-only share): the user cache folder
        if folder.name != CACHE_FOLDER:
            raise
        return export_onnx(model, user_cache_dir() / "exported")
    for part in PARTS:
        if not paths[part].is_file():
            atomic_write_bytes(paths[part], _onnx_bytes(modules[part], model.net.multiple, _OUTPUTS[part]))
    if model.path is not None and folder.name == CACHE_FOLDER:  # beside the model: its stale exports go
        ours = re.compile(re.escape(stem) + r"-[0-9a-f]{16}-[0-9a-f]{8}-(segment|classify)\.onnx")
        for old in folder.iterdir():
            if ours.fullmatch(old.name) and old not in paths.values():
                with contextlib.suppress(OSError):
                    old.unlink()
    return ExportedModel(paths["segment"], paths["classify"], sha, time.perf_counter() - start)


def _numpy(batch: torch.Tensor) -> np.ndarray:
    return batch.detach().to("cpu", torch.float32).contiguous().numpy()


class OnnxRuntimeRunner:
    """The exported graphs in ONNX Runtime sessions on the CPU, one thread per available core; fp32."""

    runtime = "onnxruntime"

    def __init__(self, exported: ExportedModel, *, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or available_cores()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: its warnings are not the reader's concern
        self.exported = exported
        self.device = torch.device("cpu")
        self._sessions = {part: ort.InferenceSession(str(exported.path(part)), options,
                                                     providers=["CPUExecutionProvider"]) for part in PARTS}
        self.description = f"{device_label(self.device)}, fp32, ONNX Runtime {ort.__version__}"

    def segment(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask, malignancy = self._sessions["segment"].run(None, {"tile": _numpy(batch)})
        return torch.from_numpy(mask), torch.from_numpy(malignancy)

    def classify(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._sessions["classify"].run(None, {"tile": _numpy(batch)})[0])


class OpenVinoRunner:
    """The exported graphs compiled by OpenVINO for the CPU, once per input shape (a fixed shape runs faster than a
    free one, and whole views are tiles of one shape). ``precision``: ``f32`` (the default, fp32's masks), ``bf16``,
    or ``auto`` (OpenVINO's own choice: bf16 where the CPU has it)."""

    runtime = "openvino"
    _KEEP = 8  # compiled shapes kept

    def __init__(self, exported: ExportedModel, *, precision: str = "f32", threads: int | None = None):
        import openvino as ov

        self.exported = exported
        self.device = torch.device("cpu")
        self._core = ov.Core()
        self._config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads or available_cores()}
        if precision != "auto":
            self._config["INFERENCE_PRECISION_HINT"] = precision
        self._models = {part: self._core.read_model(str(exported.path(part))) for part in PARTS}
        self._compiled: OrderedDict = OrderedDict()
        self.precision = (self._core.get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()
                          if precision == "auto" else precision)
        self.description = f"{device_label(self.device)}, {self.precision}, OpenVINO {ov.get_version().split('-')[0]}"

    def _run(self, part: str, batch: torch.Tensor) -> list[np.ndarray]:
        x = _numpy(batch)
        key = (part, x.shape)
        compiled = self._compiled.get(key)
        if compiled is None:
            model = self._models[part].clone()
            model.reshape(list(x.shape))
            compiled = self._core.compile_model(model, "CPU", self._config)
            self._compiled[key] = compiled
            while len(self._compiled) > self._KEEP:
                self._compiled.popitem(last=False)
        self._compiled.move_to_end(key)
        result = compiled(x)
        return [np.array(result[output], copy=True) for output in compiled.outputs]  # the request reuses its buffers

    def segment(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask, malignancy = self._run("segment", batch)
        return torch.from_numpy(mask), torch.from_numpy(malignancy)

    def classify(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._run("classify", batch)[0])


def make_runner(model: LoadedModel, device: str | torch.device = "auto", *, runtime: str = "auto",
                bf16: bool | None = None):
    """What runs ``model`` on ``device``: a :class:`Runner` (torch), an :class:`OnnxRuntimeRunner` or an
    :class:`OpenVinoRunner`, each with ``segment``, ``classify``, ``device`` and ``description``. ``auto`` is
    :data:`CPU_RUNTIME_DEFAULT` on the CPU for a model with a file, where it is installed and no bf16 was asked
    for; else torch. An adopted runtime that fails here (its export, its load) falls back to torch, logged.
    ConfigError, in one line, for a runtime that is unknown, not installed, or asked for on a GPU."""
    if runtime not in RUNTIMES:
        raise ConfigError("runtime", f"{runtime!r} is unknown: use {', '.join(RUNTIMES)}")
    dev = resolve_device(device) if isinstance(device, str) else device
    if runtime == "auto":
        chosen = CPU_RUNTIME_DEFAULT if dev.type == "cpu" and not bf16 and model.path is not None else "torch"
        exportable = chosen != "torch" and (_export_problem() is None
                                            or all(p.is_file() for p in _cache_paths(model)[1].values()))
        if exportable and runtime_problem(chosen) is None:
            try:
                return make_runner(model, dev, runtime=chosen)
            except Exception as exc:  # noqa: BLE001 - an optional runtime that fails falls back to the shipped path
                log.warning("runtime %s failed (%s): running the network with torch", chosen,
                            " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
        return Runner.create(model.net, dev, bf16=bf16)
    if runtime == "torch":
        return Runner.create(model.net, dev, bf16=bf16)
    if dev.type != "cpu":
        raise ConfigError("runtime", f"{runtime} runs the network on the CPU here: use --device cpu, or the torch "
                                     f"runtime on {dev.type}")
    if bf16:
        raise ConfigError("runtime", f"bf16 is an option of the torch runtime; {runtime} runs fp32")
    problem = runtime_problem(runtime)
    if problem:
        raise ConfigError("runtime", problem)
    exported = export_onnx(model)
    return OnnxRuntimeRunner(exported) if runtime == "onnxruntime" else OpenVinoRunner(exported)


__all__ = ["CPU_RUNTIME_DEFAULT", "RUNTIMES", "ExportedModel", "OnnxRuntimeRunner", "OpenVinoRunner", "cache_folder",
           "export_onnx", "make_runner", "runtime_problem", "weights_hash"]
