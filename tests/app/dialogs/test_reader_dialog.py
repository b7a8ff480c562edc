"""Reading → Start reading: the database and the reader, chosen from the site's list; a site that ties readers to
logins offers a login only its own reader."""

from __future__ import annotations

from model.reading.reads import Reader
from model.reading.store import ReadStore

from app.dialogs.reader_dialog import ReaderDialog


def names(dialog) -> list[str]:
    return [dialog.readers.item(i).text() for i in range(dialog.readers.count())]


def test_the_dialog_lists_the_readers_a_login_may_read_as(qtbot, tmp_path):
    url = f"sqlite:///{tmp_path / 'reads.sqlite'}"
    with ReadStore(url) as store:
        store.add_reader(Reader("AA", "Dr A"), login="alice")
        store.add_reader(Reader("BB", "Dr B"), login="bob")
    dialog = ReaderDialog(url, login="alice")
    qtbot.addWidget(dialog)
    assert names(dialog) == ["Dr A (AA)"] and "tied to your login (alice)" in dialog.message.text()
    dialog.accept()
    assert dialog.reader == "AA"
    stranger = ReaderDialog(url, login="mallory")
    qtbot.addWidget(stranger)
    assert names(stranger) == [] and "--login mallory" in stranger.message.text()
    assert not stranger.buttons.buttons()[0].isEnabled() or stranger.reader is None
    stranger.accept()
    assert stranger.reader is None


def test_an_untied_site_offers_every_reader_and_an_unreachable_database_says_why(qtbot, tmp_path):
    url = f"sqlite:///{tmp_path / 'reads.sqlite'}"
    with ReadStore(url) as store:
        for code in ("AA", "BB"):
            store.add_reader(Reader(code, f"Dr {code}"))
    dialog = ReaderDialog(url, last_reader="BB", login="anyone")
    qtbot.addWidget(dialog)
    assert names(dialog) == ["Dr AA (AA)", "Dr BB (BB)"] and dialog.readers.currentItem().text() == "Dr BB (BB)"
    assert "ties no reader to a login" in dialog.message.text()
    dialog.url.setText("postgresql://bcir@127.0.0.1:1/none")
    assert not dialog.connect_store()
    assert "cannot be reached" in dialog.message.text() and "\n" not in dialog.message.text()
    assert names(dialog) == []
