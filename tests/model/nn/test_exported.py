"""The runtime switch (model.nn.exported): ONNX Runtime and OpenVINO draw fp32's masks, the export is cached by the
weights' hash beside the model, and a runtime that cannot run here is refused in one line."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch

from model.cli.exit_codes import EXIT_REFUSED
from model.cli.main import main
from model.errors import ConfigError
from model.evaluate.bench import mask_agreement
from model.nn import exported
from model.nn.card import new_card
from model.nn.exported import OnnxRuntimeRunner, OpenVinoRunner, cache_folder, export_onnx, make_runner
from model.nn.network import BCirUNet
from model.nn.runtime import Runner
from model.nn.weights import LoadedModel, load_model, save_model

EXPORTER = ("onnx", "onnxscript")
RUNNERS = {"onnxruntime": OnnxRuntimeRunner, "openvino": OpenVinoRunner}


def _missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _needs(*modules: str):
    missing = _missing(*modules)
    return pytest.mark.skipif(bool(missing), reason=f"{', '.join(missing)} not installed (the optional runtimes "
                                                   "extra: pip install '.[runtimes]'); the refusal is tested below")


def _small_model(folder, seed: int = 0, version: str = "small") -> LoadedModel:
    """A small random-weight B-Cir U-Net (3 levels, 4 channels) saved as a real model pair and loaded back."""
    torch.manual_seed(seed)
    net = BCirUNet(base_channels=4, depth=3, head_hidden=8).eval()
    for module in net.modules():  # BatchNorm with statistics of its own, so folding it changes the weights
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return load_model(save_model(net, new_card(net, version=version), folder / "small.safetensors"))


def _tiles(seed: int = 1) -> torch.Tensor:
    return torch.rand(2, 1, 48, 80, generator=torch.Generator().manual_seed(seed))


def _median_mask_agreement(reference: torch.Tensor, other: torch.Tensor) -> dict:
    """Masks cut at the reference's median logit: half the pixels marked, so agreeing means something even for
    random weights, whose logits may all share one sign."""
    cut = reference.median()
    return mask_agreement(reference - cut, other - cut)


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_each_exported_runtime_draws_fp32s_masks_and_malignancy(tmp_path, runtime):
    missing = _missing(runtime, *EXPORTER)
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (the optional runtimes extra); the refusal is tested below")
    model = _small_model(tmp_path)
    tiles = _tiles()
    reference = Runner.create(model.net, "cpu", fast=False)
    runner = make_runner(model, "cpu", runtime=runtime)
    assert isinstance(runner, RUNNERS[runtime]) and runner.device.type == "cpu"
    assert ("ONNX Runtime" if runtime == "onnxruntime" else "OpenVINO") in runner.description
    mask, malignancy = runner.segment(tiles)
    ref_mask, ref_malignancy = reference.segment(tiles)
    assert mask.shape == ref_mask.shape and mask.dtype == torch.float32
    agreement = _median_mask_agreement(ref_mask, mask)
    assert agreement["reference_pixels"] > 1000 and agreement["dice"] >= 0.99
    assert torch.allclose(mask, ref_mask, atol=1e-4)
    assert torch.allclose(malignancy, ref_malignancy, atol=1e-4)
    assert torch.allclose(runner.classify(tiles), reference.classify(tiles), atol=1e-4)
    other = torch.rand(1, 1, 32, 32)  # another shape: the graphs take any batch and any multiple of 4
    assert torch.allclose(runner.segment(other)[0], reference.segment(other)[0], atol=1e-4)


@_needs("onnxruntime", *EXPORTER)
def test_the_export_is_made_once_per_weights_and_a_changed_weight_file_is_exported_anew(tmp_path):
    first = _small_model(tmp_path, seed=0, version="first")
    made = export_onnx(first)
    assert made.export_seconds > 0 and made.weights_sha256 == first.card.weights_sha256
    assert made.segment.parent == tmp_path / ".bcir-exported" and first.card.weights_sha256[:16] in made.segment.name
    again = export_onnx(load_model(first.path))  # a new load of the same file: from the cache
    assert again.export_seconds == 0.0 and (again.segment, again.classify) == (made.segment, made.classify)
    for path in (made.segment, made.classify):
        head = path.read_bytes()[:2]
        assert head[:1] != b"\x80" and head != b"PK"  # protobuf: neither a pickle nor torch.save's zip of one

    second = _small_model(tmp_path, seed=5, version="second")  # the same file name, other weights
    assert second.card.weights_sha256 != first.card.weights_sha256
    remade = export_onnx(second)
    assert remade.export_seconds > 0 and remade.segment != made.segment
    assert not made.segment.exists() and not made.classify.exists()  # the stale export of this file is gone
    tiles = _tiles()
    runner = make_runner(second, "cpu", runtime="onnxruntime")
    assert torch.allclose(runner.segment(tiles)[0], Runner.create(second.net, "cpu", fast=False).segment(tiles)[0],
                          atol=1e-4)


@_needs("onnxruntime", *EXPORTER)
def test_a_model_whose_folder_cannot_be_written_is_exported_to_the_user_cache(tmp_path, monkeypatch):
    model = _small_model(tmp_path)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    elsewhere = LoadedModel(model.net, model.card, blocked / "small.safetensors")  # .bcir-exported cannot be made
    assert cache_folder(elsewhere) == tmp_path / "user-cache" / "exported"  # BCIR_CACHE_DIR (tests/conftest.py)
    unsaved = LoadedModel(model.net, model.card, None)  # no file: keyed by the tensors' hash
    made = export_onnx(unsaved)
    assert made.segment.parent == tmp_path / "user-cache" / "exported"
    assert made.weights_sha256 == exported.weights_hash(unsaved) != model.card.weights_sha256


def test_a_runtime_that_cannot_run_here_is_refused_in_one_line(tmp_path, monkeypatch):
    model = _small_model(tmp_path)
    for runtime in ("onnxruntime", "openvino"):
        monkeypatch.setitem(sys.modules, runtime, None)  # as if not installed: import raises ModuleNotFoundError
        with pytest.raises(ConfigError) as refused:
            make_runner(model, "cpu", runtime=runtime)
        line = str(refused.value)
        assert "\n" not in line and "not installed" in line and "bcir-review[runtimes]" in line, line
        assert exported.runtime_problem(runtime) in line
    with pytest.raises(ConfigError, match="unknown: use auto, torch, onnxruntime, openvino"):
        make_runner(model, "cpu", runtime="tensorrt")
    with pytest.raises(ConfigError, match="on the CPU here"):
        make_runner(model, torch.device("cuda"), runtime="onnxruntime")  # refused before CUDA is touched
    with pytest.raises(ConfigError, match="bf16 is an option of the torch runtime"):
        make_runner(model, "cpu", runtime="openvino", bf16=True)
    # auto falls back to torch where the adopted runtime is not installed
    monkeypatch.setattr(exported, "CPU_RUNTIME_DEFAULT", "onnxruntime")
    assert isinstance(make_runner(model, "cpu"), Runner)
    assert not (tmp_path / ".bcir-exported").exists()  # nothing was exported for a runtime that cannot run


def test_bcir_infer_refuses_an_unknown_runtime_in_one_line(tmp_path, capsys):
    model = _small_model(tmp_path)
    image = tmp_path / "x.png"
    image.write_bytes(b"")
    assert main(["infer", str(image), "--weights", str(model.path), "--runtime", "tensorrt", "--device", "cpu",
                 "--out", str(tmp_path / "out")]) == EXIT_REFUSED
    assert capsys.readouterr().err.splitlines()[-1] == (
        "bcir infer: runtime 'tensorrt' is unknown: use auto, torch, onnxruntime, openvino")


def test_auto_is_the_adopted_runtime_for_a_model_file_where_installed_and_torch_otherwise(tmp_path):
    model = _small_model(tmp_path)
    assert isinstance(make_runner(model, "cpu", runtime="torch"), Runner)
    assert isinstance(make_runner(model, "cpu", bf16=True), Runner)  # bf16 is torch's: auto honours it
    unsaved = make_runner(LoadedModel(model.net, model.card, None), "cpu")
    assert isinstance(unsaved, Runner) and unsaved.autocast_dtype is None  # no file to cache an export beside: fp32
    adopted = exported.CPU_RUNTIME_DEFAULT
    runner = make_runner(model, "cpu")
    if adopted == "torch" or exported.runtime_problem(adopted) or _missing(*EXPORTER):
        assert isinstance(runner, Runner)
    else:
        assert isinstance(runner, RUNNERS[adopted])
        assert (tmp_path / ".bcir-exported").is_dir()  # exported once, beside the model
    tiles = _tiles(3)  # whichever it is, it draws eager fp32's masks
    reference = Runner.create(model.net, "cpu", fast=False).segment(tiles)[0]
    assert _median_mask_agreement(reference, runner.segment(tiles)[0])["dice"] >= 0.99
    assert np.allclose(runner.segment(tiles)[0].numpy(), reference.numpy(), atol=1e-4)
