"""``bcir train`` and ``bcir retrain`` refuse a bad training setting at once: one line, exit 2, no image read."""

from __future__ import annotations

import json

import numpy as np
import pytest

import model.data.dicom_io
import model.data.study_index
from model.cli.main import main
from model.fileio import user_data_dir
from tests.conftest import make_dicom


@pytest.fixture
def nothing_is_read(monkeypatch):
    """Any index or image read fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("an image or folder was read before the settings were checked")

    monkeypatch.setattr(model.data.study_index, "build_index", refuse)
    monkeypatch.setattr(model.data.dicom_io, "read_image", refuse)


def _bcir(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_bcir_train_with_a_bad_tile_fails_at_once(tmp_path, capsys, nothing_is_read):
    code, out, err = _bcir(capsys, "train", tmp_path / "not-even-there", "--out", tmp_path / "run", "--tile", "100")
    assert code == 2 and out == ""
    assert err == "bcir train: --tile 100 is not a multiple of 16 (the network pools 4 times by 2)\n"
    assert not (tmp_path / "run").exists()


def test_bcir_train_names_the_config_files_setting_and_lets_a_flag_win(tmp_path, capsys, nothing_is_read):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"val_fraction": 1.5, "tile": 100}))
    code, _, err = _bcir(capsys, "train", tmp_path / "none", "--config", config, "--tile", "64")
    assert code == 2 and err == f"bcir train: val_fraction in {config} 1.5 is out of range (above 0 and below 1)\n"
    code, _, err = _bcir(capsys, "train", tmp_path / "none", "--views", "CC,LAT")
    assert code == 2 and err == "bcir train: --views has 'LAT', not a view training knows (CC, MLO)\n"


def test_bcir_retrain_with_a_bad_tile_fails_before_the_folder_is_read(tmp_path, capsys, nothing_is_read):
    folder = tmp_path / "site"
    make_dicom(folder / "a.dcm", np.full((64, 48), 100, "uint16"), ImageLaterality="L", ViewPosition="CC")
    code, out, err = _bcir(capsys, "retrain", folder, "--tile", "100")
    assert code == 2 and out == ""
    assert err == "bcir retrain: --tile 100 is not a multiple of 16 (the network pools 4 times by 2)\n"
    code, out, err = _bcir(capsys, "retrain", folder, "--epochs", "0", "--estimate")
    assert code == 2 and out == "" and err == "bcir retrain: --epochs 0 is out of range (1 to 100000)\n"
    assert not (user_data_dir() / "jobs").exists()


@pytest.mark.parametrize("text, reason", [
    (None, "does not exist"),
    ("{not json", "is unreadable (Expecting property name"),
    ("[1, 2]", "is a JSON list, not an object"),
    ('{"epochs": 3}', "unknown TrainConfig fields epochs"),
])
@pytest.mark.parametrize("command", ["train", "retrain"])
def test_a_config_file_that_is_missing_garbled_or_misspelt_is_one_line_for_both_commands(tmp_path, capsys, nothing_is_read,
                                                                                         command, text, reason):
    config = tmp_path / "settings.json"
    if text is not None:
        config.write_text(text)
    folder = tmp_path / "studies"  # retrain checks that the folder exists first
    folder.mkdir()
    code, out, err = _bcir(capsys, command, folder, "--config", config, *(["--out", tmp_path / "run"]
                                                                         if command == "train" else []))
    assert code == 2 and err.startswith(f"bcir {command}: config file {config}") and reason in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_hard_negatives_for_a_two_pass_run_whose_fine_part_starts_from_scratch_are_refused_before_training(
        tmp_path, capsys, nothing_is_read):
    from model.nn.weights import bundled_model_path

    one_pass = bundled_model_path()  # the coarse part starts from it; the fine part, from scratch, has no false positives
    code, out, err = _bcir(capsys, "train", tmp_path, "--out", tmp_path / "run", "--two-pass", "--init-weights", one_pass,
                           "--hard-negatives", "1")
    assert code == 2 and out == "" and err.startswith("bcir train: --hard-negatives needs a model to fine-tune")
    assert not (tmp_path / "run").exists()
