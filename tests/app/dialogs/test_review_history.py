"""Review → Review history → Export writes the same file as ``bcir reviews export``, byte for byte; in blinded
reading both hold only the reader's own reviews."""

from __future__ import annotations

from PySide6.QtWidgets import QDialogButtonBox, QFileDialog

from model.cli import main as cli
from model.reviews.protocol import own_read, verdict_on_ai
from model.reviews.records import Review



def fill_log(store) -> None:
    store.record(Review(reader="Dr A", patient_id="P_00001", verdict="agree", birads="2", ai_shown=True,
                        ai_score_shown=0.1234567890123, model_version="bcir-demo-v1",
                        comment='two lines\nwith "quotes", commas and ü'))
    store.record(Review(reader="Dr B", patient_id="P_00001", verdict="disagree", birads="4c", ai_shown=True,
                        ai_score_shown=0.9, image_path="/studies/P_00001_LEFT_CC.dcm"))
    store.record(own_read("Dr B", "P_00002", "3", "own"))
    store.record(verdict_on_ai("revealed", "Dr B", "P_00002", "agree", "3", ai_score_shown=0.25))


def export_from_the_history_dialog(window, monkeypatch, out) -> None:
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *args, **kw: (str(out), "CSV (*.csv)")))
    dialog = window.show_review_history()
    buttons = dialog.findChild(QDialogButtonBox)
    (export,) = [b for b in buttons.buttons() if b.text() == "Export CSV…"]
    export.click()
    dialog.close()


def test_the_apps_export_and_bcir_reviews_export_write_the_same_file(window, monkeypatch, tmp_path, capsys):
    fill_log(window.reviews)
    export_from_the_history_dialog(window, monkeypatch, tmp_path / "app.csv")
    assert cli.main(["reviews", "export", str(tmp_path / "bcir.csv"), "--db", str(window.reviews.path)]) == 0
    assert capsys.readouterr().out == f"4 reviews exported to {tmp_path / 'bcir.csv'}\n"
    app_bytes = (tmp_path / "app.csv").read_bytes()
    assert app_bytes == (tmp_path / "bcir.csv").read_bytes()
    assert app_bytes.startswith(b"id,created,reader,patient_id,image_path,") and app_bytes.count(b"\r\n") == 5
    assert "ü".encode() in app_bytes


def test_in_blinded_reading_the_export_holds_only_the_readers_own_reviews(window, monkeypatch, tmp_path):
    fill_log(window.reviews)
    window.review.reader.setText("Dr A")
    window.review.reader.editingFinished.emit()
    window.set_blinded_mode(True)
    export_from_the_history_dialog(window, monkeypatch, tmp_path / "app.csv")
    lines = (tmp_path / "app.csv").read_text(encoding="utf-8").splitlines()
    assert "Dr B" not in "".join(lines) and ",Dr A," in lines[1]  # Dr B's verdicts stay hidden from Dr A
    cli.main(["reviews", "export", str(tmp_path / "bcir.csv"), "--db", str(window.reviews.path), "--reader", "Dr A"])
    assert (tmp_path / "app.csv").read_bytes() == (tmp_path / "bcir.csv").read_bytes()
