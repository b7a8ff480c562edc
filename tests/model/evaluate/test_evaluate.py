"""Evaluation on the demo studies: the held-out rule, the report's keys and ranges, the report files, ``bcir eval``."""

import argparse
import copy
import dataclasses
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from model.evaluate import metrics
from model.infer.compare import dice
from model.evaluate.evaluation import dataset_fingerprint, evaluate, held_out_patients
from model.data.masks import load_mask
from model.evaluate.report import write_report
from model.data.study_index import build_index
from model.errors import Cancelled, DataError
from model.nn.card import TrainingRecord
from model.nn.weights import LoadedModel, save_model

REQUIRED = ["patients", "images", "dice_mean", "iou_mean", "lesion_sensitivity", "fp_per_image", "auc", "auc_ci",
            "sensitivity", "specificity", "pixel_accuracy", "pixel_accuracy_all_background"]


@pytest.fixture(scope="module")
def index(demo_root):
    return build_index(demo_root, workers=1)


@pytest.fixture(scope="module")
def report(index, disc_model):
    return evaluate(index, disc_model, device="cpu", bootstrap=500)


def _with_training(model, **training) -> LoadedModel:
    card = dataclasses.replace(model.card, training=TrainingRecord.parse({"data": "demo", "metrics": {}, "date": None,
                                                                          **training}))
    return LoadedModel(net=model.net, card=card, path=None)


def _cc_truth(index, patients=None):
    """Usable ground-truth masks of the CC views, loaded here independently of evaluate()."""
    out = []
    for image in index.images:
        if image.view != "CC" or (patients and image.patient_id not in patients):
            continue
        masks = [load_mask(a.mask_path, (image.rows, image.columns)) for a in image.abnormalities if not a.problem]
        out.append((image, masks))
    return out


def test_report_has_every_key_in_sane_ranges(report, index):
    data = report.to_json()
    assert list(data)[: len(REQUIRED)] == REQUIRED
    json.dumps(data, allow_nan=False)  # plain JSON: no NaN, no numpy types
    truth = _cc_truth(index)
    assert data["patients"] == len({i.patient_id for i, _ in truth}) == 6
    assert data["images"] == len(truth) == 12
    assert report.images_with_lesions == sum(bool(m) for _, m in truth)
    assert report.lesions == sum(len(m) for _, m in truth)
    for key in ("dice_mean", "iou_mean", "lesion_sensitivity", "pixel_accuracy", "pixel_accuracy_all_background",
                "sensitivity", "specificity"):
        assert 0.0 <= data[key] <= 1.0, key
    assert data["iou_mean"] <= data["dice_mean"]
    assert data["fp_per_image"] >= 0
    # both pathologies are among the demo lesions, so the AUC exists and its interval holds it
    assert report.malignant > 0 and report.benign > 0
    low, high = data["auc_ci"]
    assert 0.0 <= low <= data["auc"] <= high <= 1.0
    # the disc model finds something: the numbers are not the trivial ones of an empty prediction
    assert report.lesions_detected + report.false_positives > 0
    assert report.pixel_accuracy != report.pixel_accuracy_all_background
    assert set(report.per_type) == {"mass", "calcification"}
    assert data["abnormalities_with_problems"] == sum(
        bool(a.problem) for i in index.images if i.view == "CC" for a in i.abnormalities)


def test_report_numbers_agree_with_their_parts(report, index):
    assert report.lesion_sensitivity == pytest.approx(report.lesions_detected / report.lesions)
    assert report.fp_per_image == pytest.approx(report.false_positives / report.images)
    scored = report.per_abnormality
    assert len(scored) == report.lesions
    assert report.auc == pytest.approx(metrics.roc_auc([a["malignant"] for a in scored], [a["p_malignant"] for a in scored]))
    assert report.dice_mean == pytest.approx(np.mean([i["dice"] for i in report.per_image if i["lesions"]]))
    assert report.dice_mean_per_lesion == pytest.approx(np.mean([a["dice"] for a in scored]))
    # the all-background baseline, from the masks loaded here
    truth = _cc_truth(index)
    lesion_px = sum(int(np.logical_or.reduce(m).sum()) if m else 0 for _, m in truth)
    pixels = sum(i.rows * i.columns for i, _ in truth)
    assert report.pixel_accuracy_all_background == pytest.approx(1 - lesion_px / pixels)
    # each lesion type's AUC and interval come from that type's lesions alone
    for kind, stats in report.per_type.items():
        mine = [a for a in scored if a["type"] == kind]
        labels, scores = [a["malignant"] for a in mine], [a["p_malignant"] for a in mine]
        assert (stats["lesions"], stats["malignant"], stats["benign"]) == (len(mine), sum(labels), len(mine) - sum(labels))
        assert stats["auc"] == metrics.roc_auc(labels, scores)
        if stats["auc"] is None:
            assert stats["auc_ci"] == [None, None]
        else:
            assert stats["auc_ci"][0] <= stats["auc"] <= stats["auc_ci"][1]
    # malignancy is scored on the paper's protocol: at each ground-truth lesion, whatever the segmentation found
    assert len({(a["path"], a["abnormality_id"]) for a in scored}) == len(scored)


def test_one_image_dice_matches_a_direct_computation(report, index, disc_model):
    from model.infer.predictor import Predictor

    image, masks = next((i, m) for i, m in _cc_truth(index) if m)
    pred = Predictor(disc_model, "cpu", bf16=False).predict(image.path).mask(disc_model.threshold)
    record = next(r for r in report.per_image if r["path"] == image.path)
    union = np.logical_or.reduce(masks)
    # the report may run bf16; masks then agree to Dice >= 0.99 (test_inference), so allow a small difference
    assert record["dice"] == pytest.approx(dice(pred, union), abs=0.02)


def test_fingerprint_follows_the_content_not_the_location(tmp_path, demo_root, index):
    copy_root = tmp_path / "moved"
    shutil.copytree(demo_root, copy_root)
    assert dataset_fingerprint(build_index(copy_root, workers=1)) == dataset_fingerprint(index)
    fewer = copy.copy(index)
    fewer.images = [i for i in index.images if i.patient_id != "P_00001"]
    assert dataset_fingerprint(fewer) != dataset_fingerprint(index)
    fp = dataset_fingerprint(index)
    assert len(fp) == 16 and int(fp, 16) >= 0


def test_held_out_rule_on_the_training_folder_leaves_out_train_patients(index, disc_model):
    train = ["P_00001", "P_00003", "P_00004"]
    model = _with_training(disc_model, data_fingerprint=dataset_fingerprint(index), train_patients=train,
                           val_patients=["P_00006", "P_00011", "P_00012"])
    rep = evaluate(index, model, device="cpu", bootstrap=100)
    assert rep.held_out_rule == "training-card"
    assert rep.patients == 3
    seen = {r["patient_id"] for r in rep.per_image}
    assert seen == {"P_00006", "P_00011", "P_00012"} and not seen & set(train)
    assert any("validation" in n for n in rep.notes)


def test_held_out_rule_on_another_folder_holds_out_everyone(index, disc_model):
    model = _with_training(disc_model, data_fingerprint="0123456789abcdef", train_patients=["P_00001", "P_00003"])
    held = held_out_patients(index, model.card)
    assert held.rule == "all-patients" and len(held.patients) == 6
    assert any("also appear" in n for n in held.notes)  # same IDs: flagged, not silently trusted


def test_untrained_card_holds_out_everyone(report):
    # the disc model's card records no training data: every patient of the folder is evaluated
    assert report.held_out_rule == "all-patients"
    assert {r["patient_id"] for r in report.per_image} == {"P_00001", "P_00003", "P_00004", "P_00006", "P_00011", "P_00012"}


def test_held_out_rule_edge_cases(index, disc_model):
    fp = dataset_fingerprint(index)
    everyone = sorted({i.patient_id for i in index.images})
    with pytest.raises(DataError, match="nothing is held out"):  # trained on every patient
        held_out_patients(index, _with_training(disc_model, data_fingerprint=fp, train_patients=everyone).card)
    unknown = held_out_patients(index, _with_training(disc_model, data_fingerprint=fp).card)
    assert len(unknown.patients) == 6 and unknown.notes  # evaluated, but said not to be held-out numbers
    explicit = held_out_patients(index, _with_training(disc_model, data_fingerprint=fp, train_patients=["P_00001"]).card,
                                 patients=["P_00001", "P_99999"])
    assert explicit.rule == "explicit" and explicit.patients == ["P_00001"]
    assert any("not in the folder" in n for n in explicit.notes) and any("training patients" in n for n in explicit.notes)
    with pytest.raises(DataError, match="none of the 1 requested patients"):
        held_out_patients(index, disc_model.card, patients=["P_99999"])


def test_one_class_gives_a_null_auc(index, disc_model):
    rep = evaluate(index, disc_model, device="cpu", patients=["P_00001"], bootstrap=100)  # malignant masses only
    data = json.loads(json.dumps(rep.to_json()))
    assert rep.held_out_rule == "explicit" and data["patients"] == 1
    assert data["auc"] is None and data["auc_ci"] == [None, None]
    assert data["specificity"] is None and data["sensitivity"] is not None
    assert rep.roc_points() is None


def test_images_whose_every_mask_is_unusable_are_skipped_and_counted(index, disc_model, report):
    broken = copy.deepcopy(index)
    target = next(i for i in broken.images if i.patient_id == "P_00001" and i.view == "CC")
    for a in target.abnormalities:
        a.problem = "mask size 10x10 differs from image size; left out, not resized"
    rep = evaluate(broken, disc_model, device="cpu", bootstrap=100)
    base = report
    assert rep.images == base.images - 1
    assert rep.images_skipped == {"every abnormality's mask unusable": 1}
    assert rep.abnormalities_with_problems == base.abnormalities_with_problems + len(target.abnormalities)
    assert target.path not in {r["path"] for r in rep.per_image}


def test_cancel_stops_the_evaluation(index, disc_model):
    with pytest.raises(Cancelled, match="^evaluation cancelled$"):
        evaluate(index, disc_model, device="cpu", should_stop=lambda: True)


def test_report_files(tmp_path, report):
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "val_dice": 0.5 + e / 40} for e in range(1, 11)]
    report = copy.copy(report)
    report.model_card = {**report.model_card, "intended_use": "Trained on synthetic images only; not for clinical use."}
    path = write_report(report, tmp_path / "rep", history=history)
    text = path.read_text()
    for name in ("roc.png", "training_curves.png"):
        data = (tmp_path / "rep" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert "all-background" in text and "not for clinical use" in text
    assert "Published results" in text and "Shen et al. 2019" in text
    assert report.held_out_description in text
    assert f"{report.auc:.3f}" in text
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["images"] == report.images
    # no history: no curves, and the report says so (a stale plot from an earlier run is removed)
    write_report(report, tmp_path / "rep")
    assert not (tmp_path / "rep" / "training_curves.png").exists()
    assert "No training curves" in (tmp_path / "rep" / "report.md").read_text()


def test_report_without_both_classes_has_no_roc(tmp_path, index, disc_model):
    rep = evaluate(index, disc_model, device="cpu", patients=["P_00001"], bootstrap=100)
    path = write_report(rep, tmp_path)
    assert not (tmp_path / "roc.png").exists()
    assert "No ROC curve" in path.read_text()


def test_plotting_pulls_in_no_qt(tmp_path):
    code = (
        "import sys\n"
        "from model.evaluate.report import plot_training_curves\n"
        "png = plot_training_curves([{'epoch': 1, 'train_loss': 1.0}, {'epoch': 2, 'train_loss': 0.5}])\n"
        "assert png[:4] == b'\\x89PNG'\n"
        "import matplotlib\n"
        "print(matplotlib.get_backend().lower(), ','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'PyQt5', 'PyQt6', 'shiboken6', 'matplotlib.pyplot'))))\n"
    )
    env = {**__import__("os").environ, "MPLBACKEND": "QtAgg"}  # even when the environment asks for Qt
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    backend, loaded = result.stdout.strip().split(" ", 1) if " " in result.stdout.strip() else (result.stdout.strip(), "")
    assert backend == "agg" and loaded == ""


def _parser():
    from model.cli.evaluate import register

    parser = argparse.ArgumentParser(prog="bcir")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_eval_command_json_and_report(tmp_path, demo_root, disc_model, capsys):
    weights = save_model(disc_model.net, disc_model.card, tmp_path / "disc.safetensors")
    args = _parser().parse_args(["eval", str(demo_root), "--weights", str(weights), "--device", "cpu", "--json",
                                 "--bootstrap", "200", "--report", str(tmp_path / "out")])
    assert args.func(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(REQUIRED) <= set(data) and data["images"] == 12 and len(data["auc_ci"]) == 2
    assert "per_image" not in data  # --details adds them
    assert (tmp_path / "out" / "report.md").is_file() and (tmp_path / "out" / "roc.png").stat().st_size > 0

    args = _parser().parse_args(["eval", str(demo_root), "--weights", str(weights), "--device", "cpu",
                                 "--patients", "P_00001", "--bootstrap", "100"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "malignancy AUC" in out and "n/a" in out and "all background" in out


def test_an_image_that_fails_for_any_reason_is_counted_and_the_evaluation_goes_on(index, disc_model, report, monkeypatch):
    """Out of memory in one image, an exception the reader does not type in another: both are listed with their
    one-line reason and counted as skipped; every other image is evaluated as before."""
    import model.data.dicom_io
    from model.infer.predictor import Predictor

    odd, huge = report.per_image[0]["path"], report.per_image[-1]["path"]
    real_read, real_predict = model.data.dicom_io.read_image, Predictor.predict

    def read_image(path, *args, **kwargs):
        if str(path) == odd:
            raise ValueError("UID is not a transfer syntax.")  # what pydicom's is_compressed raised
        return real_read(path, *args, **kwargs)

    def predict(self, image, *args, **kwargs):
        if str(image.header.path) == huge:
            raise MemoryError()
        return real_predict(self, image, *args, **kwargs)

    monkeypatch.setattr(model.data.dicom_io, "read_image", read_image)
    monkeypatch.setattr(Predictor, "predict", predict)
    rep = evaluate(index, disc_model, device="cpu", bootstrap=100)
    assert rep.images == report.images - 2
    assert {e["path"]: e["reason"] for e in rep.errors} == {odd: "UID is not a transfer syntax. (ValueError)",
                                                            huge: "out of memory"}
    assert rep.images_skipped == {"failed: UID is not a transfer syntax. (ValueError)": 1, "failed: out of memory": 1}
    kept = [r for r in report.per_image if r["path"] not in (odd, huge)]
    assert [r["path"] for r in rep.per_image] == [r["path"] for r in kept]
    assert [r["dice"] for r in rep.per_image] == pytest.approx([r["dice"] for r in kept])
    assert "errors" in rep.to_json() and "errors" not in rep.to_json(details=False)  # paths only with the details


def test_a_cancel_inside_the_network_still_stops_the_evaluation(index, disc_model, monkeypatch):
    """The per-image error handling (any Exception of one image) must not swallow a cancel."""
    from model.infer.predictor import Predictor

    def predict(self, image, *args, **kwargs):
        raise Cancelled("inference cancelled")

    monkeypatch.setattr(Predictor, "predict", predict)
    with pytest.raises(Cancelled):
        evaluate(index, disc_model, device="cpu", bootstrap=100)


def test_a_file_name_that_is_not_utf8_does_not_stop_the_evaluation(tmp_path, demo_root, index, disc_model):
    """The folder's fingerprint hashes each name's bytes: a Latin-1 name from an old archive is one more file, and a
    UTF-8 name hashes as before (the fingerprints of folders already trained on do not change)."""
    import os

    from tests.conftest import make_dicom

    root = tmp_path / "studies"
    shutil.copytree(demo_root, root)
    assert dataset_fingerprint(build_index(root, workers=1)) == dataset_fingerprint(index)
    raw = os.fsencode(root) + b"/extra_caf\xe9_LEFT_CC.dcm"
    os.rename(make_dicom(root / "tmp.dcm", np.full((64, 48), 900, np.uint16)), raw)
    odd = build_index(root, workers=1)
    assert os.fsdecode(raw) in {i.path for i in odd.images}
    assert dataset_fingerprint(odd) != dataset_fingerprint(index)
    rep = evaluate(odd, disc_model, device="cpu", patients=["P_00001"], bootstrap=50)
    assert rep.images == 2 and rep.data_fingerprint == dataset_fingerprint(odd)


def test_an_image_with_a_lesion_of_unknown_pathology_is_not_counted_benign_in_the_case_auc():
    from model.evaluate.evaluation import image_class
    from model.data.study_index import Abnormality, IndexedImage

    def image(*pathologies):
        abnormalities = [Abnormality(id=n, type="mass", pathology=p, malignant=p == "MALIGNANT", mask_path=None)
                         for n, p in enumerate(pathologies, 1)]
        return IndexedImage(path="/x.dcm", patient_id="P", laterality="R", view="CC", rows=10, columns=10,
                            abnormalities=abnormalities, gt_known=True)

    assert image_class(image()) is False
    assert image_class(image("BENIGN", "BENIGN_WITHOUT_CALLBACK")) is False
    assert image_class(image("BENIGN", "MALIGNANT")) is True
    assert image_class(image("BENIGN", "")) is None
    assert image_class(image("BENIGN", "maybe cancer")) is None
    assert image_class(image("", "MALIGNANT")) is True  # malignant whatever the other lesion is
