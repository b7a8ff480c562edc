"""make gpu-check's script, dry-run on the CPU: every section measured and written, a failing section recorded while
the others still run, and no GPU a one-line refusal."""

from __future__ import annotations

import json

import pytest
import torch

from model.cli import gpu_check
from model.evaluate.bench import synthetic_cc_view
from model.nn.weights import LoadedModel, load_model, random_model
from model.registry.resolve import resolve_model


def test_a_dry_run_writes_every_section_and_a_failing_one_does_not_stop_the_rest(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(gpu_check, "whole_view", broken)
    out = tmp_path / "gpu.json"
    gpu_check.run(out, device_name="cpu", quick=True, tests=False)
    report = json.loads(out.read_text())
    assert report["finished"] is True and report["environment"]["device"] == "cpu"
    assert report["whole_view"] == {"error": "RuntimeError: CUDA error: an illegal memory access was encountered"}
    variants = report["tile"]["variants"]
    assert {"eager_fp32", "folded_channels_last_fp32", "shipped"} <= set(variants)
    assert variants["eager_fp32"]["mask_vs_eager_fp32"]["dice"] == 1.0
    # the folded network is the same function: its mask matches fp32's
    assert variants["folded_channels_last_fp32"]["mask_vs_eager_fp32"]["dice"] >= 0.99
    assert all(row["seconds_median"] > 0 for row in variants.values())
    assert report["tile"]["batch8"]["tile_shape"][0] == 8
    assert set(report["tile"]["batch8"]["variants"]) == {"eager_fp32", "shipped"}  # a dry run's batch: the shipped way
    assert report["two_pass_whole_view"] == report["whole_view"]  # it runs the view through whole_view too
    assert report["model"]["two_pass"] is False and report["model"]["passes"][0]["pass"] == "single"
    (name, row), = report["training"].items()
    assert name == "tile64_batch2_fp32" and row["tiles_per_s"] > 0 and row["batch"] == 2


def test_the_whole_view_section_compares_each_batch_size_with_the_cpu(tmp_path):
    model = load_model(resolve_model(None))
    image = synthetic_cc_view(tmp_path / "view", "small")
    section = gpu_check.whole_view(model, torch.device("cpu"), image, repeats=1)
    assert set(section["batches"]) == {str(b) for b in gpu_check.VIEW_BATCHES}
    for row in section["batches"].values():
        assert row["lesions"] == section["cpu_lesions"] and row["mask_dice_vs_cpu"] == 1.0
        assert row["tiles"] >= 1 and len(row["seconds_runs"]) == 1


def test_the_two_pass_section_runs_both_passes_and_says_when_the_fine_pass_is_a_stand_in(tmp_path):
    model = load_model(resolve_model(None))
    assert not model.two_pass  # the bundled model: its coarse pass with a stand-in fine pass
    image = synthetic_cc_view(tmp_path / "view", "small")
    section = gpu_check.two_pass_view(model, torch.device("cpu"), image, repeats=1, fine=(0.1, 128), quick=True)
    assert section["stand_in_fine_pass"] is True and "stand-in fine pass" in section["note"]
    assert section["passes"] == [{"pass": "coarse", "working_spacing_mm": model.preprocess.working_spacing_mm,
                                  "tile": model.tile_size}, {"pass": "fine", "working_spacing_mm": 0.1, "tile": 128}]
    for row in section["batches"].values():  # the same two passes at every batch size, and on the CPU
        assert row["fine_tiles"] == section["cpu_fine_tiles"] and row["mask_dice_vs_cpu"] == 1.0
        assert row["lesions"] == section["cpu_lesions"] and row["tiles"] >= 1


def test_a_two_pass_model_is_timed_as_it_is_and_a_quick_run_only_shrinks_its_fine_tile():
    coarse, fine = random_model(0, version="c"), random_model(1, version="f")
    pair = LoadedModel(net=coarse.net, card=coarse.card, path=None, fine=fine)
    assert gpu_check.two_pass_model(pair) == (pair, False)
    quick, stand_in = gpu_check.two_pass_model(pair, fine_tile=128)
    assert not stand_in and quick.fine.net is fine.net and quick.fine.tile_size == 128 and quick.net is coarse.net
    made, stand_in = gpu_check.two_pass_model(coarse)
    assert stand_in and made.fine.tile_size == 1024 and made.fine.preprocess.working_spacing_mm == 0.1
    assert made.fine.net is not coarse.net and made.card is coarse.card


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the refusal cannot be seen here")
def test_without_a_gpu_the_check_refuses_in_one_line(tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path / "gpu.json"), "--skip-tests"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gpu-check: ") and "CUDA" in err and "\n" not in err
    assert not (tmp_path / "gpu.json").exists()
