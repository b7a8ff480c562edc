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


def test_from_scratch_the_form_trains_a_new_pair_with_its_fine_pass_resolution(qtbot, demo_root, monkeypatch):
    """Passes "two" from scratch: the coarse part's resolution goes to the coarse protocol's, the fine pass's row
    appears, a fine tile the network cannot take is refused at once, the job asks for a pair, and the next session
    remembers it; fine-tuning follows the current model's kind instead."""
    from app.dialogs.retrain_dialog import RetrainDialog
    from tests.app.dialogs.test_retrain import make_window, quick_dialog, start_anyway

    monkeypatch.setattr(RetrainDialog, "AUTO_ESTIMATE", False)  # no timing child: the estimate is tested elsewhere

    window = make_window(qtbot)
    try:
        dialog = quick_dialog(qtbot, window, demo_root)
        form = dialog.form
        assert form.passes.currentData() is False and form.fine_label.isHidden()
        form.passes.setCurrentIndex(1)
        assert (form.spacing.value(), form.tile.value()) == (0.4, 256) and not form.fine_label.isHidden()
        assert (form.fine_spacing.value(), form.fine_tile.value()) == (0.1, 1024)
        form.spacing.setValue(0.2)
        form.tile.setValue(64)
        form.fine_tile.setValue(100)
        assert dialog.setup_message.text() == "Fine pass tile 100 is not a multiple of 16 (the network pools 4 times by 2)"
        assert not dialog.start_button.isEnabled()
        form.fine_tile.setValue(64)
        assert dialog.setup_message.text() == "" and dialog.start_button.isEnabled()
        spec = dialog.spec()
        assert spec.two_pass and (spec.fine_spacing_mm, spec.fine_tile) == (0.1, 64)
        coarse, fine = spec.parts()
        assert (coarse.working_spacing_mm, coarse.tile, fine.working_spacing_mm, fine.tile) == (0.2, 64, 0.1, 64)
        job = start_anyway(dialog)
        assert job.spec().two_pass and job.spec().fine_tile == 64
        assert "two-pass model: fine pass 0.1 mm, tile 64" in dialog.run_view.run_title.text()
        job.kill()
        assert dialog.current_model is not None  # the bundled model: a single one
        form.fine_tune.setChecked(True)
        assert not form.passes.isEnabled() and form.passes.currentData() is False and form.fine_label.isHidden()
        assert not dialog.spec().two_pass
        form.scratch.setChecked(True)
        form.passes.setCurrentIndex(1)
        form.spacing.setValue(0.2)
        form.tile.setValue(64)
    finally:
        window.close()
    again = make_window(qtbot)  # the next session
    try:
        form = again.show_retrain().form
        assert form.scratch.isChecked() and form.passes.currentData() is True
        assert (form.spacing.value(), form.tile.value(), form.fine_tile.value()) == (0.2, 64, 64)
        form.defaults_button.click()
        assert form.passes.currentData() is False and form.fine_label.isHidden()
        assert (form.fine_spacing.value(), form.fine_tile.value()) == (0.1, 1024)
    finally:
        again.close()
