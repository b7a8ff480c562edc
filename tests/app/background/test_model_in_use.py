"""One answer to "which model is in use": with ``$BCIR_MODEL`` set, ``bcir model-info``, ``bcir infer``,
``bcir eval`` and the viewer all use that model; without it, all use the registry's active one."""

from __future__ import annotations

import json

from app.main_window import MainWindow
from model.cli.main import main
from model.data.preprocess import PreprocessConfig
from model.data.study_index import build_index
from model.nn.card import new_card
from model.nn.weights import bundled_model_path, random_model, read_card, save_model

TIMEOUT_MS = 120_000


def _other_model(tmp_path):
    model = random_model(3, version="other-1")  # fast on the demo's 400 um images: their spacing, small tiles
    card = new_card(model.net, version="other-1", preprocess=PreprocessConfig(working_spacing_mm=0.4), tile_size=256)
    return save_model(model.net, card, tmp_path / "other" / "other-1.safetensors")


def _versions_in_use(qtbot, capsys, tmp_path, demo_root) -> dict[str, str]:
    index = build_index(demo_root)
    image = next(i for i in index.images if i.view == "CC")
    used = {}
    assert main(["model-info", "--json"]) == 0
    used["model-info"] = json.loads(capsys.readouterr().out)["card"]["model_version"]
    assert main(["infer", image.path, "--out", str(tmp_path / "out"), "--json", "--device", "cpu", "--no-cache"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    used["infer"] = result["model_version"]
    assert main(["eval", str(demo_root), "--patients", image.patient_id, "--json", "--device", "cpu",
                 "--bootstrap", "10"]) == 0
    used["eval"] = json.loads(capsys.readouterr().out)["model_version"]
    window = MainWindow()
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.ai.predictor is not None, timeout=TIMEOUT_MS)
    used["viewer"] = window.ai.model_version
    window.close()
    return used


def test_bcir_model_changes_what_every_command_and_the_viewer_use(qtbot, capsys, monkeypatch, tmp_path, demo_root):
    monkeypatch.setenv("BCIR_DATA_DIR", str(tmp_path / "data"))  # an empty registry: the bundled model is active
    monkeypatch.delenv("BCIR_MODEL", raising=False)
    bundled = read_card(bundled_model_path()).version
    assert _versions_in_use(qtbot, capsys, tmp_path, demo_root) == dict.fromkeys(
        ("model-info", "infer", "eval", "viewer"), bundled)

    monkeypatch.setenv("BCIR_MODEL", str(_other_model(tmp_path)))
    assert _versions_in_use(qtbot, capsys, tmp_path, demo_root) == dict.fromkeys(
        ("model-info", "infer", "eval", "viewer"), "other-1")
