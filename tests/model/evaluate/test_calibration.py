"""Honest scores: temperature scaling, the expected calibration error, the operating point, FROC, the card's
calibration fields, the predictor applying them, and ``bcir calibrate``."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from model.data.study_index import build_index
from model.errors import DataError, ModelFileError
from model.evaluate import metrics
from model.evaluate.calibration import (calibrate, calibration_patients, choose_operating_point, fit_temperature,
                                        save_calibrated)
from model.evaluate.evaluation import evaluate
from model.infer.predictor import Predictor
from model.nn.card import Calibration, ModelCard, OperatingPoint, TrainingRecord, apply_temperature
from model.nn.weights import LoadedModel, load_model, save_model


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _logit(p):
    return np.log(p) - np.log1p(-p)


def _toy(n: int, seed: int, sharpen: float):
    """Labels drawn from true probabilities q, and scores sigmoid(sharpen * logit(q)): calibrated at sharpen 1,
    overconfident above, timid below."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.03, 0.97, n)
    labels = rng.random(n) < q
    return labels, _sigmoid(sharpen * _logit(q))


# ---------------------------------------------------------------------------
# temperature scaling and ECE


def test_overconfident_scores_fit_a_temperature_above_one_and_the_ece_drops():
    labels, scores = _toy(4000, 0, sharpen=3.0)
    fit = fit_temperature(labels, scores)
    assert 2.5 < fit.temperature < 3.6  # the toy's own sharpening, found back
    assert fit.nll_after < fit.nll_before and not fit.at_bound
    calibrated = [apply_temperature(p, fit.temperature) for p in scores]
    before, after = metrics.expected_calibration_error(labels, scores), metrics.expected_calibration_error(labels, calibrated)
    assert before > 0.1 and after < 0.03 and after < before / 3
    assert metrics.roc_auc(labels, calibrated) == pytest.approx(metrics.roc_auc(labels, scores))  # ranking kept


def test_a_calibrated_set_fits_a_temperature_near_one_and_a_timid_one_below_one():
    labels, scores = _toy(20000, 1, sharpen=1.0)
    assert fit_temperature(labels, scores).temperature == pytest.approx(1.0, abs=0.06)
    labels, scores = _toy(4000, 2, sharpen=0.5)
    assert fit_temperature(labels, scores).temperature < 0.65


def test_the_fitted_temperature_is_the_minimum_of_the_nll():
    from model.evaluate.calibration import nll

    labels, scores = _toy(500, 3, sharpen=2.0)
    t = fit_temperature(labels, scores).temperature
    for other in (t * 0.97, t * 1.03, 1.0):
        assert nll(labels, scores, t) < nll(labels, scores, other)


def test_too_few_of_a_class_fit_nothing():
    with pytest.raises(DataError, match="4 malignant and 6 benign"):
        fit_temperature([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], np.linspace(0.1, 0.9, 10))


def test_scores_that_separate_perfectly_end_at_the_lower_bound():
    labels = [0] * 6 + [1] * 6
    fit = fit_temperature(labels, [0.2] * 6 + [0.8] * 6)
    assert fit.at_bound and fit.temperature == pytest.approx(0.01)


def test_ece_on_hand_checkable_bins():
    labels = [0, 1, 0, 0, 1, 1]
    scores = [0.1, 0.1, 0.3, 0.35, 0.9, 1.0]  # bins [0.1, 0.2), [0.3, 0.4) and the last, closed at 1
    bins = metrics.reliability_bins(labels, scores)
    assert [b["count"] for b in bins] == [0, 2, 0, 2, 0, 0, 0, 0, 0, 2]
    assert bins[1]["mean_p"] == pytest.approx(0.1) and bins[1]["positive_fraction"] == 0.5
    assert bins[3]["mean_p"] == pytest.approx(0.325) and bins[3]["positive_fraction"] == 0.0
    assert bins[9]["mean_p"] == pytest.approx(0.95) and bins[9]["positive_fraction"] == 1.0
    assert bins[0]["mean_p"] is None
    # (2/6) * 0.4 + (2/6) * 0.325 + (2/6) * 0.05
    assert metrics.expected_calibration_error(labels, scores) == pytest.approx(0.775 / 3)
    assert metrics.expected_calibration_error([], []) is None


# ---------------------------------------------------------------------------
# the operating point


def test_youden_ties_go_to_the_higher_sensitivity_and_a_target_to_the_best_specificity():
    neg, pos = [0.1, 0.2, 0.3, 0.45, 0.6], [0.4, 0.5, 0.7, 0.8, 0.9]
    labels, scores = [0] * 5 + [1] * 5, neg + pos
    # cuts at 0.7, 0.5 and 0.4 all give J = 0.6; the lowest wins, placed halfway to the next score down (0.3)
    point = choose_operating_point(labels, scores)
    assert point.threshold == pytest.approx(0.35)
    assert (point.sensitivity, point.specificity) == (1.0, 0.6)
    assert "Youden" in point.rule
    target = choose_operating_point(labels, scores, target_sensitivity=0.8)
    assert target.threshold == pytest.approx(0.475)  # the cut at 0.5, halfway to 0.45
    assert (target.sensitivity, target.specificity) == (0.8, 0.8)
    with pytest.raises(DataError):
        choose_operating_point([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4])


# ---------------------------------------------------------------------------
# FROC


def test_froc_of_a_hand_built_candidate_list():
    # 4 images, 3 lesions (A, B, C); C is never listed. A is hit twice, the second time in a tie with a false positive.
    candidates = [(0.9, ["A"]), (0.8, []), (0.7, ["B"]), (0.6, []), (0.6, ["A"]), (0.5, [])]
    out = metrics.froc(candidates, lesions=3, images=4, fp_rates=(0.1, 0.25, 0.5, 0.75, 1.0))
    assert out["points"] == [[0, 0], [0, pytest.approx(1 / 3)], [0.25, pytest.approx(1 / 3)],
                             [0.25, pytest.approx(2 / 3)], [0.5, pytest.approx(2 / 3)], [0.75, pytest.approx(2 / 3)]]
    assert out["thresholds"] == [0.9, 0.8, 0.7, 0.6, 0.5]
    assert out["sensitivity"] == [pytest.approx(1 / 3), pytest.approx(2 / 3), pytest.approx(2 / 3),
                                  pytest.approx(2 / 3), None]  # 1 FP/image is beyond the last listed lesion
    assert out["max_fp_per_image"] == 0.75 and out["max_sensitivity"] == pytest.approx(2 / 3)
    # the field's rates: 1, 2 and 4 are not reached
    assert metrics.froc(candidates, 3, 4)["sensitivity"][2:] == [None, None, None]


def test_froc_when_the_first_candidate_is_a_false_positive_and_without_lesions():
    out = metrics.froc([(0.9, []), (0.8, [("img", 0)])], lesions=1, images=2, fp_rates=(0.25, 0.5))
    assert out["sensitivity"] == [0.0, 1.0]  # below one FP in two images only the empty list: nothing found
    empty = metrics.froc([(0.9, [])], lesions=0, images=1)
    assert empty["sensitivity"] == [None] * 5 and empty["max_sensitivity"] is None and empty["points"] == []
    with pytest.raises(ValueError):
        metrics.froc([(0.9, ["A", "B"])], lesions=1, images=1)


# ---------------------------------------------------------------------------
# the card


def _calibrated_card(card: ModelCard, temperature=2.0, threshold=0.4, version="test-discs-cal") -> ModelCard:
    fitted = {"data_fingerprint": "0123456789abcdef", "rule": "validation split", "patients": {"count": 3}}
    return dataclasses.replace(
        card, version=version, parent=card.version,
        calibration=Calibration("temperature", temperature, fitted, 0.2, 0.05, {"bins": 10}),
        operating_point=OperatingPoint(threshold, "Youden's J", 0.8, 0.7, fitted))


def test_card_round_trip_with_and_without_calibration(tmp_path, disc_model):
    plain = disc_model.card
    assert plain.calibration is None and plain.operating_point is None
    assert "calibration" not in plain.to_json() and "operating_point" not in plain.to_json()
    assert ModelCard.parse(plain.to_json()) == plain
    assert plain.p_malignant(0.73) == 0.73 and plain.malignancy_threshold == 0.5

    card = _calibrated_card(plain)
    data = json.loads(json.dumps(card.to_json()))
    assert data["calibration"]["temperature"] == 2.0 and data["calibration"]["bins"] == 10
    assert data["operating_point"]["threshold"] == 0.4
    back = ModelCard.parse(data)
    assert back.to_json() == card.to_json() and back.parent == "test-discs" and back.malignancy_threshold == 0.4
    assert ModelCard.parse(back.to_json()) == back
    assert back.p_malignant(0.8) == pytest.approx(_sigmoid(_logit(0.8) / 2))

    path = save_model(disc_model.net, card, tmp_path / "cal.safetensors")
    loaded = load_model(path)
    assert loaded.card.calibration == card.calibration and loaded.card.operating_point == card.operating_point


@pytest.mark.parametrize("change, reason", [
    ({"calibration": {"method": "isotonic", "temperature": 1.0}}, "calibration.method 'isotonic'"),
    ({"calibration": {"method": "temperature", "temperature": 0}}, "calibration.temperature 0 is out of range"),
    ({"calibration": {"method": "temperature"}}, "calibration.temperature is missing"),
    ({"calibration": "hot"}, "calibration is str"),
    ({"operating_point": {"threshold": 1.5}}, "operating_point.threshold 1.5 is out of range"),
    ({"operating_point": {"threshold": 0.3, "sensitivity": 2}}, "operating_point.sensitivity 2"),
])
def test_a_bad_calibration_is_refused_in_one_line(disc_model, change, reason):
    with pytest.raises(ModelFileError, match=reason) as info:
        ModelCard.parse({**disc_model.card.to_json(), **change})
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------
# the predictor


def _disc_view(tmp_path):
    from tests.conftest import make_dicom

    rows, cols = 600, 400
    yy, xx = np.mgrid[:rows, :cols]
    rng = np.random.default_rng(1)
    breast = (yy - rows / 2) ** 2 / (rows * 0.45) ** 2 + xx**2 / (cols * 0.9) ** 2 <= 1
    img = np.where(breast, 18000 + rng.normal(0, 1500, (rows, cols)), 500)
    img[(yy - 300) ** 2 + (xx - 150) ** 2 <= 14**2] += 15000
    return make_dicom(tmp_path / "disc.dcm", np.clip(img, 0, 65535).astype(np.uint16), PixelSpacing=[0.1, 0.1],
                      ImageLaterality="L", ViewPosition="CC")


def test_the_predictor_serves_the_calibrated_p_and_labels_at_the_operating_point(tmp_path, disc_model):
    path = _disc_view(tmp_path)
    plain = Predictor(disc_model, "cpu", bf16=False).predict(path, use_cache=False)
    assert plain.lesions, "the disc was not found"
    raw = plain.lesions[0].p_malignant
    assert plain.lesions[0].label == ("malignant" if raw >= 0.5 else "benign")

    for threshold in (0.02, 0.98):  # below and above any p a temperature of 10 leaves (0.17-0.83)
        card = _calibrated_card(disc_model.card, temperature=10.0, threshold=threshold)
        model = LoadedModel(net=disc_model.net, card=card, path=None)
        predictor = Predictor(model, "cpu", bf16=False)
        result = predictor.predict(path, use_cache=False)
        lesion = result.lesions[0]
        assert lesion.p_malignant == pytest.approx(apply_temperature(raw, 10.0), abs=2e-4)
        assert abs(lesion.p_malignant - 0.5) < abs(raw - 0.5) or raw == pytest.approx(0.5, abs=1e-3)
        assert lesion.label == ("malignant" if threshold == 0.02 else "benign")
        assert result.case_score == lesion.p_malignant
        # the head's own, on request
        from model.data.dicom_io import read_image
        from model.data.preprocess import prepare

        mammogram = read_image(path)
        working, geometry, _ = prepare(mammogram.monochrome2(), mammogram.header.pixel_spacing_mm, model.preprocess)
        centre = [geometry.point_to_working(150, 300)]
        head = predictor.malignancy(working, centre, calibrated=False)[0]
        assert predictor.malignancy(working, centre)[0] == pytest.approx(apply_temperature(head, 10.0))


# ---------------------------------------------------------------------------
# which patients, the whole fit, bcir calibrate and bcir eval


@pytest.fixture(scope="module")
def index(demo_root):
    return build_index(demo_root, workers=1)


def _trained_on(model, index, train, val) -> LoadedModel:
    from model.evaluate.evaluation import dataset_fingerprint

    training = TrainingRecord.parse({"data": "demo", "data_fingerprint": dataset_fingerprint(index),
                                     "train_patients": sorted(train), "val_patients": sorted(val)})
    return LoadedModel(net=model.net, card=dataclasses.replace(model.card, training=training), path=None)


def test_the_validation_patients_and_never_the_training_ones(index, disc_model):
    patients = sorted({i.patient_id for i in index.images})
    model = _trained_on(disc_model, index, patients[:4], patients[4:])
    chosen = calibration_patients(index, model.card)
    assert chosen.patients == patients[4:] and chosen.rule == "validation split"
    with pytest.raises(DataError, match="2 of the given patients are training patients"):
        calibration_patients(index, model.card, patients[2:])
    assert calibration_patients(index, model.card, patients[4:]).rule == "explicit"
    # a folder the model never trained on: its validation patients are unknown, so they must be named
    with pytest.raises(DataError, match="not the folder this model was trained on"):
        calibration_patients(index, disc_model.card)
    assert calibration_patients(index, disc_model.card, patients).patients == patients


def test_calibrate_writes_a_new_model_and_eval_reports_it(tmp_path, demo_root, index, disc_model, capsys):
    from model.cli.main import build_parser

    weights = save_model(disc_model.net, disc_model.card, tmp_path / "disc.safetensors")
    before = weights.read_bytes(), weights.with_suffix(".json").read_bytes()
    patients = ",".join(sorted({i.patient_id for i in index.images}))
    out = tmp_path / "disc-cal.safetensors"
    argv = ["calibrate", str(demo_root), "--weights", str(weights), "--out", str(out), "--device", "cpu",
            "--patients", patients, "--views", "all", "--json"]
    args = build_parser().parse_args(argv)
    assert args.func(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert (weights.read_bytes(), weights.with_suffix(".json").read_bytes()) == before  # the input is untouched

    model = load_model(out)
    card = model.card
    assert card.version == "disc-cal" and card.parent == "test-discs"
    assert card.calibration.method == "temperature" and 0.01 <= card.calibration.temperature <= 100
    assert card.calibration.fitted_on["rule"] == "explicit" and card.calibration.fitted_on["patients"]["count"] == 6
    assert card.calibration.fitted_on["abnormalities"] == data["abnormalities"] == 16  # CC and MLO
    assert card.calibration.ece_after <= card.calibration.ece_before + 1e-9  # in-sample: the fit cannot do worse
    assert 0 < card.operating_point.threshold < 1 and "Youden" in card.operating_point.rule
    assert len(card.calibration.fitted_on["patients"]["hashes"]) == 6
    assert not any(p in json.dumps(card.to_json()) for p in patients.split(","))

    from model.cli.main import main

    assert main(argv) == 2 and "exists" in capsys.readouterr().err  # never over an existing model

    report = evaluate(index, model, device="cpu", views=None, bootstrap=50)
    assert report.operating_point["source"] == "model card"
    assert report.operating_point["threshold"] == card.operating_point.threshold
    scores = [r["p_malignant"] for r in report.per_abnormality]
    labels = [r["malignant"] for r in report.per_abnormality]
    assert (report.sensitivity_at_operating_point, report.specificity_at_operating_point) == \
        metrics.sensitivity_specificity(labels, scores, card.operating_point.threshold)
    for r in report.per_abnormality:
        assert r["p_malignant"] == pytest.approx(apply_temperature(r["p_malignant_raw"], card.calibration.temperature))
    assert report.ece == pytest.approx(card.calibration.ece_after)  # the same patients, abnormalities and model
    assert report.ece_uncalibrated == pytest.approx(card.calibration.ece_before)
    assert ("the model's calibration and operating point were fitted on 6 of the 6 evaluated patients: the ECE and "
            "the sensitivity and specificity there are in-sample on them, so optimistic") in report.notes


def test_calibrate_refuses_without_validation_patients_and_an_own_version(index, disc_model):
    with pytest.raises(DataError, match="not the folder this model was trained on"):
        calibrate(index, disc_model, device="cpu")
    with pytest.raises(DataError, match="version of its own"):
        calibrate(index, disc_model, version=disc_model.version, device="cpu")


def test_save_calibrated_never_overwrites(tmp_path, disc_model):
    card = _calibrated_card(disc_model.card)
    path = save_calibrated(disc_model, card, tmp_path / "a.safetensors")
    with pytest.raises(ModelFileError, match="exists"):
        save_calibrated(disc_model, card, path)
    with pytest.raises(ModelFileError, match="NAME.safetensors"):
        save_calibrated(disc_model, card, tmp_path / "a.pt")


def test_eval_report_carries_froc_calibration_and_the_default_operating_point(tmp_path, index, disc_model):
    from model.evaluate.report import write_report

    report = evaluate(index, disc_model, device="cpu", bootstrap=50)
    assert report.calibration is None and report.ece_uncalibrated is None
    assert report.operating_point == {"threshold": 0.5, "rule": None, "source": "default"}
    assert (report.sensitivity_at_operating_point, report.specificity_at_operating_point) == \
        (report.sensitivity, report.specificity)
    labels = [r["malignant"] for r in report.per_abnormality]
    assert report.ece == pytest.approx(metrics.expected_calibration_error(
        labels, [r["p_malignant"] for r in report.per_abnormality]))
    froc = report.froc
    # the FROC's last point is the report's own count: every listed lesion kept
    assert froc["max_fp_per_image"] == pytest.approx(report.fp_per_image)
    assert froc["max_sensitivity"] == pytest.approx(report.lesion_sensitivity)
    for rate, sens in zip(froc["fp_rates"], froc["sensitivity"]):
        assert (sens is None) == (rate > report.fp_per_image)
    data = report.to_json()
    json.dumps(data, allow_nan=False)
    assert data["froc"]["fp_rates"] == [0.25, 0.5, 1.0, 2.0, 4.0]
    summary = report.summary()
    assert "FROC" in summary and "ECE" in summary.upper()
    path = write_report(report, tmp_path / "rep")
    text = path.read_text()
    assert "## Calibration of p(malignant)" in text and "## Detection: FROC" in text
    assert "![Reliability diagram](reliability.png)" in text and (tmp_path / "rep" / "reliability.png").stat().st_size
    assert "![FROC curve](froc.png)" in text and (tmp_path / "rep" / "froc.png").stat().st_size
    shared = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert shared["froc"] == json.loads(json.dumps(froc)) and "reliability" in shared
    assert not math.isnan(shared["ece"])


def test_eval_says_when_a_fit_may_share_its_patients(index, disc_model):
    from model.data.split import PATIENT_SCHEME, site_key
    from model.evaluate.evaluation import dataset_fingerprint

    key = site_key()
    patients = sorted({i.patient_id for i in index.images})
    elsewhere = {"data_fingerprint": "0123456789abcdef",
                 "patients": {"scheme": PATIENT_SCHEME, "site": key.id, "hashes": key.hashes(patients[:2]), "count": 2}}
    here_unknown = {"data_fingerprint": dataset_fingerprint(index), "patients": {"count": 3}}  # no hashes to check
    card = dataclasses.replace(disc_model.card, calibration=Calibration("temperature", 2.0, elsewhere),
                               operating_point=OperatingPoint(0.4, "Youden's J", fitted_on=here_unknown))
    report = evaluate(index, LoadedModel(net=disc_model.net, card=card, path=None), device="cpu", bootstrap=50)
    assert ("the model's calibration was fitted on another folder, on patients with the IDs of 2 of the 6 evaluated "
            "patients: if they are the same people, the ECE is in-sample on them") in report.notes
    assert any(n.startswith("the model's operating point was fitted on this very folder, and whether on these "
                            "patients cannot be told here") for n in report.notes)
