"""Model cards are checked against their schema before anything is built from them (issue 11, item 7): a card that
would crash the loader, allocate gigabytes or make a model that finds nothing is refused with one line, by the
loader, by ``bcir models add`` and by ``bcir models use``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from model.nn import card as card_module
from model.nn import weights as weights_module
from model.cli.main import main
from model.errors import ModelFileError
from model.nn.network import BCirUNet
from model.data.preprocess import PreprocessConfig
from model.registry.versions import ModelRegistry
from model.train.config import TrainConfig
from model.nn.card import new_card
from model.nn.weights import bundled_model_path, load_model, random_model, read_card, save_model


def _drop(key):
    def mutate(card):
        del card[key]
    return mutate


def _set(section, key, value):
    def mutate(card):
        (card[section] if section else card)[key] = value
    return mutate


# (what is wrong, how the card is changed, what the one line says)
BAD_CARDS = [
    ("a card that is a list", lambda card: [card], "is a JSON list, not an object"),
    ("an unknown network key", _set("network", "widths", [16, 32]), "unknown setting 'widths'"),
    ("base_channels 4096 (a 19 GB network)", _set("network", "base_channels", 4096), "base_channels 4096 is out of range"),
    ("base_channels as text", _set("network", "base_channels", "16"), "base_channels is '16', not a number"),
    ("a bottleneck too wide", lambda c: c["network"].update(base_channels=64, depth=7), "bottleneck channels"),
    ("an even skip pool", _set("network", "skip_pool_size", 2), "skip_pool_size 2 is even"),
    ("no model_version", _drop("model_version"), "model_version is missing"),
    ("a version that cannot name a folder", _set(None, "model_version", "../../x"), "is not a version name"),
    ("working spacing 0", _set("preprocess", "working_spacing_mm", 0), "working_spacing_mm 0 is out of range"),
    ("working spacing 0.0005 (a 15 GB view)", _set("preprocess", "working_spacing_mm", 0.0005),
     "working_spacing_mm 0.0005 is out of range"),
    ("no working spacing", lambda c: c["preprocess"].clear(), "working_spacing_mm is missing"),
    ("a NaN spacing", _set("preprocess", "working_spacing_mm", float("nan")), "working_spacing_mm nan is out of range"),
    ("tile 0", _set(None, "tile_size", 0), "tile_size 0 is out of range"),
    ("a tile the network cannot pool", _set(None, "tile_size", 100), "tile_size 100 is not a multiple of 16"),
    ("a threshold that is not a number", _set(None, "threshold", "high"), "threshold is 'high', not a number"),
    ("a threshold of 1 (finds nothing)", _set(None, "threshold", 1.0), "threshold 1.0 is out of range"),
    ("a network that is not an object", _set(None, "network", "unet"), "network is str, not an object"),
    ("training that is not an object", _set(None, "training", ["P1"]), "training is list, not an object"),
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("card")
    model = random_model(5)
    return save_model(model.net, model.card, folder / "good.safetensors")


def _variant(saved: Path, folder: Path, mutate, name: str = "bad") -> Path:
    path = folder / f"{name}.safetensors"
    path.write_bytes(saved.read_bytes())
    card = json.loads(saved.with_suffix(".json").read_text())
    changed = mutate(card)
    path.with_suffix(".json").write_text(json.dumps(card if changed is None else changed))
    return path


@pytest.mark.parametrize("what,mutate,reason", BAD_CARDS, ids=[b[0] for b in BAD_CARDS])
def test_a_bad_card_is_refused_in_one_line_before_anything_is_built(saved, tmp_path, monkeypatch, what, mutate, reason):
    path = _variant(saved, tmp_path, mutate)

    def never(**kwargs):
        raise AssertionError(f"a network was built from a bad card: {kwargs}")

    monkeypatch.setattr(weights_module, "BCirUNet", never)  # nothing is allocated before the card is checked
    with pytest.raises(ModelFileError) as caught:
        load_model(path)
    message = str(caught.value)
    assert reason in message and "bad.json" in message and "\n" not in message
    with pytest.raises(ModelFileError, match="bad.json"):
        read_card(path)


def test_the_ranges_hold_what_the_project_uses(disc_model, tmp_path):
    """The bundled model, the tests' small networks and tiles, the paper's defaults all pass."""
    assert card_module.ModelCard.parse(read_card(bundled_model_path()).to_json()).tile_size == 256
    assert card_module.ModelCard.parse(disc_model.card.to_json()).tile_size == 1024
    small = BCirUNet(base_channels=8)
    card = new_card(small, preprocess=PreprocessConfig(working_spacing_mm=0.2), tile_size=64)
    assert load_model(save_model(small, card, tmp_path / "small.safetensors")).net.config["base_channels"] == 8
    paper = TrainConfig()
    parsed = card_module.ModelCard.parse(new_card(BCirUNet(), preprocess=PreprocessConfig(working_spacing_mm=paper.working_spacing_mm),
                                      tile_size=paper.tile).to_json())
    assert (parsed.tile_size, parsed.preprocess.working_spacing_mm, parsed.network["base_channels"]) == (1024, 0.1, 16)


def test_save_model_never_writes_a_card_the_loader_would_refuse(tmp_path):
    model = random_model(1)
    with pytest.raises(ModelFileError, match="tile_size 0"):
        save_model(model.net, dataclasses.replace(model.card, tile_size=0), tmp_path / "m.safetensors")
    assert not list(tmp_path.iterdir())


def test_weights_that_are_not_finite_are_refused(tmp_path):
    model = random_model(2)
    with torch.no_grad():
        model.net.trunk.head.weight[0, 0, 0, 0] = float("nan")
    path = save_model(model.net, model.card, tmp_path / "nan.safetensors")
    with pytest.raises(ModelFileError, match="not finite numbers .*trunk.head.weight"):
        load_model(path)


@pytest.fixture
def registry(tmp_path, monkeypatch) -> ModelRegistry:
    monkeypatch.setenv("BCIR_DATA_DIR", str(tmp_path / "data"))
    return ModelRegistry()


def _nan_model(folder: Path) -> Path:
    model = random_model(3)
    with torch.no_grad():
        next(model.net.parameters()).fill_(float("nan"))
    return save_model(model.net, dataclasses.replace(model.card, version="nan-weights"), folder / "nan.safetensors")


ADD_REFUSED = [
    ("NaN weights", None, "not finite numbers"),
    ("no weights_sha256", _drop("weights_sha256"), "weights_sha256 is missing"),
    ("spacing 0", _set("preprocess", "working_spacing_mm", 0), "working_spacing_mm 0 is out of range"),
    ("tile 0", _set(None, "tile_size", 0), "tile_size 0 is out of range"),
    ("a threshold that is not a number", _set(None, "threshold", "0.5 or so"), "not a number"),
]


@pytest.mark.parametrize("what,mutate,reason", ADD_REFUSED, ids=[a[0] for a in ADD_REFUSED])
def test_bcir_models_add_refuses(registry, saved, tmp_path, capsys, what, mutate, reason):
    path = _nan_model(tmp_path) if mutate is None else _variant(saved, tmp_path, mutate)
    assert main(["models", "add", str(path)]) != 0
    err = capsys.readouterr().err
    assert reason in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert [e.bundled for e in registry.list()] == [True] and not registry.skipped()  # nothing was added


def test_bcir_models_use_of_a_broken_version_is_refused(registry, saved, tmp_path, capsys):
    good = registry.add(saved)
    card_file = registry.root / good.version / "model.json"
    card = json.loads(card_file.read_text())
    card_file.write_text(json.dumps({**card, "tile_size": 0}))  # broken after it was added
    assert main(["models", "use", good.version]) != 0
    err = capsys.readouterr().err
    assert f"{good.version} cannot be used" in err and "tile_size 0" in err and len(err.strip().splitlines()) == 1
    assert registry.active().bundled

    card_file.write_text(json.dumps(card))  # the card is whole again, the weights are now NaN
    nan = _nan_model(tmp_path)
    (registry.root / good.version / "model.safetensors").write_bytes(nan.read_bytes())
    card_file.write_text(json.dumps({**card, "weights_sha256": json.loads(nan.with_suffix(".json").read_text())["weights_sha256"]}))
    assert main(["models", "use", good.version]) != 0
    assert "not finite numbers" in capsys.readouterr().err and registry.active().bundled


def test_an_old_card_without_schema_version_loads_and_round_trips_without_losing_keys(saved, tmp_path):
    """A card an older version wrote (no schema_version, keys this version does not know, a null date, plain patient
    lists) is schema 1, loads, and is written back with every key it had."""
    def older(card):
        del card["schema_version"]
        card["site_note"] = {"scanner": "X"}
        card["training"] = {"data": "old", "date": None, "train_patients": ["P1"], "val_patients": ["P2"],
                            "world_size": 1, "metrics": {"val_dice": 0.3}}
    path = _variant(saved, tmp_path, older, "old")
    written = json.loads(path.with_suffix(".json").read_text())
    card = load_model(path).card
    assert card.schema_version == 1 and card.training.data == "old" and card.training.metrics == {"val_dice": 0.3}
    again = card.to_json()
    assert {k: v for k, v in again.items() if k != "schema_version"} == written and again["schema_version"] == 1
    assert card_module.ModelCard.parse(again) == card


def test_a_card_of_a_newer_schema_is_refused_in_one_line(saved, tmp_path):
    path = _variant(saved, tmp_path, _set(None, "schema_version", card_module.CARD_SCHEMA_VERSION + 1), "newer")
    with pytest.raises(ModelFileError) as caught:
        load_model(path)
    message = str(caught.value)
    assert "newer.json" in message and "schema_version" in message and "newer than" in message and "\n" not in message


def test_a_saved_card_carries_the_current_schema_version(saved):
    assert json.loads(saved.with_suffix(".json").read_text())["schema_version"] == card_module.CARD_SCHEMA_VERSION


def test_a_loaded_card_is_read_by_its_fields_not_as_a_mapping(saved):
    """The card is a typed frozen dataclass: a reader that still asks for ``card["key"]`` or ``card.get`` fails at
    once instead of reading a key whose name or shape changed; its JSON stays one call away."""
    from collections.abc import Mapping

    card = load_model(saved).card
    assert not isinstance(card, Mapping) and not hasattr(card, "get")
    with pytest.raises(TypeError):
        card["model_version"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.version = "other"
    assert card.to_json()["model_version"] == card.version
