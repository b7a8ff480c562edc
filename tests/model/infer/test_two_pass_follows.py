"""The rest of the product follows a two-pass model (issue 15, item 1): the result cache keeps the fine tiles a view
ran, and a result read back is the one computed. Helpers here make the small pair other tests use (the bench, the
calibration, bcir eval, model-info)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from model.data.preprocess import PreprocessConfig
from model.infer.predictor import Predictor
from model.nn.weights import LoadedModel, load_model, save_pair
from tests.conftest import make_dicom
from tests.model.infer.test_inference import _disc_image


def pair_part(model: LoadedModel, spacing: float, *, version: str, tile: int = 256, threshold: float | None = None,
              malignant_bias: float | None = None) -> LoadedModel:
    """``model``'s network with a card at ``spacing`` and ``tile``; ``malignant_bias`` makes a head that says benign
    (negative) or malignant (positive) whatever it looks at."""
    net = copy.deepcopy(model.net)
    if malignant_bias is not None:
        with torch.no_grad():
            net.malignancy.mlp[-1].weight.zero_()
            net.malignancy.mlp[-1].bias.fill_(malignant_bias)
    card = dataclasses.replace(model.card, version=version, tile_size=tile,
                               preprocess=PreprocessConfig(working_spacing_mm=spacing),
                               threshold=model.card.threshold if threshold is None else threshold)
    return LoadedModel(net=net, card=card, path=None)


def make_pair(folder, disc_model, name: str = "pair", *, coarse_spacing: float = 0.2, fine_spacing: float = 0.1,
              fine_tile: int = 256, fine_threshold: float | None = None, fine_malignant_bias: float | None = 30.0
              ) -> LoadedModel:
    """A two-pass model of the disc network, written as ``folder/NAME.safetensors`` (+ ``.fine``) and loaded."""
    coarse = pair_part(disc_model, coarse_spacing, version="coarse-part", malignant_bias=-30.0)
    fine = pair_part(disc_model, fine_spacing, version="fine-part", tile=fine_tile, threshold=fine_threshold,
                     malignant_bias=fine_malignant_bias)
    return load_model(save_pair(coarse, fine, folder / f"{name}.safetensors", version=f"{name}-v1"))


def disc_view(folder, name: str = "discs.dcm") -> tuple[str, np.ndarray]:
    """A small CC view at 0.1 mm with two bright discs, and their truth mask."""
    img, truth = _disc_image((600, 400), discs=((200, 120, 14), (420, 200, 12)))
    return make_dicom(folder / name, img, PixelSpacing=[0.1, 0.1], ImageLaterality="L", ViewPosition="CC"), truth


def test_the_cache_gives_back_a_two_pass_result_with_its_fine_tiles(tmp_path, disc_model):
    path, _ = disc_view(tmp_path)
    model = make_pair(tmp_path, disc_model)
    predictor = Predictor(model, "cpu", runtime="torch", cache_dir=tmp_path / "cache")
    computed = predictor.predict(path)
    assert not computed.from_cache and computed.fine_rois >= 1
    cached = predictor.predict(path)
    assert cached.from_cache and cached.fine_rois == computed.fine_rois
    assert cached.geometry.working_spacing_mm == pytest.approx(0.1)  # the fine grid, kept as it was listed
    assert np.array_equal(cached.probability, computed.probability)
    assert [l.bbox for l in cached.lesions] == [l.bbox for l in computed.lesions]
    assert [l.p_malignant for l in cached.lesions] == [l.p_malignant for l in computed.lesions]
    assert np.array_equal(cached.lesion_labels(model.scoring.threshold), computed.lesion_labels(model.scoring.threshold))
    # another model (another version) is not served this result: the key names the model version
    assert not Predictor(make_pair(tmp_path, disc_model, name="other"), "cpu", runtime="torch",
                         cache_dir=tmp_path / "cache").predict(path).from_cache


def test_model_info_and_the_registry_say_a_model_is_two_pass_with_each_pass_spacing_and_tile(tmp_path, disc_model,
                                                                                             capsys, monkeypatch):
    from model.cli.main import main
    from model.nn import weights as mweights
    from model.registry.versions import ModelRegistry, card_facts

    make_pair(tmp_path, disc_model, fine_tile=512)
    weights = tmp_path / "pair.safetensors"
    assert main(["model-info", "--weights", str(weights), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "two-pass: coarse 0.2 mm, tile 256; fine 0.1 mm, tile 512" in text
    assert "fine pass: pair.fine.safetensors; working spacing 0.1 mm, tile 512" in text
    assert main(["model-info", "--weights", str(weights), "--device", "cpu", "--json"]) == 0
    info = __import__("json").loads(capsys.readouterr().out)
    assert info["two_pass"] is True and info["passes"] == [
        {"pass": "coarse", "working_spacing_mm": 0.2, "tile": 256}, {"pass": "fine", "working_spacing_mm": 0.1, "tile": 512}]
    assert info["fine"]["card"]["tile_size"] == 512 and info["fine"]["weights"].endswith("pair.fine.safetensors")
    assert info["fine"]["trunk_trainable_params"] == info["trunk_trainable_params"]  # Table 1's network, both
    # the Models dialog shows the registry's card facts: the pair's passes, read from its fine part's own card
    monkeypatch.setattr(mweights, "BUNDLED_DIR", tmp_path / "no-bundle")
    registry = ModelRegistry(tmp_path / "registry")
    entry = registry.add(weights)
    facts = dict(card_facts(entry))
    assert facts["Passes"] == "two-pass: coarse 0.2 mm, tile 256; fine 0.1 mm, tile 512"
    (entry.weights.parent / "model.fine.json").unlink()  # a broken entry still shows its facts, the reason said
    assert "the fine pass's card cannot be read" in dict(card_facts(entry))["Passes"]
    single = pair_part(disc_model, 0.4, version="single-v1")
    mweights.save_model(single.net, single.card, tmp_path / "single.safetensors")
    assert dict(card_facts(registry.add(tmp_path / "single.safetensors")))["Passes"] == "one pass: 0.4 mm, tile 256"
