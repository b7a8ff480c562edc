"""Findings and ``bcir eval`` on the same demo case report the same hits, misses and false positives.

The network is made to 'predict' a chosen map (its sliding window is swapped
for one that returns it; listing, malignancy head and everything after are
the real ones): on one CC view the truth lesion, with a piece joined to it by
a neck too thin for the image's grid, and a false positive; nothing on the
other view, whose truth lesion is missed. The model works on a grid twice as
fine as the image's (as on a 0.1 mm detector image), so the neck is lost on
the image grid: counting the yellow mask's pieces (as ``bcir eval`` did) gave
that view a second false positive that the panel does not list.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from model.data.dicom_io import read_image
from model.data.masks import load_truth
from model.data.preprocess import PreprocessConfig, prepare
from model.data.study_index import build_index
from model.infer.predictor import Predictor
from model.nn.weights import load_model, new_card, save_model

from app.background.ai_results import AiImage, load_predictor, run_case
from app.panels.findings_panel import VERDICT_COLUMN, FindingsDock

PROBABILITY = 0.9  # above any threshold the demo's models use


def _dropped_rows(geometry) -> set[int]:
    """Working-grid rows that the original grid does not sample (nearest neighbour, the working grid being finer)."""
    h, w = geometry.working_shape
    source = geometry.to_original(np.repeat(np.arange(h, dtype=np.float32)[:, None], w, axis=1), nearest=True)
    y0, y1, x0, x1 = geometry.crop
    return set(range(h)) - {int(v) for v in np.unique(source[y0:y1, x0:x1])}


def _found_and_false_positive(image, preprocess) -> np.ndarray:
    """On the working grid: the truth lesion with a piece cut off on the image grid, and a disc away from it."""
    mammogram = read_image(image.path)
    working, geometry, region = prepare(mammogram.monochrome2(), mammogram.header.pixel_spacing_mm, preprocess)
    assert geometry.scale == 2, "the model works on a grid twice as fine as the image's"
    lesion = geometry.to_working(load_truth(image).usable[0].mask)
    ys, xs = np.nonzero(lesion)
    neck_row = next(r for r in sorted(_dropped_rows(geometry), key=lambda r: abs(r - ys.mean())) if lesion[r].any())
    chosen = lesion.copy()
    right = int(np.nonzero(lesion[neck_row])[0].max())
    start = int(xs.max()) + 16  # clear of the lesion everywhere: a gap of 4 image pixels
    assert start + 24 < working.shape[1], "room for the piece to the right of the lesion"
    chosen[neck_row, right : start + 1] = True
    chosen[neck_row - 8 : neck_row + 9, start : start + 24] = True  # joined to the lesion by the neck alone
    breast = geometry.to_working(region.mask)
    away = cv2.dilate(chosen.astype(np.uint8), np.ones((161, 161), np.uint8)) == 0
    depth = cv2.distanceTransform((breast & away).astype(np.uint8), cv2.DIST_L2, 5)
    cy, cx = np.unravel_index(int(np.argmax(depth)), depth.shape)
    assert depth[cy, cx] > 35, "room in the breast for a false positive"
    yy, xx = np.mgrid[: working.shape[0], : working.shape[1]]
    chosen |= (yy - cy) ** 2 + (xx - cx) ** 2 <= 30**2  # 7 mm² at 0.05 mm: above the 4 mm² floor
    return np.where(chosen, PROBABILITY, 0.0).astype(np.float32)


class ChosenMap:
    """Stands in for the sliding window: returns the chosen probability map of the image."""

    def __init__(self, probability: np.ndarray):
        self.probability, self.last_tile_count = probability, 1

    def __call__(self, working, breast, progress=None, should_stop=None):
        assert working.shape == self.probability.shape
        return self.probability


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, disc_model) -> Path:
    """The disc model reading the demo's images (no pixel spacing in their headers) at 0.1 mm and working at 0.05."""
    card = new_card(disc_model.net, version="test-discs-fine",
                    preprocess=PreprocessConfig(default_spacing_mm=0.1, working_spacing_mm=0.05))
    return save_model(disc_model.net, card, tmp_path_factory.mktemp("model") / "discs-fine.safetensors")


@pytest.fixture
def chosen_case(monkeypatch, demo_root, model_file):
    """(index, patient, CC images): the network predicts the chosen maps on this patient's CC views."""
    index = build_index(demo_root, workers=1)
    patients = index.patients()
    patient = next(p for p, images in patients.items()
                   if sum(1 for i in images if i.view == "CC" and load_truth(i).usable) == 2)
    cc = sorted((i for i in patients[patient] if i.view == "CC"), key=lambda i: i.laterality)
    preprocess = load_model(model_file).preprocess
    maps = {str(Path(cc[0].path).resolve()): _found_and_false_positive(cc[0], preprocess)}
    real_predict = Predictor.predict

    def predict(self, image, **kwargs):
        path = Path(image if isinstance(image, (str, Path)) else image.header.path).resolve()
        mammogram = read_image(path)
        working, _, _ = prepare(mammogram.monochrome2(), mammogram.header.pixel_spacing_mm, self.model.preprocess)
        self.segmenter = ChosenMap(maps.get(str(path), np.zeros(working.shape, np.float32)))
        return real_predict(self, mammogram, **{**kwargs, "use_cache": False})

    monkeypatch.setattr(Predictor, "predict", predict)
    return index, patient, cc


def _panel_counts(dock: FindingsDock, path: str) -> dict:
    row = dock.image_row(path)
    verdicts = [(row.child(j).text(0)[:1], row.child(j).text(VERDICT_COLUMN)) for j in range(row.childCount())]
    return {"detected": sum(1 for kind, v in verdicts if kind == "T" and v.startswith("found")),
            "missed": sum(1 for kind, v in verdicts if kind == "T" and v == "missed"),
            "false_positives": sum(1 for kind, v in verdicts if kind == "L" and v == "false positive")}


def test_findings_and_bcir_eval_count_the_same_hits_misses_and_false_positives(qtbot, capsys, chosen_case, model_file):
    index, patient, cc = chosen_case
    # the reader's side: the AI worker's task, then the findings panel
    events: list = []
    run_case(load_predictor(model_file, cache_dir=None), cc, events.append, lambda: False)
    results = [e for e in events if isinstance(e, AiImage)]
    assert len(results) == 2, events
    dock = FindingsDock()
    qtbot.addWidget(dock)
    dock.set_case(patient, cc)
    for ai in results:
        assert dock.set_result(ai)
    found_view = results[0]
    threshold = found_view.threshold
    _, pieces = cv2.connectedComponents(found_view.result.lesion_mask(threshold).astype(np.uint8), connectivity=8)
    assert len(found_view.result.lesions) == 2 and pieces.max() == 3, "two listed lesions, three pieces of yellow"
    panel = {image.path: _panel_counts(dock, image.path) for image in cc}

    # the command line's side, on the same images
    from model.cli.main import main

    capsys.readouterr()
    assert main(["eval", str(index.root), "--weights", str(model_file), "--patients", patient, "--device", "cpu",
                 "--bootstrap", "10", "--json", "--details"]) == 0
    records = {r["path"]: r for r in json.loads(capsys.readouterr().out)["per_image"]}
    report = {path: {"detected": r["detected"], "missed": r["lesions"] - r["detected"],
                     "false_positives": r["false_positives"]} for path, r in records.items()}

    assert report == panel
    assert panel[cc[0].path] == {"detected": 1, "missed": 0, "false_positives": 1}  # found, and one false positive
    assert panel[cc[1].path] == {"detected": 0, "missed": 1, "false_positives": 0}  # the other view's lesion missed
    for image in cc:  # the image row's Dice is the report's
        assert f"Dice {records[image.path]['dice']:.2f}" in dock.image_row(image.path).text(0)
