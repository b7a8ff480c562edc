"""The model registry: the bundled model always there, add/list/use/rollback, refusals, broken entries, ``bcir models``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from model.cli.main import main
from model.errors import ModelFileError, RegistryError, UnknownModel
from model.registry.versions import ModelRegistry
from model.nn.card import TrainingRecord
from model.nn.weights import bundled_model_path, load_model, random_model, read_card, save_model
from model.registry.resolve import resolve_model


@pytest.fixture
def models(tmp_path) -> dict[str, Path]:
    """Two small models with cards, outside the registry."""
    out = {}
    for seed in (1, 2):
        model = random_model(seed)
        model.card = dataclasses.replace(model.card, training=TrainingRecord.parse(
            {"data": "tiny synthetic", "data_fingerprint": f"{seed:016x}", "train_patients": ["A", "B"],
             "val_patients": ["C"], "metrics": {"val_dice": 0.1 * seed}, "config": {"tile": 64}}))
        out[model.version] = save_model(model.net, model.card, tmp_path / "src" / f"m{seed}.safetensors")
    return out


@pytest.fixture
def registry(tmp_path, monkeypatch) -> ModelRegistry:
    monkeypatch.setenv("BCIR_DATA_DIR", str(tmp_path / "data"))
    return ModelRegistry()  # the default root: user_data_dir()/models


def _bundled_version() -> str:
    return read_card(bundled_model_path()).version


def test_bundled_model_is_listed_and_active_by_default(registry, tmp_path):
    assert registry.root == tmp_path / "data" / "models"
    (entry,) = registry.list()
    assert entry.bundled and entry.active and entry.version == _bundled_version()
    assert entry.weights == bundled_model_path()  # pointed to, not copied
    assert registry.active().version == entry.version
    assert registry.active_path() == resolve_model() == bundled_model_path()
    assert not registry.root.exists()  # reading creates nothing


def test_add_use_and_rollback(registry, models):
    first = registry.add(models["random-1"])
    second = registry.add(models["random-2"], info={"source": "test", "settings": {"max_epochs": 1}})
    assert [e.version for e in registry.list()] == [_bundled_version(), "random-1", "random-2"]
    assert registry.active().bundled  # adding does not switch
    folder = registry.root / "random-1"
    assert sorted(p.name for p in folder.iterdir()) == ["entry.json", "model.json", "model.safetensors"]
    assert first.weights == folder / "model.safetensors" and first.log_path is None
    assert load_model(first.weights).version == "random-1"  # the copy still matches its card's SHA-256
    entry = json.loads((folder / "entry.json").read_text())
    assert entry["added"] and entry["source"].endswith("m1.safetensors")
    assert entry["training_data"]["data_fingerprint"] == "0000000000000001"
    assert entry["training_data"]["train_patients"] == 2  # counts, not the IDs
    assert entry["metrics"] == {"val_dice": 0.1} and entry["settings"] == {"tile": 64}
    assert second.info["source"] == "test" and second.settings == {"max_epochs": 1}

    assert registry.use("random-2").version == "random-2"
    assert registry.active().version == "random-2" and resolve_model() == registry.root / "random-2" / "model.safetensors"
    assert [e.version for e in registry.list() if e.active] == ["random-2"]
    assert json.loads((registry.root / "active.json").read_text())["version"] == "random-2"
    registry.use("random-1")  # rollback to an older one
    assert registry.active().version == "random-1"
    registry.use(_bundled_version())
    assert resolve_model() == bundled_model_path()
    assert not [p for p in registry.root.iterdir() if p.name.startswith(".")]  # no temp folder left behind


def test_add_keeps_the_log_and_the_gate(registry, models, tmp_path):
    log = tmp_path / "train.log"
    log.write_text("epoch 1/1: train loss 0.5\n")
    gate = {"rule": "validation-split", "better": {"dice_mean": "new"}}
    entry = registry.add(models["random-1"], log_path=log, info={"gate": gate, "metrics": {"dice_mean": 0.4}})
    assert entry.log_path.read_text() == log.read_text()
    again = registry.get("random-1")
    assert again.gate == gate and again.metrics == {"dice_mean": 0.4} and again.parent is None


def test_add_refuses_duplicates_pickles_and_mismatched_weights(registry, models, tmp_path):
    registry.add(models["random-1"])
    with pytest.raises(RegistryError, match="already in the registry"):
        registry.add(models["random-1"])
    pickle = tmp_path / "model.pt"
    pickle.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ModelFileError, match="pickle"):
        registry.add(pickle)
    bad = tmp_path / "src" / "m2.safetensors"
    data = bytearray(bad.read_bytes())
    data[-1] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="SHA-256"):
        registry.add(bad)
    bundled = save_model(load_model(bundled_model_path()).net, read_card(bundled_model_path()), tmp_path / "copy.safetensors")
    with pytest.raises(RegistryError, match="already"):
        registry.add(bundled)  # the bundled version is taken too
    assert [e.version for e in registry.list()] == [_bundled_version(), "random-1"]
    assert sorted(p.name for p in registry.root.iterdir()) == ["random-1"]


def test_remove_refuses_the_bundled_and_the_active_model(registry, models):
    for version in models:
        registry.add(models[version])
    registry.use("random-2")
    with pytest.raises(RegistryError, match="bundled") as bundled:
        registry.remove(_bundled_version())
    with pytest.raises(RegistryError, match="active") as active:
        registry.remove("random-2")
    assert "\n" not in str(bundled.value) and "\n" not in str(active.value)
    with pytest.raises(UnknownModel, match="no model 'no-such-model' in the registry"):
        registry.remove("no-such-model")
    with pytest.raises(UnknownModel, match="no model 'no-such-model' in the registry"):
        registry.use("no-such-model")
    with pytest.raises(UnknownModel):
        registry.get("no-such-model")
    registry.remove("random-1")
    assert [e.version for e in registry.list()] == [_bundled_version(), "random-2"]
    assert not (registry.root / "random-1").exists() and registry.active().version == "random-2"
    assert bundled_model_path().is_file()


def test_broken_entries_are_skipped_and_the_active_falls_back(registry, models):
    for version in models:
        registry.add(models[version])
    registry.use("random-1")
    (registry.root / "random-1" / "model.json").write_text("{not json")
    (registry.root / "random-2" / "model.safetensors").unlink()
    (registry.root / "stray-folder").mkdir()
    entries, skipped = registry.scan()
    assert [e.version for e in entries] == [_bundled_version()]
    reasons = {s.path.name: s.reason for s in skipped}
    assert set(reasons) == {"random-1", "random-2", "stray-folder"}
    assert "unreadable" in reasons["random-1"] and "missing" in reasons["random-2"]
    assert all(r and "\n" not in r for r in reasons.values())
    assert registry.active().bundled and registry.active_path() == bundled_model_path()  # pointer to a broken entry
    with pytest.raises(ModelFileError, match="random-1 cannot be used: .*unreadable"):  # refused with its reason
        registry.use("random-1")
    registry.remove("random-2")  # a broken entry can still be cleared away
    assert not (registry.root / "random-2").exists()


def test_a_broken_active_pointer_means_the_bundled_model(registry, models):
    registry.add(models["random-1"])
    registry.use("random-1")
    (registry.root / "active.json").write_text("garbage")
    assert registry.active().bundled
    (registry.root / "active.json").write_text(json.dumps({"version": "gone-away"}))
    assert registry.active().bundled and [e.active for e in registry.list()] == [True, False]


def test_bcir_models_list_use_show_remove(registry, models, capsys):
    registry.add(models["random-1"])
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    bundled_line = next(line for line in out.splitlines() if _bundled_version() in line)
    assert bundled_line.startswith("*B")  # active and bundled
    assert any(line.split()[0] == "random-1" for line in out.splitlines() if "random-1" in line)

    assert main(["models", "use", "random-1"]) == 0
    assert "random-1" in capsys.readouterr().out
    assert registry.active().version == "random-1"
    assert main(["models", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [(m["version"], m["active"], m["bundled"]) for m in listing["models"]] == [
        (_bundled_version(), False, True), ("random-1", True, False)]

    assert main(["models", "show"]) == 0  # the active one
    shown = capsys.readouterr().out
    for text in ("random-1", "parent: none", "0000000000000001", "2 training and 1 validation patients", "val_dice: 0.100"):
        assert text in shown
    assert main(["models", "show", _bundled_version(), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["bundled"] and card["card"]["model_version"] == _bundled_version() and card["metrics"]["dice_mean"] > 0

    # the other commands follow the active model
    assert main(["model-info", "--json", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["card"]["model_version"] == "random-1"

    assert main(["models", "use", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "bcir models use: no model 'nope' in the registry"
    assert main(["models", "remove", _bundled_version()]) == 2
    assert "bundled" in capsys.readouterr().err
    assert main(["models", "use", _bundled_version()]) == 0 and main(["models", "remove", "random-1"]) == 0
    capsys.readouterr()
    assert [e.version for e in registry.list()] == [_bundled_version()]


def test_the_malignancy_call_is_shown_with_how_far_it_can_be_trusted(registry, models, capsys):
    """The line beside the AI's p(malignant): a whole-view AUC with its CI and patients; a CI that reaches 0.5 is
    said to be no better than chance; a figure from training tiles only, or none, is flagged too."""
    from model.registry.versions import malignancy_trust, model_malignancy_trust

    whole = {"dice_mean": 0.5, "auc": 0.91, "auc_ci": [0.84, 0.97], "patients": 120}
    trusted = malignancy_trust(whole)
    assert not trusted.warn and "AUC 0.91 (95% CI 0.84-0.97) on 120 held-out patients" in trusted.text
    chance = malignancy_trust({**whole, "auc": 0.59, "auc_ci": [0.41, 0.77], "patients": 30})
    assert chance.warn and "better than chance" in chance.text and "0.41-0.77" in chance.text
    unmeasured = malignancy_trust({**whole, "not_measurable": {"auc": "no malignant lesion among them"}})
    assert unmeasured.warn and "not measurable" in unmeasured.text and "no malignant lesion" in unmeasured.text
    tiles = malignancy_trust({"val_dice": 0.3, "val_auc": 0.7})
    assert tiles.warn and "validation tiles only" in tiles.text
    assert malignancy_trust({}).warn
    # by lesion type: a call may beat chance on calcification clusters and not on masses, and the line says which
    typed = {**whole, "auc": 0.59, "auc_ci": [0.41, 0.77], "patients": 30, "per_type": {
        "calcification": {"auc": 0.79, "auc_ci": [0.55, 0.98], "lesions": 19},
        "mass": {"auc": 0.54, "auc_ci": [0.23, 0.83], "lesions": 19}}}
    by_type = malignancy_trust(typed)
    assert by_type.warn and by_type.headline == chance.text and by_type.text.startswith(chance.text)
    assert [(t.kind, t.warn) for t in by_type.by_type] == [("calcification", False), ("mass", True)]
    assert "calcification clusters 0.79 (CI 0.55-0.98, 19 lesions): better than chance" in by_type.text
    assert "masses 0.54 (CI 0.23-0.83, 19 lesions): not shown to be better than chance" in by_type.text
    # one type measured, or a type without its interval (a report from before there was one): nothing by type
    assert "lesion type" not in malignancy_trust({**typed, "per_type": {"mass": typed["per_type"]["mass"]}}).text
    older = {k: {"auc": v["auc"], "lesions": v["lesions"]} for k, v in typed["per_type"].items()}
    assert malignancy_trust({**typed, "per_type": older}).text == chance.text

    # a loaded model: the bundled one's card has its held-out evaluation
    bundled = load_model(bundled_model_path())
    evaluation = bundled.card.training.held_out_evaluation
    line = model_malignancy_trust(bundled)
    assert f"AUC {evaluation['auc']:.2f}" in line.text and f"{evaluation['patients']} held-out patients" in line.text
    assert line.warn == (evaluation["auc_ci"][0] <= 0.5)
    for kind, name in (("calcification", "calcification clusters"), ("mass", "masses")):
        stats = evaluation["per_type"][kind]
        assert f"{name} {stats['auc']:.2f} (CI {stats['auc_ci'][0]:.2f}-{stats['auc_ci'][1]:.2f}" in line.text
    assert main(["model-info", "--device", "cpu"]) == 0  # bcir model-info says it too
    assert f"  {line.text}\n" in capsys.readouterr().out
    # a registered model: its entry's figures (a retrained model's are the safety gate's)
    version = next(iter(models))
    registry.add(models[version], info={"metrics": {**whole, "patients": 77}})
    assert "on 77 held-out patients" in model_malignancy_trust(load_model(models[version])).text
