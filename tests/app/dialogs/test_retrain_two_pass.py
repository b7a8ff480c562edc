"""The Retrain window with a two-pass model in use (issue 15, item 1): the form says both passes are fine-tuned, and
the run view follows the part under way."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from model.data.preprocess import PreprocessConfig
from model.nn.weights import random_model, save_model, save_pair

from app.dialogs.retrain_form import OptionsForm
from app.dialogs.retrain_progress import RunView


def test_the_form_says_a_two_pass_model_is_fine_tuned_whole(qtbot, tmp_path):
    coarse = random_model(1, preprocess=PreprocessConfig(working_spacing_mm=0.4), tile_size=256)
    fine = random_model(2, preprocess=PreprocessConfig(working_spacing_mm=0.1), tile_size=1024)
    pair = save_pair(coarse, fine, tmp_path / "pair.safetensors", version="pair-v1")
    form = OptionsForm(pair)
    qtbot.addWidget(form)
    form.apply({})  # as the dialog fills it (the options last used: none here)
    form.show()
    assert form.fine_tune.isChecked() and not form.two_pass_note.isHidden()
    assert "both passes are fine-tuned" in form.two_pass_note.text() and "fine 0.1 mm, tile 1024" in form.two_pass_note.text()
    assert (form.spacing.value(), form.tile.value()) == (0.4, 256)  # the coarse part's, shown and kept
    form.scratch.setChecked(True)
    assert form.two_pass_note.isHidden()
    save_model(coarse.net, coarse.card, tmp_path / "single.safetensors")
    form.set_current_model(tmp_path / "single.safetensors")
    form.fine_tune.setChecked(True)
    assert form.two_pass_note.isHidden()


def test_the_run_view_follows_the_part_under_way(qtbot):
    view = RunView(QWidget(), [])
    qtbot.addWidget(view)
    view.begin("two-pass run")
    view.on_event({"kind": "epoch_end", "part": "coarse", "epoch": 1, "metrics": {"train_loss": 0.9}})
    view.on_event({"kind": "epoch_end", "part": "coarse", "epoch": 2, "metrics": {"train_loss": 0.8}})
    assert view.curve_points("train_loss") == [(1, 0.9), (2, 0.8)]
    view.on_event({"kind": "batch", "part": "fine", "epoch": 1, "epochs": 3, "batch": 1, "batches": 2, "loss": 0.7})
    assert view.curve_points("train_loss") == []  # the fine part's curves start afresh
    assert view.progress.format().startswith("fine part · epoch 1/3") and view.words.startswith("fine part · epoch 1/3")
