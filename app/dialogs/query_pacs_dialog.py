"""File → Query PACS: search a named archive (model.pacs.profiles) for studies, pick several, retrieve them into our
inbox with progress and cancel; the window then opens them like any folder. The requests run off the GUI thread."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton,
    QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from model.errors import BcirError
from model.pacs.inbox import Inbox
from model.pacs.profiles import Profiles

COLUMNS = (("PatientID", "Patient ID"), ("PatientName", "Name"), ("StudyDate", "Date"), ("AccessionNumber", "Accession"),
           ("ModalitiesInStudy", "Modalities"), ("NumberOfStudyRelatedInstances", "Images"))
UID_ROLE = Qt.ItemDataRole.UserRole


class QueryPacsDialog(QDialog):
    retrieved = Signal(str)  # the inbox folder, once studies are in it

    def __init__(self, workers, inbox: str | Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Query PACS")
        self.workers = workers
        self.inbox = Inbox(inbox)
        self._worker = None
        self.archive = QComboBox()
        try:
            self.profiles = Profiles().all()
        except BcirError as exc:
            self.profiles = []
            self._problem = str(exc)
        else:
            self._problem = "" if self.profiles else ("no named archive yet: add one in File → PACS settings (or "
                                                      "bcir pacs profiles add NAME --ae AE --host HOST --port PORT)")
        for profile in self.profiles:
            self.archive.addItem(f"{profile.name} ({profile.describe()})", profile.name)
        self.patient_id, self.name, self.accession = QLineEdit(), QLineEdit(), QLineEdit()
        self.date_from, self.date_to = QLineEdit(), QLineEdit()
        for field in (self.date_from, self.date_to):
            field.setPlaceholderText("YYYYMMDD")
        self.name.setPlaceholderText("SMITH* (wildcards allowed)")
        self.search = QPushButton("Search")
        self.search.setDefault(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([title for _, title in COLUMNS])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.retrieve = QPushButton("Retrieve selected")
        self.cancel = QPushButton("Cancel")
        self.progress = QProgressBar()
        self.message = QLabel(self._problem)
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Archive", self.archive)
        form.addRow("Patient ID", self.patient_id)
        form.addRow("Patient name", self.name)
        dates = QHBoxLayout()
        dates.addWidget(self.date_from)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.date_to)
        form.addRow("Study date", dates)
        form.addRow("Accession", self.accession)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.retrieve)
        buttons.addWidget(self.cancel)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.search)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        self.search.clicked.connect(self.start_search)
        self.retrieve.clicked.connect(self.start_retrieve)
        self.cancel.clicked.connect(self.stop)
        self.table.itemSelectionChanged.connect(self._refresh)
        self.resize(900, 600)
        self._refresh()

    def _archive(self):
        name = self.archive.currentData()
        return next(p for p in self.profiles if p.name == name).archive()

    def _refresh(self) -> None:
        busy = self._worker is not None
        self.search.setEnabled(bool(self.profiles) and not busy)
        self.retrieve.setEnabled(not busy and bool(self.selected_studies()))
        self.cancel.setEnabled(busy)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setStyleSheet("color: #ff7070;" if error else "")
        self.message.setText(text)

    def selected_studies(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.table.item(r, 0).data(UID_ROLE) for r in rows]

    def start_search(self) -> None:
        if not self.profiles or self._worker is not None:
            return
        archive = self._archive()
        query = dict(patient_id=self.patient_id.text().strip(), patient_name=self.name.text().strip(),
                     date_from=self.date_from.text().strip(), date_to=self.date_to.text().strip(),
                     accession=self.accession.text().strip())
        self._say(f"Searching {archive.name}…")
        self._worker = self.workers.start(lambda report, should_stop: archive.find_studies(**query), name="pacs find",
                                          on_result=self._show_matches, on_error=self._failed,
                                          on_finished=self._finished)
        self._refresh()

    def _show_matches(self, matches) -> None:
        self.table.setRowCount(0)
        for match in matches:
            row = self.table.rowCount()
            self.table.insertRow(row)
            for column, (key, _title) in enumerate(COLUMNS):
                item = QTableWidgetItem(match.fields.get(key, ""))
                item.setData(UID_ROLE, match.study_uid)
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        self._say(f"{len(matches)} studies" if matches else "No matching studies")

    def start_retrieve(self) -> None:
        studies = self.selected_studies()
        if not studies or self._worker is not None:
            return
        archive, inbox = self._archive(), self.inbox
        self.progress.setRange(0, len(studies))
        self.progress.setValue(0)

        def task(report, should_stop):  # a cancel stops inside a study too: what arrived is kept
            stored, notes = 0, []
            for n, study in enumerate(studies, 1):
                if should_stop():
                    break
                result = archive.get_study(study, inbox, should_stop=should_stop)
                stored += len(result.stored)
                if result.skipped or result.failed:
                    notes.append(result.summary(study))
                report((n, stored))
            return stored, notes

        self._say(f"Retrieving {len(studies)} studies from {archive.name}…")
        self._worker = self.workers.start(task, name="pacs retrieve", on_progress=self._progressed,
                                          on_result=self._retrieved, on_error=self._failed,
                                          on_cancelled=lambda: self._say("Retrieval cancelled: what arrived is kept"),
                                          on_finished=self._finished)
        self._refresh()

    def _progressed(self, event) -> None:
        done, stored = event
        self.progress.setValue(done)
        self._say(f"{done} of {self.progress.maximum()} studies retrieved ({stored} new images)")

    def _retrieved(self, outcome: tuple[int, list[str]]) -> None:
        stored, notes = outcome  # notes: studies with instances left in the archive (no mammograms, failures)
        self._say("; ".join([f"Retrieved: {stored} new images in {self.inbox.root}; the worklist opens them", *notes]))
        self.retrieved.emit(str(self.inbox.root))

    def _failed(self, message: str) -> None:
        self._say(message, error=True)

    def _finished(self) -> None:
        self._worker = None
        self._refresh()

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()


__all__ = ["QueryPacsDialog"]
