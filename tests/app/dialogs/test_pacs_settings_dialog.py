"""File → PACS settings, as a site's engineer sets a workstation up: archives typed in, tested with an echo against
a real Orthanc, saved, fixed and removed; a wrong one says why in one line; the node's AE title and port changed
while it runs, and it then answers on the new port."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from model.errors import PacsError
from model.pacs.archive import Archive, ArchiveProfile
from model.pacs.profiles import Profiles
from tests.app.qt_helpers import TIMEOUT_MS
from tests.orthanc import Orthanc
from tests.postgres import free_port


@pytest.fixture(scope="module")
def orthanc():
    server = Orthanc()
    yield server
    server.stop()


def type_into(qtbot, field, text: str) -> None:
    field.clear()
    qtbot.keyClicks(field, text)


def echo_line(qtbot, dialog) -> str:
    """Click Test and wait for its line."""
    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog._worker is None and not dialog.message.text().startswith("Testing"),
                    timeout=TIMEOUT_MS)
    return dialog.message.text()


def test_archives_are_typed_tested_saved_fixed_and_removed(qtbot, window, orthanc):
    dialog = window.pacs_control.ask_settings()
    assert dialog.archives.count() == 0 and dialog.calling_ae.text() == window.settings.node[0]
    type_into(qtbot, dialog.name, "main")
    type_into(qtbot, dialog.ae_title, orthanc.ae_title)
    type_into(qtbot, dialog.host, "127.0.0.1")
    dialog.port.setValue(orthanc.dicom_port)
    assert echo_line(qtbot, dialog).startswith(f"main answered ({orthanc.ae_title}@127.0.0.1:{orthanc.dicom_port}")
    assert Profiles().all() == []  # a test saves nothing
    dialog.save_button.click()
    assert [p.name for p in Profiles().all()] == ["main"] and dialog.archives.count() == 1
    assert Profiles().get("main").archive().profile.port == orthanc.dicom_port

    # a port with nothing behind it: the test says so in one line, in red; fixed and saved again, it answers
    dialog.port.setValue(free_port())
    line = echo_line(qtbot, dialog)
    assert "cannot be reached" in line and "\n" not in line and "ff7070" in dialog.message.styleSheet()
    dialog.port.setValue(orthanc.dicom_port)
    dialog.timeout.setValue(90)  # an archive across a slow link
    dialog.save_button.click()
    assert echo_line(qtbot, dialog).startswith("main answered")
    assert Profiles().get("main").archive().profile.timeout_s == 90

    # a DICOMweb archive beside it: the same Orthanc's QIDO answers the test
    dialog.new_button.click()
    assert dialog.name.text() == "" and dialog.archives.currentItem() is None
    type_into(qtbot, dialog.name, "web")
    dialog.kind.setCurrentIndex(1)
    type_into(qtbot, dialog.url, "pacs.example/dicom-web")  # no scheme: not saved, one line
    dialog.save_button.click()
    assert dialog.message.text().startswith("Not saved: ") and "http://" in dialog.message.text()
    type_into(qtbot, dialog.url, f"{orthanc.url}/dicom-web")
    dialog.save_button.click()
    assert echo_line(qtbot, dialog).startswith("web answered")
    assert [p.name for p in Profiles().all()] == ["main", "web"]
    assert [dialog.archives.item(n).text() for n in range(2)] == ["main (DIMSE)", "web (DICOMweb)"]
    assert dialog.archives.item(1).toolTip() == f"{orthanc.url}/dicom-web"

    # picking an archive in the list shows its fields; Remove forgets it
    dialog.archives.setCurrentRow(0)
    assert (dialog.name.text(), dialog.kind.currentIndex(), dialog.port.value(), dialog.timeout.value()) == \
        ("main", 0, orthanc.dicom_port, 90)
    dialog.remove_button.click()
    assert [p.name for p in Profiles().all()] == ["web"] and dialog.message.text() == "Removed main"
    dialog.reject()
    # Query PACS offers what was saved
    assert window.pacs_control.ask_query().archive.currentData() == "web"


def test_the_node_takes_its_new_address_and_answers_there(qtbot, window):
    first, second = free_port(), free_port()
    window.settings.node = ("BCIR", first)
    window.actions.node.setChecked(True)
    dialog = window.pacs_control.ask_settings()
    type_into(qtbot, dialog.node_ae, "BAD\\TITLE")
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert dialog.isVisible() and "is not an AE title" in dialog.message.text()
    assert window.settings.node == ("BCIR", first)
    type_into(qtbot, dialog.node_ae, "READROOM2")
    dialog.node_port.setValue(second)
    qtbot.keyClick(dialog, Qt.Key.Key_Return)
    assert not dialog.isVisible() and window.settings.node == ("READROOM2", second)
    node = window.pacs_control.node
    assert node is not None and (node.ae_title, node.port) == ("READROOM2", second)
    assert window.pacs_control.label.text().startswith(f"Node READROOM2:{second}")
    Archive(ArchiveProfile("READROOM2", "127.0.0.1", second)).echo()
    with pytest.raises(PacsError, match="cannot be reached"):
        Archive(ArchiveProfile("BCIR", "127.0.0.1", first)).echo()
