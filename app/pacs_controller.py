"""The PACS in the window: our DICOM node's toggle and status (File → Receive studies), File → Query PACS, and the
worklist filling as studies arrive. The node and the requests are model.pacs's; this only starts them and shows
what they say."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QLabel

from model.errors import BcirError
from model.pacs.inbox import default_inbox
from model.pacs.node import StorageNode

from app.dialogs.pacs_settings_dialog import PacsSettingsDialog
from app.dialogs.query_pacs_dialog import QueryPacsDialog
from app.viewer.hanging import cc_row

if TYPE_CHECKING:
    from app.main_window import MainWindow

REINDEX_MS = 2_000  # studies arrive an instance at a time: the worklist is read again once they pause


class PacsController(QObject):
    received = Signal()  # from the node's threads: delivered queued, in the GUI thread
    sent = Signal(int)  # result objects an archive stored

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.node: StorageNode | None = None
        self.query_dialog: QueryPacsDialog | None = None
        self.settings_dialog: PacsSettingsDialog | None = None
        self.label = QLabel()
        self.label.setObjectName("dicomNode")
        self.label.hide()
        self.reindex = QTimer(self)
        self.reindex.setSingleShot(True)
        self.reindex.setInterval(REINDEX_MS)
        self.reindex.timeout.connect(self._show_arrivals)
        self.received.connect(self._on_received)

    @property
    def inbox(self) -> str:
        return str(default_inbox())

    def set_node(self, on: bool) -> bool:
        """Start or stop our DICOM node (the site's AE title and port from the settings); False when it cannot
        start (one line says why)."""
        if not on:
            if self.node is not None:
                self.node.stop()
                self.node = None
            self.label.hide()
            return True
        if self.node is not None:
            return True
        ae, port = self.window.settings.node
        try:
            node = StorageNode(ae, port, self.inbox, on_received=lambda _stored: self.received.emit())
            node.start()
        except BcirError as exc:
            self.window.errors.show(str(exc), context="The DICOM node cannot start")
            return False
        self.node = node
        self._show_status()
        self.label.show()
        return True

    def toggle_node(self, on: bool) -> None:
        """File → Receive studies: the toggle goes back off when the node cannot start."""
        if not self.set_node(on) and on:
            self.window.actions.node.setChecked(False)

    def _show_status(self) -> None:
        node = self.node
        if node is None:
            return
        counts = node.counts
        self.label.setText(f"Node {node.ae_title}:{node.port} · {counts.received} received"
                           + (f", {counts.refused} refused" if counts.refused else ""))
        self.label.setToolTip(f"Receiving into {node.inbox.root}" + (f"; last refusal: {counts.problems[-1]}"
                                                                     if counts.problems else ""))

    def _on_received(self) -> None:
        self._show_status()
        self.reindex.start()

    def _show_arrivals(self) -> None:
        """Studies arrived: the worklist shows the inbox again (opened if it is not the folder on screen)."""
        self.window.open_path(self.inbox)

    def ask_query(self) -> QueryPacsDialog:
        self.query_dialog = QueryPacsDialog(self.window.workers, self.inbox, self.window)
        self.query_dialog.retrieved.connect(self.window.open_path)
        self.query_dialog.show()
        return self.query_dialog

    def ask_settings(self) -> PacsSettingsDialog:
        """File → PACS settings: the node's AE title and port, and the named archives."""
        self.settings_dialog = PacsSettingsDialog(self.window.workers, self.window.settings.node, parent=self.window)
        self.settings_dialog.node_changed.connect(self.set_node_address)
        self.settings_dialog.show()
        return self.settings_dialog

    def set_node_address(self, ae_title: str, port: int) -> None:
        """Keep the node's new AE title and port; a running node starts again under them."""
        if (ae_title, port) == tuple(self.window.settings.node):
            return
        self.window.settings.node = (ae_title, port)
        if self.node is not None:
            self.set_node(False)
            self.toggle_node(True)

    def _archive_named(self, name: str | None, context: str):
        """The named archive ``name`` (None: the first one), or None after one line says there is none."""
        from model.pacs.profiles import Profiles

        try:  # Profiles.get names the archives it knows when ``name`` is not one of them
            profile = Profiles().get(name) if name else next(iter(Profiles().all()), None)
        except BcirError as exc:
            self.window.errors.show(str(exc), context=context)
            return None
        if profile is None:
            self.window.errors.show("no named archive: add one in File → PACS settings", context=context)
        return profile

    def _send(self, profile, write, what: str, none_line: str):
        """Write result objects into a temporary folder (``write(folder)`` -> their paths) and send them to
        ``profile``'s archive, off the GUI thread; the worker."""
        import tempfile

        w = self.window

        def task(report, should_stop):
            with tempfile.TemporaryDirectory(prefix="bcir-results-") as folder:
                paths = write(folder)
                return len(profile.archive().send(paths)) if paths else 0

        def done(count: int) -> None:
            w.statusBar().showMessage(f"{count} {what} sent to {profile.name}" if count else none_line, 20_000)
            self.sent.emit(count)

        return w.workers.start(task, name=f"send {what}", on_result=done,
                               on_error=lambda message: w.errors.show(message, context=f"{what.capitalize()} not sent"))

    def send_results(self, profile_name: str | None = None):
        """File → Send results to PACS: the AI's SEG and SR of the case on screen's CC views, written and sent to a
        named archive off the GUI thread; the worker, or None (one line says why)."""
        from model.pacs.results import write_results

        w = self.window
        profile = self._archive_named(profile_name, "Results not sent")
        if profile is None:
            return None
        shown = [w.ai.cached(i.path) for i in cc_row(w.worklist.patients.get(w.viewer.patient_id or "", []))]
        results = [ai for ai in shown if ai is not None and not ai.is_roi]
        if not results:
            w.errors.show("the AI has no result on this case's CC views yet", context="Results not sent")
            return None
        model_name = w.ai.predictor.model.card.name if w.ai.predictor is not None else "B-Cir U-Net"
        return self._send(profile, lambda folder: [
            o.path for ai in results
            for o in write_results(ai.indexed.path, ai.result, ai.threshold, folder, model_name=model_name)],
            "result objects (SEG and SR)", "No lesion is listed on this case: nothing to send")

    def send_read(self, profile_name: str | None = None):
        """Reading → Send my read to PACS: the reader's committed read of the case on screen as SRs (one per study
        of the case), sent to a named archive off the GUI thread; the worker, or None (one line says why)."""
        from model.pacs.read_report import write_read_reports
        from model.reading.transfer import case_images

        w = self.window
        control = w.reading_control
        opened = control.session.opened if control.session is not None else None
        if opened is None or opened.own is None:
            w.errors.show("commit your read of this case first (Reading → Commit my read)", context="Read not sent")
            return None
        profile = self._archive_named(profile_name, "Read not sent")
        if profile is None:
            return None
        read, name = opened.own, control.names.get(opened.own.reader, opened.own.reader)
        images = case_images(w.index, opened.case_id) if w.index is not None else {}
        return self._send(profile, lambda folder: [o.path for o in write_read_reports(read, name, images, folder)],
                          "reports of your read (SR)", "Your read was not sent")

    def close(self) -> None:
        self.reindex.stop()
        self.set_node(False)


__all__ = ["PacsController"]
