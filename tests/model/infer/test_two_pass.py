"""Two-pass models (issue 15, item 1): the coarse pass proposes, the fine pass looks closer on a tile centred on each
candidate; the pair is one model file set, one registry version, loaded, used, rolled back and removed whole."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch

from model.data.preprocess import PreprocessConfig
from model.errors import ModelFileError
from model.infer.predictor import Predictor, fine_tile_centres
from model.nn import weights as mweights
from model.nn.weights import LoadedModel, load_model, save_model, save_pair
from model.registry.versions import FINE_WEIGHTS_NAME, ModelRegistry
from tests.conftest import make_dicom
from tests.model.infer.test_inference import _disc_image


def _part(model: LoadedModel, spacing: float, *, version: str, mask_bias: float | None = None,
          malignant_bias: float | None = None) -> LoadedModel:
    """``model``'s network with a card at ``spacing``; ``mask_bias`` makes a part that sees nothing (or everything),
    ``malignant_bias`` one whose head says benign (negative) or malignant (positive) whatever it looks at."""
    net = copy.deepcopy(model.net)
    with torch.no_grad():
        if mask_bias is not None:
            net.trunk.head.bias.fill_(mask_bias)
        if malignant_bias is not None:
            net.malignancy.mlp[-1].weight.zero_()
            net.malignancy.mlp[-1].bias.fill_(malignant_bias)
    card = dataclasses.replace(model.card, version=version, tile_size=256,
                               preprocess=PreprocessConfig(working_spacing_mm=spacing))
    return LoadedModel(net=net, card=card, path=None)


@pytest.fixture
def disc_study(tmp_path):
    img, truth = _disc_image((600, 400), discs=((200, 120, 14), (420, 200, 12)))
    return make_dicom(tmp_path / "discs.dcm", img, PixelSpacing=[0.1, 0.1], ImageLaterality="L", ViewPosition="CC"), truth


def _pair(tmp_path, disc_model, name="pair", **fine_kwargs) -> LoadedModel:
    coarse = _part(disc_model, 0.2, version="coarse-part", malignant_bias=-30.0)
    fine = _part(disc_model, 0.1, version="fine-part", **{"malignant_bias": 30.0, **fine_kwargs})
    path = save_pair(coarse, fine, tmp_path / f"{name}.safetensors", version=f"{name}-v1")
    return load_model(path)


def test_a_pair_is_written_and_loaded_as_one_model(tmp_path, disc_model):
    model = _pair(tmp_path, disc_model)
    assert model.two_pass and model.version == "pair-v1" and model.fine.version == "pair-v1"
    assert model.preprocess.working_spacing_mm == 0.2 and model.fine.preprocess.working_spacing_mm == 0.1
    assert model.scoring is model.fine
    card = json.loads((tmp_path / "pair.json").read_text())
    assert card["fine"]["weights_file"] == "pair.fine.safetensors" and card["schema_version"] == 2
    assert card["fine"]["weights_sha256"] == json.loads((tmp_path / "pair.fine.json").read_text())["weights_sha256"]


def test_a_pair_with_a_missing_or_foreign_fine_pass_is_refused_in_one_line(tmp_path, disc_model):
    _pair(tmp_path, disc_model)
    other = _part(disc_model, 0.1, version="pair-v1", malignant_bias=5.0)
    save_model(other.net, other.card, tmp_path / "other.safetensors")
    (tmp_path / "pair.fine.safetensors").write_bytes((tmp_path / "other.safetensors").read_bytes())
    (tmp_path / "pair.fine.json").write_text((tmp_path / "other.json").read_text())
    with pytest.raises(ModelFileError) as foreign:
        load_model(tmp_path / "pair.safetensors")
    assert "not the fine pass" in str(foreign.value) and "\n" not in str(foreign.value)
    (tmp_path / "pair.fine.safetensors").unlink()
    with pytest.raises(ModelFileError) as missing:
        load_model(tmp_path / "pair.safetensors")
    assert "pair.fine.safetensors is missing" in str(missing.value)


def test_the_bundled_folder_offers_the_coarse_file_of_a_pair(tmp_path, disc_model, monkeypatch):
    _pair(tmp_path, disc_model, name="bundle")
    monkeypatch.setattr(mweights, "BUNDLED_DIR", tmp_path)
    assert mweights.bundled_model_path() == tmp_path / "bundle.safetensors"


def test_the_pair_is_one_registry_version(tmp_path, disc_model, monkeypatch):
    monkeypatch.setattr(mweights, "BUNDLED_DIR", tmp_path / "no-bundle")
    single = _part(disc_model, 0.1, version="single-v1")
    save_model(single.net, single.card, tmp_path / "single.safetensors")
    model = _pair(tmp_path, disc_model)
    registry = ModelRegistry(tmp_path / "registry")
    registry.add(tmp_path / "single.safetensors")
    entry = registry.add(tmp_path / "pair.safetensors")
    assert sorted(e.version for e in registry.list()) == ["pair-v1", "single-v1"]  # one entry, not two
    assert (entry.weights.parent / FINE_WEIGHTS_NAME).is_file()
    loaded = load_model(registry.use("pair-v1").weights)
    assert loaded.two_pass and loaded.fine.card.weights_sha256 == model.fine.card.weights_sha256
    for a, b in zip(loaded.fine.net.state_dict().values(), model.fine.net.state_dict().values()):
        assert torch.equal(a, b)
    registry.use("single-v1")  # rollback to the one-pass model
    assert not load_model(registry.active().weights).two_pass
    registry.remove("pair-v1")
    assert not (tmp_path / "registry" / "pair-v1").exists()
    # an entry whose fine pass went missing is listed as broken, with the reason, and cannot be used
    again = registry.add(tmp_path / "pair.safetensors")
    (again.weights.parent / FINE_WEIGHTS_NAME).unlink()
    assert [e.version for e in registry.list()] == ["single-v1"]
    assert "fine pass" in registry.skipped()[0].reason
    with pytest.raises(ModelFileError):
        registry.use("pair-v1")


def test_the_fine_pass_runs_on_a_tile_centred_on_a_point(tmp_path, disc_model, disc_study):
    """ROI mode of a two-pass model is the fine pass alone: its grid, its tile, its head."""
    path, _ = disc_study
    blind_coarse = _part(disc_model, 0.2, version="blind", mask_bias=-30.0, malignant_bias=-30.0)
    fine = _part(disc_model, 0.1, version="fine", malignant_bias=30.0)
    model = load_model(save_pair(blind_coarse, fine, tmp_path / "roi.safetensors"))
    result = Predictor(model, "cpu", runtime="torch").predict_roi(path, 120, 200)
    assert result.mode == "roi" and result.geometry.working_spacing_mm == pytest.approx(0.1)
    hit = [l for l in result.lesions if l.bbox[0] <= 120 <= l.bbox[2] and l.bbox[1] <= 200 <= l.bbox[3]]
    assert hit and hit[0].p_malignant > 0.99 and hit[0].label == "malignant"  # the fine head, not the coarse one
    # the tile is the fine card's (256 px at 0.1 mm): the other disc, 25 mm away, lies outside it
    assert not any(l.bbox[0] <= 200 <= l.bbox[2] and l.bbox[1] <= 420 <= l.bbox[3] for l in result.lesions)


def test_the_fine_pass_refines_what_the_coarse_pass_proposes(tmp_path, disc_model, disc_study):
    path, truth = disc_study
    model = _pair(tmp_path, disc_model)
    coarse_only = load_model(save_model(model.net, model.card.__class__.parse(
        {**model.card.to_json(), "fine": None, "model_version": "coarse-only"}), tmp_path / "coarse.safetensors"))
    one = Predictor(coarse_only, "cpu", runtime="torch").predict(path)
    two = Predictor(model, "cpu", runtime="torch").predict(path)
    assert one.fine_rois == 0 and one.geometry.working_spacing_mm == pytest.approx(0.2)
    assert len(one.lesions) == 2 and all(l.p_malignant < 0.01 for l in one.lesions)  # the coarse head
    assert two.geometry.working_spacing_mm == pytest.approx(0.1)  # listed from the fine grid
    assert 1 <= two.fine_rois <= 2 and len(two.lesions) == 2
    assert all(l.p_malignant > 0.99 for l in two.lesions)  # scored by the fine head
    for result in (one, two):
        mask = result.lesion_mask(0.5)
        assert 2 * (mask & truth).sum() / (mask.sum() + truth.sum()) > 0.5
    # a fine pass that confirms nothing drops every candidate: the coarse proposals are not listed on their own
    doubtful = _pair(tmp_path, disc_model, name="doubtful", mask_bias=-30.0)
    result = Predictor(doubtful, "cpu", runtime="torch").predict(path)
    assert result.fine_rois >= 1 and result.lesions == []


def test_nearby_candidates_share_a_fine_tile():
    tile = (1024, 1024)
    centres = fine_tile_centres([(500, 500), (700, 600), (900, 500), (500, 1400)], tile)
    assert centres == [(500.0, 500.0), (900.0, 500.0), (500.0, 1400.0)]  # (700, 600) lies within 256 of the first


def test_bcir_models_pair_makes_a_two_pass_model_and_never_writes_over_one(tmp_path, disc_model, capsys):
    from model.cli.main import main

    coarse = _part(disc_model, 0.2, version="coarse-v1")
    fine = _part(disc_model, 0.1, version="fine-v1")
    save_model(coarse.net, coarse.card, tmp_path / "coarse.safetensors")
    save_model(fine.net, fine.card, tmp_path / "fine.safetensors")
    out = tmp_path / "pair.safetensors"
    args = ["models", "pair", str(tmp_path / "coarse.safetensors"), str(tmp_path / "fine.safetensors"),
            "--out", str(out), "--version", "pair-v2", "--fine-tile", "512"]
    assert main(args) == 0
    model = load_model(out)
    assert model.version == "pair-v2" and model.fine.tile_size == 512 and model.tile_size == 256
    assert "two-pass model pair-v2" in capsys.readouterr().out
    assert main(args) != 0
    err = capsys.readouterr().err.strip()
    assert "exists" in err and len(err.splitlines()) == 1


def test_a_two_pass_run_is_bundled_as_a_pair_without_patients(tmp_path, disc_model):
    from model.registry.bundle import bundle

    run = tmp_path / "run"
    run.mkdir()
    coarse = _part(disc_model, 0.2, version="run-coarse")
    fine = _part(disc_model, 0.1, version="run-fine")
    for part in (coarse, fine):
        part.card = dataclasses.replace(part.card, training=part.card.training.parse(
            {"data": "demo", "patients": {"scheme": "x", "train": ["hash-a"], "val": ["hash-b"], "train_count": 1}}))
    save_pair(coarse, fine, run / "best.safetensors", version="run-v1")
    (run / "eval.json").write_text(json.dumps({"patients": 3, "dice_mean": 0.5, "froc": {"fp_rates": [0.5]}}))
    # fine-tuned for 10 minutes from a model that trained for 20 + 30
    parent = save_model(disc_model.net, dataclasses.replace(disc_model.card, training=disc_model.card.training.parse(
        {"history": [{"epoch": 1, "seconds": 1200}, {"epoch": 2, "seconds": 1800}]})), tmp_path / "parent.safetensors")
    (run / "run.json").write_text(json.dumps({"seconds": 600.0}))
    (run / "config.json").write_text(json.dumps({"init_weights": str(parent)}))
    out = bundle(run, run / "eval.json", tmp_path / "demo-v9.safetensors", version="demo-v9",
                 held_out={"seeds": [9001], "patients": 3}, recipe={"data": "80 patients, seed 100"})
    model = load_model(out)
    assert model.card.training.rest["recipe"] == {"data": "80 patients, seed 100", "training_minutes": 10.0,
                                                  "training_minutes_from_scratch": 60.0}
    assert model.two_pass and model.version == model.fine.version == "demo-v9"
    assert model.card.training.held_out_evaluation["froc"] == {"fp_rates": [0.5]}
    assert model.card.training.held_out_evaluation["data"]["seeds"] == [9001]
    for part in (model, model.fine):
        assert "hash-a" not in json.dumps(part.card.to_json()) and "Not for clinical use" in part.card.intended_use


def test_a_two_pass_view_finds_the_breast_once_and_prepares_the_fine_grid_as_on_its_own(tmp_path, disc_model, disc_study,
                                                                                     monkeypatch):
    from model.data import preprocess
    from model.data.dicom_io import read_image

    path, _ = disc_study
    model = _pair(tmp_path, disc_model)
    calls = []
    real = preprocess.find_breast_region
    monkeypatch.setattr(preprocess, "find_breast_region", lambda pixels: calls.append(pixels.shape) or real(pixels))
    Predictor(model, "cpu", runtime="torch").predict(path, use_cache=False)
    assert len(calls) == 1  # the coarse pass found it; the fine pass was handed it
    # the fine grid prepared with the handed region is the one prepared from scratch
    mammogram = read_image(path)
    pixels = mammogram.monochrome2()
    fresh, geometry, region = preprocess.prepare(pixels, mammogram.header.pixel_spacing_mm, model.fine.preprocess)
    handed, handed_geometry, _ = preprocess.prepare(pixels, mammogram.header.pixel_spacing_mm, model.fine.preprocess,
                                                    region=region)
    assert handed_geometry == geometry and np.array_equal(handed, fresh)
    with pytest.raises(ValueError, match="breast region"):  # a region of another image is a caller's bug
        preprocess.prepare(pixels[:-10], mammogram.header.pixel_spacing_mm, model.fine.preprocess, region=region)
