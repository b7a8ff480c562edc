"""Our own DICOM node: a storage SCP (pynetdicom) with the site's AE title and port, receiving pushed studies into the
inbox (model.pacs.inbox: one atomic file per instance, never twice), and answering C-ECHO.

It accepts the mammography storage classes (model.pacs.contexts) with their compressed transfer syntaxes and nothing
else: an archive that offers a CT is refused at the association, not filled into a mammography worklist. Each
received instance is reported to ``on_received`` (the worklist fills as studies arrive); what it receives is logged
by count and class, never by patient.

An instance it cannot file is refused with a DICOM failure status and one log line that names the calling AE title
and the kind of fault, never a value of the instance: bytes that are no dataset (0xC210), UIDs that cannot name a
file, pixel data cut short or a dataset that cannot be encoded (0xC000), an inbox that cannot be written, such as a
full disk (0xA700: out of resources, and nothing half-written is left). The node keeps receiving after any of them.
pydicom names a value it finds invalid in its own warnings ("Invalid value for VR UI: '...'"), and what a broken
sender put in a UID may be a patient's ID: once a node has started, pydicom's log lines carry no quoted value and
those warnings are not printed (the log line says the same, without the value).
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from model.errors import ConfigError, DataError, PacsError
from model.pacs.contexts import STORAGE_CLASSES, TRANSFER_SYNTAXES, check_ae_title
from model.pacs.inbox import Inbox, Stored

log = logging.getLogger("bcir.pacs")

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700  # the disk is full or the inbox cannot be written
STATUS_CANNOT_UNDERSTAND = 0xC000  # an instance whose UIDs cannot name a file, or that cannot be encoded
STATUS_CANNOT_DECODE = 0xC210  # bytes that are not a dataset (pynetdicom's code for it)
PROBLEMS_KEPT = 100  # the latest refusals' lines a long-running node keeps


class _ValuesWithheld(logging.Filter):
    """Replaces every quoted value in a pydicom log line with "(a value)"."""

    QUOTED = re.compile(r"b?'(?:[^'\\]|\\.)*'" + r'|b?"(?:[^"\\]|\\.)*"')

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        withheld = self.QUOTED.sub("(a value)", text)
        if withheld != text:
            record.msg, record.args = withheld, None
        return True


def _withhold_values() -> None:
    """Keep what senders put in instances out of pydicom's log lines and printed warnings."""
    pydicom_log = logging.getLogger("pydicom")
    if not any(isinstance(f, _ValuesWithheld) for f in pydicom_log.filters):
        pydicom_log.addFilter(_ValuesWithheld())
    for message in (r"Invalid value for VR", r"Value \".*\" is not valid", r"Invalid value '"):
        warnings.filterwarnings("ignore", message=message, category=UserWarning)  # an identical filter is replaced


@dataclass
class NodeCounts:
    received: int = 0  # instances stored
    repeated: int = 0  # instances that were there already
    refused: int = 0  # instances that could not be filed
    # the latest refusals, one line each, without patient data
    problems: deque[str] = field(default_factory=lambda: deque(maxlen=PROBLEMS_KEPT))


class StorageNode:
    """``ae_title`` listening on ``host:port``, filing into ``inbox``. :meth:`start` returns at once (the server runs
    in its own threads); :meth:`stop` ends it. Port 0 takes a free port, which :attr:`port` holds once started."""

    def __init__(self, ae_title: str, port: int, inbox: str | Path, *, host: str = "",
                 on_received: Callable[[Stored], None] | None = None):
        from pynetdicom import AE, evt
        from pynetdicom.sop_class import Verification

        self.ae_title = check_ae_title(ae_title)
        if not 0 <= int(port) < 65536:
            raise ConfigError("port", f"{port} is not a TCP port (1-65535, or 0 for any free one)")
        self.port, self.host = int(port), host
        self.inbox = Inbox(inbox)
        self.on_received = on_received
        self.counts = NodeCounts()
        self._lock = threading.Lock()
        self._server = None
        self._ae = AE(ae_title=self.ae_title)
        self._ae.add_supported_context(Verification)
        for sop_class in STORAGE_CLASSES:
            self._ae.add_supported_context(sop_class, list(TRANSFER_SYNTAXES))
        self._handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_C_ECHO, lambda event: STATUS_SUCCESS)]

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is not None:
            return
        _withhold_values()
        try:
            self._server = self._ae.start_server((self.host, self.port), block=False, evt_handlers=self._handlers)
        except OSError as exc:
            raise PacsError(f"the DICOM node {self.ae_title} cannot listen on port {self.port}: "
                            f"{exc.strerror or exc}") from None
        self.port = int(self._server.server_address[1])
        log.info("DICOM node %s listening on port %d", self.ae_title, self.port)

    def stop(self) -> None:
        """Stop listening. An archive that keeps its association open after sending (Orthanc waits a few seconds
        for more) would hold the shutdown until it lets go: open associations are aborted first, which loses nothing
        (each instance was filed whole when it was acknowledged)."""
        server, self._server = self._server, None
        if server is None:
            return
        for assoc in list(server.active_associations):
            assoc.abort()
        server.shutdown()

    def __enter__(self) -> StorageNode:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _on_store(self, event) -> int:
        try:
            dataset = event.dataset  # element by element; a value is read when first used (a fault then: 0xC000)
        except Exception as exc:  # noqa: BLE001 - whatever the decoder raises, the sender gets a status, not a crash
            return self._refuse(event, f"the instance cannot be decoded ({type(exc).__name__})", STATUS_CANNOT_DECODE)
        try:
            stored = self.inbox.store(dataset, event.file_meta)
        except DataError as exc:
            return self._refuse(event, str(exc), STATUS_CANNOT_UNDERSTAND)
        except OSError as exc:
            return self._refuse(event, f"the inbox cannot be written ({exc.strerror or type(exc).__name__})",
                                STATUS_OUT_OF_RESOURCES)
        except MemoryError:
            return self._refuse(event, "out of memory", STATUS_OUT_OF_RESOURCES)
        with self._lock:
            if stored.new:
                self.counts.received += 1
            else:
                self.counts.repeated += 1
        if self.on_received is not None:
            try:
                self.on_received(stored)
            except Exception as exc:  # noqa: BLE001 - the instance is filed: a listener's fault must not refuse it
                log.warning("DICOM node %s: the listener of received instances failed (%s)", self.ae_title,
                            type(exc).__name__)
        return STATUS_SUCCESS

    def _refuse(self, event, line: str, status: int) -> int:
        with self._lock:
            self.counts.refused += 1
            self.counts.problems.append(line)
        try:
            caller = event.assoc.requestor.ae_title
        except AttributeError:
            caller = "?"
        log.warning("DICOM node %s refused an instance from %s (status 0x%04X): %s", self.ae_title, caller, status,
                    line)
        return status


__all__ = ["NodeCounts", "StorageNode"]
