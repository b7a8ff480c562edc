"""Query and retrieve from a site's archive over DIMSE (pynetdicom): C-ECHO, study-level C-FIND, C-GET into our inbox,
and C-MOVE to our node.

An archive is named by its AE title, host and port (:class:`ArchiveProfile`); we call it as ``calling_ae`` (our
node's title: the archive must know it to answer a C-MOVE). Every failure is a :class:`model.errors.PacsError`
with one line that names the archive and what went wrong: not reachable, association refused or aborted, a
failure status; never a traceback. Study matches carry what the archive returned; nothing of them is logged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from model.errors import ConfigError, PacsError
from model.pacs.contexts import STORAGE_CLASSES, TRANSFER_SYNTAXES, check_ae_title
from model.pacs.inbox import Inbox

PENDING = (0xFF00, 0xFF01)
TIMEOUT_S = 30
STUDY_FIELDS = ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "AccessionNumber", "ModalitiesInStudy",
                "StudyDescription", "NumberOfStudyRelatedInstances")


@dataclass(frozen=True)
class ArchiveProfile:
    ae_title: str
    host: str
    port: int
    calling_ae: str = "BCIR"

    def __post_init__(self):
        check_ae_title(self.ae_title, "archive AE title")
        check_ae_title(self.calling_ae, "calling AE title")
        if not str(self.host).strip():
            raise ConfigError("host", "is empty")
        if not 0 < int(self.port) < 65536:
            raise ConfigError("port", f"{self.port} is not a TCP port (1-65535)")

    @property
    def name(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class StudyMatch:
    """One study as the archive described it (the fields of :data:`STUDY_FIELDS` it returned; absent: '')."""

    fields: dict[str, str]

    @property
    def study_uid(self) -> str:
        return self.fields.get("StudyInstanceUID", "")

    def to_json(self) -> dict:
        return dict(self.fields)


@dataclass
class Retrieved:
    stored: list[Path] = field(default_factory=list)
    repeated: int = 0
    failed: int = 0  # sub-operations the archive reported failed
    warnings: int = 0


def _unreachable(host: str, port: int) -> str:
    """Why a TCP connection to the archive fails ('connection refused', 'timed out', ...); '' when it opens."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=5):
            return ""
    except OSError as exc:
        return (exc.strerror or type(exc).__name__).lower()


class Archive:
    """Requests to one archive; each opens its own association and releases it."""

    def __init__(self, profile: ArchiveProfile):
        self.profile = profile
        self.name = profile.name

    def _associate(self, contexts, *, roles=(), handlers=()):
        from pynetdicom import AE

        ae = AE(ae_title=self.profile.calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_S
        ae.connection_timeout = 10
        for context, syntaxes in contexts:
            ae.add_requested_context(context, syntaxes) if syntaxes else ae.add_requested_context(context)
        assoc = ae.associate(self.profile.host, int(self.profile.port), ae_title=self.profile.ae_title,
                             ext_neg=list(roles) or None, evt_handlers=list(handlers) or None)
        if assoc.is_established:
            return assoc
        if assoc.is_rejected:
            raise PacsError(f"the archive {self.profile.name} refused the association (does it know the calling AE "
                            f"title {self.profile.calling_ae}?)")
        reason = _unreachable(self.profile.host, int(self.profile.port))
        if reason:
            raise PacsError(f"the archive {self.profile.name} cannot be reached ({reason})")
        raise PacsError(f"the archive {self.profile.name} ended the association before answering")

    def echo(self) -> None:
        """C-ECHO; PacsError with one line when it does not answer with success."""
        from pynetdicom.sop_class import Verification

        assoc = self._associate([(Verification, None)])
        try:
            status = assoc.send_c_echo()
        finally:
            assoc.release()
        if not status or status.Status != 0x0000:
            raise PacsError(f"the archive {self.profile.name} did not answer the echo"
                            + (f" (status 0x{status.Status:04X})" if status else ""))

    def find_studies(self, *, patient_id: str = "", patient_name: str = "", date_from: str = "", date_to: str = "",
                     accession: str = "", modality: str = "MG") -> list[StudyMatch]:
        """Study-level C-FIND (Study Root). Dates YYYYMMDD; a name may hold * wildcards. The archive's matches."""
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        for keyword in STUDY_FIELDS:
            setattr(query, keyword, "")
        query.PatientID, query.PatientName, query.AccessionNumber = patient_id, patient_name, accession
        query.ModalitiesInStudy = modality
        if date_from or date_to:
            query.StudyDate = f"{date_from}-{date_to}"
        assoc = self._associate([(FIND, None)])
        matches: list[StudyMatch] = []
        try:
            for status, identifier in assoc.send_c_find(query, FIND):
                if not status:
                    raise PacsError(f"the archive {self.profile.name} stopped answering the query")
                if status.Status in PENDING and identifier is not None:
                    matches.append(StudyMatch({k: str(identifier.get(k, "") or "") for k in STUDY_FIELDS}))
                elif status.Status not in PENDING and status.Status != 0x0000:
                    raise PacsError(f"the archive {self.profile.name} failed the query (status 0x{status.Status:04X})")
        finally:
            assoc.release()
        return matches

    def get_study(self, study_uid: str, inbox: Inbox, *,
                  progress: Callable[[int, int], None] | None = None) -> Retrieved:
        """C-GET a study into ``inbox`` (the archive sends its instances back on this association)."""
        from pynetdicom import build_role, evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET

        result = Retrieved()

        def on_store(event) -> int:
            stored = inbox.store(event.dataset, event.file_meta)
            if stored.new:
                result.stored.append(stored.path)
            else:
                result.repeated += 1
            return 0x0000

        contexts = [(GET, None)] + [(c, list(TRANSFER_SYNTAXES)) for c in STORAGE_CLASSES]
        roles = [build_role(c, scp_role=True) for c in STORAGE_CLASSES]
        assoc = self._associate(contexts, roles=roles, handlers=[(evt.EVT_C_STORE, on_store)])
        try:
            self._retrieve(assoc.send_c_get(self._study(study_uid), GET), result, progress, "retrieve")
        finally:
            assoc.release()
        return result

    def move_study(self, study_uid: str, destination_ae: str) -> Retrieved:
        """C-MOVE a study to ``destination_ae`` (our node: the archive must know its address)."""
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MOVE

        check_ae_title(destination_ae, "destination AE title")
        result = Retrieved()
        assoc = self._associate([(MOVE, None)])
        try:
            self._retrieve(assoc.send_c_move(self._study(study_uid), destination_ae, MOVE), result, None, "move")
        finally:
            assoc.release()
        return result

    def send(self, paths: list[str | Path]) -> list[str]:
        """C-STORE DICOM files (our SEGs and SRs, or images) to the archive, on one association; the SOP Instance
        UIDs it stored. PacsError with one line when it refuses one."""
        import pydicom
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

        datasets = [pydicom.dcmread(p) for p in paths]
        classes = sorted({str(d.SOPClassUID) for d in datasets})
        syntaxes = sorted({str(d.file_meta.TransferSyntaxUID) for d in datasets}
                          | {ExplicitVRLittleEndian, ImplicitVRLittleEndian})
        assoc = self._associate([(c, syntaxes) for c in classes])
        stored = []
        try:
            for path, dataset in zip(paths, datasets):
                status = assoc.send_c_store(dataset)
                if not status or status.Status not in (0x0000, 0xB000, 0xB007, 0xB006):
                    code = f"status 0x{status.Status:04X}" if status else "no answer"
                    raise PacsError(f"the archive {self.profile.name} did not store {Path(path).name} ({code})")
                stored.append(str(dataset.SOPInstanceUID))
        finally:
            assoc.release()
        return stored

    @staticmethod
    def _study(study_uid: str) -> Dataset:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study_uid
        return query

    def _retrieve(self, responses, result: Retrieved, progress, what: str) -> None:
        final = None
        for status, _identifier in responses:
            if not status:
                raise PacsError(f"the archive {self.profile.name} stopped answering the {what}")
            remaining, done = status.get("NumberOfRemainingSuboperations"), status.get("NumberOfCompletedSuboperations")
            if progress and remaining is not None and done is not None:
                progress(int(done), int(done) + int(remaining))
            final = status
        if final is None:
            raise PacsError(f"the archive {self.profile.name} gave no answer to the {what}")
        result.failed = int(final.get("NumberOfFailedSuboperations", 0) or 0)
        result.warnings = int(final.get("NumberOfWarningSuboperations", 0) or 0)
        if final.Status not in (0x0000, 0xB000):
            raise PacsError(f"the archive {self.profile.name} failed the {what} (status 0x{final.Status:04X}, "
                            f"{result.failed} instances failed)")


__all__ = ["Archive", "ArchiveProfile", "Retrieved", "STUDY_FIELDS", "StudyMatch"]
