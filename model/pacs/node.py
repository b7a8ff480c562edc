"""Our own DICOM node: a storage SCP (pynetdicom) with the site's AE title and port, receiving pushed studies into the
inbox (model.pacs.inbox: one atomic file per instance, never twice), and answering C-ECHO.

It accepts the mammography storage classes (model.pacs.contexts) with their compressed transfer syntaxes and nothing
else: an archive that offers a CT is refused at the association, not filled into a mammography worklist. Each
received instance is reported to ``on_received`` (the worklist fills as studies arrive); what it receives is logged
by count and class, never by patient.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from model.errors import ConfigError, DataError, PacsError
from model.pacs.contexts import STORAGE_CLASSES, TRANSFER_SYNTAXES, check_ae_title
from model.pacs.inbox import Inbox, Stored

log = logging.getLogger("bcir.pacs")

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700  # the disk is full or the inbox cannot be written
STATUS_CANNOT_UNDERSTAND = 0xC000  # an instance whose UIDs cannot name a file


@dataclass
class NodeCounts:
    received: int = 0  # instances stored
    repeated: int = 0  # instances that were there already
    refused: int = 0  # instances that could not be filed
    problems: list[str] = field(default_factory=list)  # one line each, without patient data


class StorageNode:
    """``ae_title`` listening on ``host:port``, filing into ``inbox``. :meth:`start` returns at once (the server runs
    in its own threads); :meth:`stop` ends it."""

    def __init__(self, ae_title: str, port: int, inbox: str | Path, *, host: str = "",
                 on_received: Callable[[Stored], None] | None = None):
        from pynetdicom import AE, evt
        from pynetdicom.sop_class import Verification

        self.ae_title = check_ae_title(ae_title)
        if not 0 < int(port) < 65536:
            raise ConfigError("port", f"{port} is not a TCP port (1-65535)")
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
        try:
            self._server = self._ae.start_server((self.host, self.port), block=False, evt_handlers=self._handlers)
        except OSError as exc:
            raise PacsError(f"the DICOM node {self.ae_title} cannot listen on port {self.port}: "
                            f"{exc.strerror or exc}") from None
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
            stored = self.inbox.store(event.dataset, event.file_meta)
        except DataError as exc:
            return self._refuse(str(exc), STATUS_CANNOT_UNDERSTAND)
        except OSError as exc:
            return self._refuse(f"the inbox cannot be written ({exc.strerror or exc})", STATUS_OUT_OF_RESOURCES)
        with self._lock:
            if stored.new:
                self.counts.received += 1
            else:
                self.counts.repeated += 1
        if self.on_received is not None:
            self.on_received(stored)
        return STATUS_SUCCESS

    def _refuse(self, line: str, status: int) -> int:
        with self._lock:
            self.counts.refused += 1
            self.counts.problems.append(line)
        log.warning("DICOM node %s refused an instance: %s", self.ae_title, line)
        return status


__all__ = ["NodeCounts", "StorageNode"]
