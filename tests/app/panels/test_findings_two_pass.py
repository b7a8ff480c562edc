"""The findings panel and the status bar follow a two-pass model (issue 15, item 1): a whole view's row says how many
fine tiles the fine pass ran; an ROI or a one-pass result says nothing of it; the status names each pass."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np

from model.data.preprocess import Geometry, PreprocessConfig
from model.data.study_index import IndexedImage
from model.infer.predictor import ImageResult
from model.nn.weights import LoadedModel, random_model

from app.background.ai_results import model_status, prepare_ai_image, roi_tile_size
from app.panels.findings_panel import SPAN_ROLE, FindingsDock, fine_pass_text

ROWS, COLS = 120, 90


def _result(fine_rois: int, mode: str = "whole") -> ImageResult:
    geometry = Geometry((ROWS, COLS), (0, ROWS, 0, COLS), False, 1.0, (ROWS, COLS), 0.1, True)
    return ImageResult(path="/x/a.dcm", laterality="R", view="CC", rows=ROWS, columns=COLS, lesions=[], case_score=0.0,
                       model_version="pair-v1", device="CPU", seconds=0.1, spacing_mm=0.1, spacing_known=True,
                       mode=mode, fine_rois=fine_rois, probability=np.zeros((ROWS, COLS), np.uint8), geometry=geometry)


def _rows(dock: FindingsDock) -> list[str]:
    top = dock.tree.topLevelItem(0)
    return [top.child(j).text(0) for j in range(top.childCount())]


def test_a_whole_views_row_says_how_many_fine_tiles_ran(qtbot):
    image = IndexedImage(path="/x/a.dcm", patient_id="P", laterality="R", view="CC", rows=ROWS, columns=COLS,
                         abnormalities=[], gt_known=False)
    dock = FindingsDock()
    qtbot.addWidget(dock)
    dock.set_case("P", [image])
    assert dock.set_result(prepare_ai_image(image, _result(2), threshold=0.5))
    fine = [r for r in _rows(dock) if r.startswith("fine pass")]
    assert fine == ["fine pass: 2 tiles at 0.1 mm"]
    top = dock.tree.topLevelItem(0)
    row = next(top.child(j) for j in range(top.childCount()) if top.child(j).text(0) == fine[0])
    assert row.data(0, SPAN_ROLE) and "two-pass" in row.toolTip(0)
    assert dock.lesion_rows() == []  # not a row that centres on anything
    # one pass, or the fine pass alone on one ROI: nothing said
    for quiet, roi in ((_result(0), {}), (_result(3, mode="roi"), {"roi_point": (45.0, 60.0), "roi_tile": (64, 64)})):
        assert fine_pass_text(quiet) is None
        dock.set_result(prepare_ai_image(image, quiet, threshold=0.5, **roi))
        assert not any(r.startswith("fine pass") for r in _rows(dock)) and _rows(dock)
    assert fine_pass_text(_result(1)) == "fine pass: 1 tile at 0.1 mm"


def test_the_status_names_each_pass_and_the_roi_is_the_fine_pass_tile():
    coarse, fine = random_model(0, version="pair-v1"), random_model(1, version="pair-v1")
    fine = LoadedModel(net=fine.net, card=dataclasses.replace(fine.card, tile_size=512), path=None)
    coarse = LoadedModel(net=coarse.net, card=dataclasses.replace(
        coarse.card, tile_size=256, preprocess=PreprocessConfig(working_spacing_mm=0.4)), path=None, fine=fine)
    predictor = SimpleNamespace(model=coarse, device_description="CPU (2 cores)", config=SimpleNamespace(tile=256))
    assert model_status(predictor) == ("CPU (2 cores) · model pair-v1 (two-pass: coarse 0.4 mm, tile 256; fine 0.1 mm, "
                                       "tile 512)")
    assert roi_tile_size(predictor, (600, 900)) == (512, 512)  # ROI mode runs the fine pass's tile
    assert roi_tile_size(predictor, (300, 900)) == (304, 512)  # no larger than the working image, rounded up
    single = SimpleNamespace(model=dataclasses.replace(coarse, fine=None), device_description="CPU (2 cores)",
                             config=SimpleNamespace(tile=256))
    assert model_status(single) == "CPU (2 cores) · model pair-v1"
    assert roi_tile_size(single, (600, 900)) == (256, 256)
