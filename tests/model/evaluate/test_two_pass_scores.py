"""A two-pass model's scores (issue 15, items 1 and 3): bcir calibrate fits the fine part's head, on its grid and
tile, puts the calibration and the operating point on the fine part's card and writes a two-pass model; bcir eval
runs both passes, serves p(malignant) as the fine card says, leaves out the patients either part trained on and
records that the model is two-pass and the fine tiles each view took."""

from __future__ import annotations

import dataclasses
import json
import statistics

import pytest
import torch

from model.data.study_index import build_index
from model.errors import DataError, ModelFileError
from model.evaluate.calibration import save_calibrated, score_abnormalities
from model.evaluate.evaluation import dataset_fingerprint, evaluate, held_out_for_model
from model.nn.card import TrainingRecord, apply_temperature
from model.nn.weights import LoadedModel, load_model, save_pair
from tests.model.infer.test_two_pass_follows import pair_part


def _trained(part: LoadedModel, index, train: list[str], val: list[str]) -> LoadedModel:
    training = TrainingRecord.parse({"data": "demo", "data_fingerprint": dataset_fingerprint(index),
                                     "train_patients": sorted(train), "val_patients": sorted(val)})
    return LoadedModel(net=part.net, card=dataclasses.replace(part.card, training=training), path=None)


@pytest.fixture(scope="module")
def index(demo_root):
    return build_index(demo_root, workers=1)


def test_calibrating_a_pair_fits_its_fine_head_and_writes_a_pair_that_eval_serves(tmp_path, demo_root, index,
                                                                                   disc_model, capsys):
    from model.cli.main import main

    patients = sorted({i.patient_id for i in index.images})
    # the coarse part trained on every patient of this folder, the fine part on another folder: only the fine
    # part's card may decide, or the patients below would be refused as training patients
    coarse = _trained(pair_part(disc_model, 0.4, version="c", malignant_bias=-30.0), index, patients, [])
    fine = pair_part(disc_model, 0.2, version="f")  # the disc network's own head: scores that vary
    weights = save_pair(coarse, fine, tmp_path / "pair.safetensors", version="pair-v1")
    pair = load_model(weights)
    out = tmp_path / "pair-cal.safetensors"
    argv = ["calibrate", str(demo_root), "--weights", str(weights), "--out", str(out), "--device", "cpu",
            "--patients", ",".join(patients), "--views", "all", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["two_pass"] is True and data["model_version"] == "pair-cal"

    calibrated = load_model(out)
    assert calibrated.two_pass and (tmp_path / "pair-cal.fine.safetensors").is_file()
    assert calibrated.version == calibrated.fine.version == "pair-cal"
    assert calibrated.card.parent == calibrated.fine.card.parent == "pair-v1"
    fine_card = calibrated.fine.card
    assert fine_card.calibration.temperature == pytest.approx(data["calibration"]["temperature"])
    assert fine_card.operating_point.threshold == pytest.approx(data["operating_point"]["threshold"])
    assert calibrated.card.calibration is None and calibrated.card.operating_point is None  # the coarse card's
    assert calibrated.fine.preprocess.working_spacing_mm == 0.2 and calibrated.preprocess.working_spacing_mm == 0.4
    for new, old in ((calibrated, pair), (calibrated.fine, pair.fine)):  # the same weights, both parts
        for a, b in zip(new.net.state_dict().values(), old.net.state_dict().values()):
            assert torch.equal(a, b)
    # the head fitted is the fine part's on its own grid: the same scores as the fine part alone
    fine_alone = LoadedModel(net=pair.fine.net, card=dataclasses.replace(pair.fine.card, fine=None), path=None)
    scored = score_abnormalities(index, pair, patients, views=None, device="cpu")
    assert scored.raw == pytest.approx(score_abnormalities(index, fine_alone, patients, views=None, device="cpu").raw)
    assert len(scored.raw) == data["abnormalities"] and max(scored.raw) > 1e-3  # not the coarse head's -30 bias

    # never over an existing model, its fine part included
    assert main(argv) == 2 and "exists" in capsys.readouterr().err
    (tmp_path / "other.fine.json").write_text("{}")
    other = [*argv[:5], str(tmp_path / "other.safetensors"), *argv[6:]]
    assert main(other) == 2 and "other.fine.json exists" in capsys.readouterr().err
    with pytest.raises(ModelFileError, match="exists"):
        save_calibrated(pair, fine_card, tmp_path / "other.safetensors")

    # bcir eval follows: both passes, p(malignant) and the operating point from the fine card, the fine tiles
    report = evaluate(index, calibrated, device="cpu", patients=patients[:3], bootstrap=10)
    assert report.two_pass and report.passes == [{"pass": "coarse", "working_spacing_mm": 0.4, "tile": 256},
                                                 {"pass": "fine", "working_spacing_mm": 0.2, "tile": 256}]
    tiles = [r["fine_tiles"] for r in report.per_image]
    assert report.fine_tiles_median == statistics.median(tiles) and all(isinstance(t, int) for t in tiles)
    assert report.operating_point["source"] == "model card"
    assert report.operating_point["threshold"] == fine_card.operating_point.threshold
    for r in report.per_abnormality:
        assert r["p_malignant"] == pytest.approx(apply_temperature(r["p_malignant_raw"], fine_card.calibration.temperature))
    assert report.calibration["temperature"] == fine_card.calibration.temperature
    assert f"two-pass: coarse 0.4 mm, tile 256; fine 0.2 mm, tile 256; median {report.fine_tiles_median:g} fine " \
           "tiles per image" in report.summary()
    shown = report.to_json(details=False)
    assert shown["two_pass"] is True and shown["fine_tiles_median"] == report.fine_tiles_median


def test_a_pairs_held_out_patients_are_those_neither_part_trained_on(index, disc_model):
    patients = sorted({i.patient_id for i in index.images})
    coarse = _trained(pair_part(disc_model, 0.4, version="c"), index, patients[:3], patients[3:4])
    fine = _trained(pair_part(disc_model, 0.2, version="f"), index, patients[2:5], patients[5:])
    held = held_out_for_model(index, dataclasses.replace(coarse, fine=fine), None)
    assert held.patients == patients[5:] and "held out from both passes: 1 patients" in held.description
    assert held_out_for_model(index, coarse, None).patients == patients[3:]  # one pass: its own card alone
    everyone = _trained(pair_part(disc_model, 0.2, version="f"), index, patients[3:], [])
    with pytest.raises(DataError, match="held out from both passes|used for training"):
        held_out_for_model(index, dataclasses.replace(coarse, fine=everyone), None)
