"""File → PACS settings: our DICOM node's AE title and port, and the site's named archives (model.pacs.profiles) with
an Echo/Test button. The checks and the saving are model.pacs's; this gathers the fields and shows what they say."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QListWidget,
    QListWidgetItem, QPushButton, QSpinBox, QStackedWidget, QVBoxLayout, QWidget,
)

from model.errors import BcirError
from model.pacs.archive import DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S
from model.pacs.contexts import AE_TITLE_MAX, check_ae_title
from model.pacs.profiles import Profile, Profiles

NAME_ROLE = Qt.ItemDataRole.UserRole
DIMSE, DICOMWEB = "DIMSE (AE title, host, port)", "DICOMweb (base URL)"


class PacsSettingsDialog(QDialog):
    """Edits the node settings (saved on OK) and the archives (each saved, tested or removed by its own button, so a
    tested archive is kept even if the dialog is then cancelled)."""

    node_changed = Signal(str, int)  # the node's new AE title and port, once accepted

    def __init__(self, workers, node: tuple[str, int], profiles: Profiles | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS settings")
        self.workers = workers
        self.profiles = profiles or Profiles()
        self._worker = None
        self.node_ae = QLineEdit(node[0])
        self.node_ae.setMaxLength(AE_TITLE_MAX)
        self.node_port = QSpinBox()
        self.node_port.setRange(1, 65535)
        self.node_port.setValue(int(node[1]))
        self.archives = QListWidget()
        self.name = QLineEdit()
        self.kind = QComboBox()
        self.kind.addItems([DIMSE, DICOMWEB])
        self.ae_title, self.host, self.calling_ae = QLineEdit(), QLineEdit(), QLineEdit(node[0])
        for field in (self.ae_title, self.calling_ae):
            field.setMaxLength(AE_TITLE_MAX)
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(104)
        self.url = QLineEdit()
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(1, MAX_TIMEOUT_S)
        self.timeout.setDecimals(0)
        self.timeout.setSuffix(" s")
        self.timeout.setValue(DEFAULT_TIMEOUT_S)
        self.timeout.setToolTip("the longest wait for any one answer of the archive")
        self.url.setPlaceholderText("http://pacs.example:8042/dicom-web")
        self.new_button, self.save_button = QPushButton("New"), QPushButton("Save archive")
        self.remove_button, self.test_button = QPushButton("Remove"), QPushButton("Test (echo)")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setObjectName("pacsSettingsMessage")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self._lay_out()
        self.archives.currentItemChanged.connect(lambda item, _old: self._show(item))
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.new_button.clicked.connect(self.new_archive)
        self.save_button.clicked.connect(self.save_archive)
        self.remove_button.clicked.connect(self.remove_archive)
        self.test_button.clicked.connect(self.test_archive)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self._reload()
        self.resize(760, 480)

    def _lay_out(self) -> None:
        node_box = QGroupBox("Our DICOM node (File → Receive studies; archives push and C-MOVE to it)")
        node_form = QFormLayout(node_box)
        node_form.addRow("AE title", self.node_ae)
        node_form.addRow("Port", self.node_port)
        dimse, web = QWidget(), QWidget()
        dimse_form, web_form = QFormLayout(dimse), QFormLayout(web)
        dimse_form.addRow("Archive AE title", self.ae_title)
        dimse_form.addRow("Host", self.host)
        dimse_form.addRow("Port", self.port)
        dimse_form.addRow("Our AE title (calling)", self.calling_ae)
        web_form.addRow("Base URL", self.url)
        self.fields = QStackedWidget()
        self.fields.addWidget(dimse)
        self.fields.addWidget(web)
        editor = QVBoxLayout()
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Speaks", self.kind)
        form.addRow("Timeout", self.timeout)
        editor.addLayout(form)
        editor.addWidget(self.fields)
        row = QHBoxLayout()
        for button in (self.new_button, self.save_button, self.remove_button, self.test_button):
            row.addWidget(button)
        editor.addLayout(row)
        editor.addStretch(1)
        archive_box = QGroupBox("Archives (the site's PACS, by name: Query PACS and Send results use them)")
        archive_row = QHBoxLayout(archive_box)
        archive_row.addWidget(self.archives, 1)
        archive_row.addLayout(editor, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(node_box)
        layout.addWidget(archive_box, 1)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)

    # -- the archives

    def _reload(self, select: str = "") -> None:
        self.archives.clear()
        try:
            found = self.profiles.all()
        except BcirError as exc:
            self._say(str(exc), error=True)
            found = []
        for profile in found:
            item = QListWidgetItem(f"{profile.name} ({'DICOMweb' if profile.dicomweb else 'DIMSE'})")
            item.setToolTip(profile.describe())
            item.setData(NAME_ROLE, profile.name)
            self.archives.addItem(item)
            if profile.name == select:
                self.archives.setCurrentItem(item)
        if not found:
            self.new_archive()
        elif self.archives.currentItem() is None:
            self.archives.setCurrentRow(0)
        self._refresh()

    def _show(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        try:
            profile = self.profiles.get(item.data(NAME_ROLE))
        except BcirError as exc:
            self._say(str(exc), error=True)
            return
        self.name.setText(profile.name)
        self.kind.setCurrentIndex(1 if profile.dicomweb else 0)
        self.ae_title.setText(profile.ae_title)
        self.host.setText(profile.host)
        self.port.setValue(int(profile.port) or 104)
        self.calling_ae.setText(profile.calling_ae)
        self.url.setText(profile.dicomweb)
        self.timeout.setValue(float(profile.timeout_s))
        self._refresh()

    def _kind_changed(self, index: int) -> None:
        self.fields.setCurrentIndex(index)

    def _refresh(self) -> None:
        busy = self._worker is not None
        chosen = self.archives.currentItem() is not None
        self.remove_button.setEnabled(chosen and not busy)
        self.test_button.setEnabled(not busy)
        self.save_button.setEnabled(not busy)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setStyleSheet("color: #ff7070;" if error else "")
        self.message.setText(text)

    def profile(self) -> Profile:
        """The archive the fields describe; ConfigError with one line when they do not describe one."""
        name = self.name.text().strip()
        if self.kind.currentIndex() == 1:
            return Profile(name, dicomweb=self.url.text().strip(), timeout_s=self.timeout.value())
        return Profile(name, ae_title=self.ae_title.text().strip(), host=self.host.text().strip(),
                       port=self.port.value(), calling_ae=self.calling_ae.text().strip(), timeout_s=self.timeout.value())

    def new_archive(self) -> None:
        self.archives.setCurrentItem(None)
        self.name.clear()
        self.ae_title.clear()
        self.host.clear()
        self.url.clear()
        self.port.setValue(104)
        self.timeout.setValue(DEFAULT_TIMEOUT_S)
        self.calling_ae.setText(self.node_ae.text().strip())
        self.name.setFocus()
        self._refresh()

    def save_archive(self) -> bool:
        try:
            profile = self.profile()
            self.profiles.add(profile)
        except BcirError as exc:
            self._say(f"Not saved: {exc}", error=True)
            return False
        self._reload(select=profile.name)
        self._say(f"Saved {profile.name} ({profile.describe()})")
        return True

    def remove_archive(self) -> None:
        item = self.archives.currentItem()
        if item is None:
            return
        name = item.data(NAME_ROLE)
        try:
            self.profiles.remove(name)
        except BcirError as exc:
            self._say(str(exc), error=True)
            return
        self._reload()
        self._say(f"Removed {name}")

    def test_archive(self) -> None:
        """Echo the archive the fields describe (saved or not), off the GUI thread."""
        if self._worker is not None:
            return
        try:
            profile = self.profile()
            archive = profile.archive()
        except BcirError as exc:
            self._say(f"Cannot test: {exc}", error=True)
            return

        def task(report, should_stop):
            started = time.perf_counter()
            archive.echo()
            return time.perf_counter() - started

        self._say(f"Testing {profile.describe()}…")
        self._worker = self.workers.start(
            task, name="pacs echo",
            on_result=lambda seconds: self._say(f"{profile.name} answered ({profile.describe()}, "
                                                f"{seconds * 1000:.0f} ms)"),
            on_error=lambda message: self._say(message, error=True), on_finished=self._tested)
        self._refresh()

    def _tested(self) -> None:
        self._worker = None
        self._refresh()

    # -- the node

    def node(self) -> tuple[str, int]:
        """The node's AE title and port as the fields give them; ConfigError with one line when not an AE title."""
        return check_ae_title(self.node_ae.text(), "our node's AE title"), self.node_port.value()

    def accept(self) -> None:
        try:
            ae, port = self.node()
        except BcirError as exc:
            self._say(str(exc), error=True)
            return
        self.node_changed.emit(ae, port)
        super().accept()

    def done(self, result: int) -> None:
        if self._worker is not None:  # an echo still waiting: it ends on its own (a timeout at worst)
            self._worker.cancel()
        super().done(result)


__all__ = ["PacsSettingsDialog"]
