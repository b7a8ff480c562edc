"""Query and retrieve from a site's archive over DIMSE (pynetdicom): C-ECHO, study-level C-FIND, C-GET into our inbox,
C-MOVE to our node, and C-STORE of our results.

An archive is named by its AE title, host and port (:class:`ArchiveProfile`); we call it as ``calling_ae`` (our
node's title: the archive must know it to answer a C-MOVE), and wait at most ``timeout_s`` for each of its answers.
Every failure is a :class:`model.errors.PacsError` with one line that names the archive and what went wrong: not
reachable, the association refused (with the AE title to check), no answer within the timeout, a SOP class it does
not accept (by name), a failure status; never a traceback.

A retrieve files each instance whole as it arrives (model.pacs.inbox), so one cut off (a cancel, a timeout, an abort)
keeps what came; a study already partly in the inbox is listed first (IMAGE-level C-FIND) and only its missing
instances are fetched. Only mammography classes are taken: a study's other instances (a CT, an SR) stay in the
archive and :meth:`Retrieved.summary` says so. Study matches carry what the archive returned; nothing of them is
logged.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import UID

from model.errors import Cancelled, ConfigError, DataError, PacsError
from model.pacs.contexts import STORAGE_CLASSES, TRANSFER_SYNTAXES, check_ae_title
from model.pacs.inbox import Inbox

PENDING = (0xFF00, 0xFF01)
STORED = (0x0000, 0xB000, 0xB007, 0xB006)  # C-STORE success, and its warnings (coerced, elements discarded)
DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 3600.0
STUDY_FIELDS = ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "AccessionNumber", "ModalitiesInStudy",
                "StudyDescription", "NumberOfStudyRelatedInstances")
_ALLOWED_TO = {"echo": "echo it", "query": "query it", "retrieve": "retrieve from it", "move": "move from it",
               "store": "store to it"}


def check_timeout(value) -> float:
    """Seconds to wait for a peer's answer: a number in (0, 3600]."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError("timeout", f"{str(value)[:20]!r} is not a number of seconds") from None
    if not 0 < seconds <= MAX_TIMEOUT_S:
        raise ConfigError("timeout", f"{seconds:g} s is not between 0 and {MAX_TIMEOUT_S:g} s")
    return seconds


def sop_class_name(uid: str) -> str:
    """A SOP class by its name ('CT Image Storage'); the UID itself for a class pydicom does not know."""
    name = UID(str(uid)).name
    return name if name and name != str(uid) else str(uid)


def is_mammography_class(uid: str) -> bool:
    """A class our inbox takes: mammograms For Presentation and For Processing, and Secondary Capture."""
    return str(uid) in STORAGE_CLASSES


@dataclass(frozen=True)
class ArchiveProfile:
    ae_title: str
    host: str
    port: int
    calling_ae: str = "BCIR"
    timeout_s: float = DEFAULT_TIMEOUT_S  # the longest wait for any one answer of the archive

    def __post_init__(self):
        check_ae_title(self.ae_title, "archive AE title")
        check_ae_title(self.calling_ae, "calling AE title")
        if not str(self.host).strip():
            raise ConfigError("host", "is empty")
        if not 0 < int(self.port) < 65536:
            raise ConfigError("port", f"{self.port} is not a TCP port (1-65535)")
        check_timeout(self.timeout_s)

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


@dataclass(frozen=True)
class Instance:
    """One instance of a study as the archive lists it."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class: str = ""  # '' where the archive did not say

    def identifier(self) -> Dataset:
        ds = Dataset()
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = self.study_uid, self.series_uid, self.sop_uid
        return ds


@dataclass(frozen=True)
class Missing:
    """Instances of one series to fetch; ``whole``: they are all the series holds."""

    series_uid: str
    instances: list[Instance]
    whole: bool


@dataclass
class Retrieved:
    stored: list[Path] = field(default_factory=list)
    repeated: int = 0  # instances already in the inbox: not written again
    failed: int = 0  # mammography instances the archive did not deliver
    warnings: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # not mammograms, left in the archive: count per class name

    def skip(self, sop_class: str) -> None:
        name = sop_class_name(sop_class)
        self.skipped[name] = self.skipped.get(name, 0) + 1

    def summary(self, study_uid: str) -> str:
        """One line: what the retrieve of ``study_uid`` brought, found already there, and left in the archive."""
        kinds = ", ".join(f"{n} {name}" for name, n in sorted(self.skipped.items()))
        if self.skipped and not (self.stored or self.repeated or self.failed):
            return f"{study_uid}: no mammograms in this study ({kinds}): nothing retrieved"
        line = f"{study_uid}: {len(self.stored)} instances retrieved"
        line += f", {self.repeated} already there" if self.repeated else ""
        line += f", {self.failed} failed" if self.failed else ""
        line += f", {sum(self.skipped.values())} not mammograms left in the archive ({kinds})" if self.skipped else ""
        return line


def missing_by_series(listed: list[Instance], inbox: Inbox, result: Retrieved) -> list[Missing]:
    """What of a listed study to fetch: per series, its mammography instances not yet in ``inbox`` (a series whose
    listed instances are all missing mammograms is fetched whole). Counts the rest in ``result``: already there
    (``repeated``), not mammograms (``skipped``)."""
    listed_per_series: dict[str, int] = {}
    wanted: dict[str, list[Instance]] = {}
    for instance in listed:
        listed_per_series[instance.series_uid] = listed_per_series.get(instance.series_uid, 0) + 1
        if instance.sop_class and not is_mammography_class(instance.sop_class):
            result.skip(instance.sop_class)
        elif inbox.path_of(instance.identifier()).is_file():
            result.repeated += 1
        else:
            wanted.setdefault(instance.series_uid, []).append(instance)
    return [Missing(series, found, len(found) == listed_per_series[series]) for series, found in wanted.items()]


def _unreachable(host: str, port: int, timeout_s: float) -> str:
    """Why a TCP connection to the archive fails ('connection refused', 'timed out', ...); '' when it opens."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=min(timeout_s, 10)):
            return ""
    except TimeoutError:
        return "timed out"
    except OSError as exc:
        return (exc.strerror or type(exc).__name__).lower()


class _Peer:
    """What the archive did on one association, as pynetdicom's events report it: its answer to the association
    request, and whether it ended the association (an A-ABORT, or the connection closed) before we aborted it. A
    request that got no answer and that the archive did not end timed out: pynetdicom aborted it."""

    def __init__(self):
        self.answer = None  # the A-ASSOCIATE response primitive
        self.ended = False  # the archive aborted, or closed the connection
        self._aborted_here = False

    def handlers(self) -> list:
        from pynetdicom import evt

        return [(evt.EVT_ACSE_RECV, self._on_acse), (evt.EVT_PDU_RECV, self._on_pdu_received),
                (evt.EVT_PDU_SENT, self._on_pdu_sent), (evt.EVT_CONN_CLOSE, self._on_close)]

    def _on_acse(self, event) -> None:
        from pynetdicom.pdu_primitives import A_ASSOCIATE

        if isinstance(event.primitive, A_ASSOCIATE):
            self.answer = event.primitive

    def _on_pdu_received(self, event) -> None:
        from pynetdicom.pdu import A_ABORT_RQ

        if isinstance(event.pdu, A_ABORT_RQ):
            self.ended = True

    def _on_pdu_sent(self, event) -> None:
        from pynetdicom.pdu import A_ABORT_RQ

        if isinstance(event.pdu, A_ABORT_RQ):
            self._aborted_here = True

    def _on_close(self, event) -> None:
        if not self._aborted_here:
            self.ended = True


class Archive:
    """Requests to one archive; each opens its own association and releases it (aborts it when stopped)."""

    def __init__(self, profile: ArchiveProfile):
        self.profile = profile
        self.name = profile.name

    # -- associations and their failures -------------------------------------------------------------------------

    def _associate(self, contexts, *, roles=(), handlers=()):
        """An established association and its :class:`_Peer`; PacsError with the reason otherwise."""
        from pynetdicom import AE

        peer = _Peer()
        ae = AE(ae_title=self.profile.calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.profile.timeout_s
        ae.connection_timeout = self.profile.timeout_s
        for context, syntaxes in contexts:
            ae.add_requested_context(context, syntaxes) if syntaxes else ae.add_requested_context(context)
        assoc = ae.associate(self.profile.host, int(self.profile.port), ae_title=self.profile.ae_title,
                             ext_neg=list(roles) or None,
                             evt_handlers=[*peer.handlers(), *handlers])
        if assoc.is_established:
            return assoc, peer
        raise self._not_associated(assoc, peer)

    def _not_associated(self, assoc, peer: _Peer) -> PacsError:
        p, name = self.profile, self.name
        answer = peer.answer
        if assoc.is_rejected and answer is not None:
            source, diagnostic = answer.result_source, answer.diagnostic
            if source == 1 and diagnostic == 7:
                return PacsError(f"the archive {name} refused the association: it does not answer to the AE title "
                                 f"{p.ae_title} (check the archive's AE title)")
            if source == 1 and diagnostic == 3:
                return PacsError(f"the archive {name} refused the association: it does not know our calling AE title "
                                 f"{p.calling_ae} (the archive must list it as a modality, or call it with one it "
                                 f"knows)")
            when = " for now" if answer.result == 2 else ""
            return PacsError(f"the archive {name} refused the association{when} ({answer.reason_str.lower()}; check "
                             f"its AE title {p.ae_title} and ours, {p.calling_ae})")
        if answer is not None and answer.result == 0 and assoc.rejected_contexts:
            return PacsError(f"the archive {name} does not accept {_classes(assoc.rejected_contexts)}")
        reason = _unreachable(p.host, int(p.port), p.timeout_s)
        if reason:
            return PacsError(f"the archive {name} cannot be reached ({reason})")
        if answer is None and not peer.ended:
            return PacsError(f"the archive {name} did not answer the association request within "
                             f"{p.timeout_s:g} s (timed out)")
        return PacsError(f"the archive {name} ended the association before answering")

    def _no_answer(self, peer: _Peer, what: str, *, received: int = 0) -> PacsError:
        """An empty response: the archive ended the association, or did not answer in time."""
        kept = f"; the {received} instances received are kept" if received else ""
        if peer.ended:
            hint = "" if received else (f" (is the calling AE title {self.profile.calling_ae} allowed to "
                                        f"{_ALLOWED_TO[what]}?)")
            return PacsError(f"the archive {self.name} aborted the association during the {what}{hint}{kept}")
        return PacsError(f"the archive {self.name} did not answer the {what} within {self.profile.timeout_s:g} s "
                         f"(timed out){kept}")

    @contextmanager
    def _session(self, assoc):
        """Release the association when done or on a PacsError (the archive answered); abort it on anything else (a
        cancel, Ctrl+C, a bug), so that a retrieve stops at once, and let an instance being filed finish first."""
        try:
            yield assoc
        except PacsError:
            assoc.release()
            raise
        except BaseException:
            assoc.abort()
            assoc.join(self.profile.timeout_s)
            raise
        assoc.release()

    # -- requests ------------------------------------------------------------------------------------------------

    def echo(self) -> None:
        """C-ECHO; PacsError with one line when it does not answer with success."""
        from pynetdicom.sop_class import Verification

        assoc, peer = self._associate([(Verification, None)])
        with self._session(assoc):
            status = assoc.send_c_echo()
            if not status:
                raise self._no_answer(peer, "echo")
            if status.Status != 0x0000:
                raise PacsError(f"the archive {self.name} did not answer the echo (status 0x{status.Status:04X})")

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
        assoc, peer = self._associate([(FIND, None)])
        with self._session(assoc):
            found = self._find(assoc, peer, query)
        return [StudyMatch({k: str(identifier.get(k, "") or "") for k in STUDY_FIELDS}) for identifier in found]

    def _find(self, assoc, peer: _Peer, query: Dataset) -> list[Dataset]:
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

        found = []
        for status, identifier in assoc.send_c_find(query, FIND):
            if not status:
                raise self._no_answer(peer, "query")
            if status.Status in PENDING:
                if identifier is not None:
                    found.append(identifier)
            elif status.Status != 0x0000:
                raise PacsError(f"the archive {self.name} failed the query (status 0x{status.Status:04X})")
        return found

    def _instances(self, assoc, peer: _Peer, study_uid: str) -> list[Instance]:
        """The study's instances as the archive lists them (IMAGE-level C-FIND, Study Root)."""
        query = Dataset()
        query.QueryRetrieveLevel = "IMAGE"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = query.SOPInstanceUID = query.SOPClassUID = ""
        return [Instance(study_uid, str(i.get("SeriesInstanceUID", "")), str(i.get("SOPInstanceUID", "")),
                         str(i.get("SOPClassUID", "") or "")) for i in self._find(assoc, peer, query)]

    def get_study(self, study_uid: str, inbox: Inbox, *, progress: Callable[[int, int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> Retrieved:
        """C-GET a study into ``inbox`` (the archive sends its instances back on this association), each instance
        filed whole as it arrives. A study already partly in the inbox is listed first and only its missing
        instances are asked for. ``should_stop`` (checked as the archive reports each instance sent) aborts the
        association and raises Cancelled; what arrived is kept. ``progress(done, total)`` counts instances."""
        from pynetdicom import build_role, evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET

        result = Retrieved()
        problems: list[str] = []  # instances that arrived but could not be filed (a full disk)

        def on_store(event) -> int:  # pynetdicom's thread: file the instance whole
            try:
                stored = inbox.store(event.dataset, event.file_meta)
            except (DataError, OSError) as exc:
                problems.append(str(exc) if isinstance(exc, DataError) else
                                f"the inbox cannot be written ({exc.strerror or exc})")
                return 0xA700 if isinstance(exc, OSError) else 0xC000
            if stored.new:
                result.stored.append(stored.path)
            else:
                result.repeated += 1
            return 0x0000

        contexts = [(FIND, None), (GET, None)] + [(c, list(TRANSFER_SYNTAXES)) for c in STORAGE_CLASSES]
        roles = [build_role(c, scp_role=True) for c in STORAGE_CLASSES]
        assoc, peer = self._associate(contexts, roles=roles, handlers=[(evt.EVT_C_STORE, on_store)])

        def stop_now() -> bool:  # asked at each of the archive's pending answers: one per instance it sent
            return should_stop is not None and should_stop()

        def check_filed() -> None:
            if problems:
                raise PacsError(f"{len(problems)} instances of study {study_uid} from {self.name} could not be "
                                f"filed: {problems[0]}; the {len(result.stored)} filed are kept")

        try:
            with self._session(assoc):
                listed = self._instances(assoc, peer, study_uid) if study_uid in inbox.studies() else None
                failure = None  # the last failure status of the requests for what is missing
                if listed is None:  # nothing of it here yet: the whole study in one request
                    final = self._run_get(assoc, peer, self._study(study_uid), result, progress, None, stop_now)
                    result.warnings += int(final.get("NumberOfWarningSuboperations", 0) or 0)
                    check_filed()
                    if final.Status in (0x0000, 0xB000) and not final.get("NumberOfFailedSuboperations"):
                        return result
                    # some did not come (an archive stops at an instance we take no class for: a CT, an SR)
                    listed = self._instances(assoc, peer, study_uid)
                    if not listed:
                        raise PacsError(f"the archive {self.name} holds no study {study_uid}")
                    counted = Retrieved()  # what the first request filed is counted already
                    missing = missing_by_series(listed, inbox, counted)
                    result.skipped = counted.skipped
                elif not listed:
                    raise PacsError(f"the archive {self.name} holds no study {study_uid}")
                else:
                    missing = missing_by_series(listed, inbox, result)
                total = len(result.stored) + result.repeated + sum(len(m.instances) for m in missing)
                for part in missing:  # per series: the series, or the list of its missing instances
                    final = self._run_get(assoc, peer, self._series(study_uid, part), result, progress, total,
                                          stop_now)
                    result.warnings += int(final.get("NumberOfWarningSuboperations", 0) or 0)
                    if final.Status not in (0x0000, 0xB000):
                        failure = final.Status
                check_filed()
                result.failed = sum(len(m.instances) for m in missing_by_series(listed, inbox, Retrieved()))
                if result.failed and failure is not None:
                    kept = f"; the {len(result.stored)} received are kept" if result.stored else ""
                    raise PacsError(f"the archive {self.name} failed the retrieve (status 0x{failure:04X}, "
                                    f"{result.failed} instances failed){kept}")
        except Cancelled:
            raise Cancelled(f"retrieve of study {study_uid} cancelled: the {len(result.stored)} instances received "
                            f"are kept") from None
        return result

    def _run_get(self, assoc, peer: _Peer, query: Dataset, result: Retrieved, progress, total, stop_now) -> Dataset:
        """One C-GET on the open association; its final status."""
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET

        before = len(result.stored) + result.repeated
        final = None
        for status, _identifier in assoc.send_c_get(query, GET):
            if stop_now():
                raise Cancelled()
            if not status:
                raise self._no_answer(peer, "retrieve", received=len(result.stored))
            remaining, done = status.get("NumberOfRemainingSuboperations"), status.get("NumberOfCompletedSuboperations")
            if progress and remaining is not None and done is not None:
                progress(before + int(done), total if total is not None else int(done) + int(remaining))
            final = status
        if final is None:
            raise PacsError(f"the archive {self.name} gave no answer to the retrieve")
        return final

    def move_study(self, study_uid: str, destination_ae: str) -> Retrieved:
        """C-MOVE a study to ``destination_ae`` (our node: the archive must know its address)."""
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MOVE

        check_ae_title(destination_ae, "destination AE title")
        result = Retrieved()
        assoc, peer = self._associate([(MOVE, None)])
        with self._session(assoc):
            final = None
            for status, _identifier in assoc.send_c_move(self._study(study_uid), destination_ae, MOVE):
                if not status:
                    raise self._no_answer(peer, "move")
                final = status
            if final is None:
                raise PacsError(f"the archive {self.name} gave no answer to the move")
            result.failed = int(final.get("NumberOfFailedSuboperations", 0) or 0)
            result.warnings = int(final.get("NumberOfWarningSuboperations", 0) or 0)
            if final.Status not in (0x0000, 0xB000):
                raise PacsError(f"the archive {self.name} failed the move (status 0x{final.Status:04X}, "
                                f"{result.failed} instances failed)")
        return result

    def send(self, paths: list[str | Path]) -> list[str]:
        """C-STORE DICOM files (our SEGs and SRs, or images) to the archive, on one association; the SOP Instance
        UIDs it stored. Every file it takes is sent; PacsError with one line when it refuses any (a SOP class it
        does not accept is named)."""
        import pydicom
        from pydicom.errors import InvalidDicomError
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

        files = []
        for path in map(Path, paths):
            try:
                files.append((path, pydicom.dcmread(path)))
            except InvalidDicomError as exc:
                raise DataError(f"{path.name}: not a DICOM file ({' '.join(str(exc).split())[:80]})") from None
        classes = sorted({str(d.SOPClassUID) for _, d in files})
        syntaxes = sorted({str(d.file_meta.TransferSyntaxUID) for _, d in files}
                          | {ExplicitVRLittleEndian, ImplicitVRLittleEndian})
        assoc, peer = self._associate([(c, syntaxes) for c in classes])
        accepted = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts}
        stored, refused = [], []
        with self._session(assoc):
            for path, dataset in files:
                sop_class = str(dataset.SOPClassUID)
                if sop_class not in accepted:
                    refused.append(f"{path.name}: it does not accept {sop_class_name(sop_class)}")
                    continue
                try:
                    status = assoc.send_c_store(dataset)
                except ValueError:  # pynetdicom: no accepted context in the file's transfer syntax
                    refused.append(f"{path.name}: it does not accept {sop_class_name(sop_class)} in "
                                   f"{dataset.file_meta.TransferSyntaxUID.name}")
                    continue
                if not status:
                    raise self._no_answer(peer, "store")
                if status.Status not in STORED:
                    refused.append(f"{path.name} (status 0x{status.Status:04X})")
                    continue
                stored.append(str(dataset.SOPInstanceUID))
        if refused:
            more = f" and {len(refused) - 1} more" if len(refused) > 1 else ""
            raise PacsError(f"the archive {self.name} did not store {refused[0]}{more} ({len(stored)} of {len(files)} "
                            f"files stored)")
        return stored

    @staticmethod
    def _study(study_uid: str) -> Dataset:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study_uid
        return query

    @staticmethod
    def _series(study_uid: str, missing: Missing) -> Dataset:
        """A C-GET identifier for what is missing of one series: the series, or the list of its missing instances."""
        query = Dataset()
        query.QueryRetrieveLevel = "SERIES" if missing.whole else "IMAGE"
        query.StudyInstanceUID = study_uid
        query.SeriesInstanceUID = missing.series_uid
        if not missing.whole:
            uids = [i.sop_uid for i in missing.instances]
            query.SOPInstanceUID = uids if len(uids) > 1 else uids[0]
        return query


def _classes(contexts) -> str:
    """The SOP classes of refused presentation contexts, by name ('CT Image Storage')."""
    names = []
    for cx in contexts:
        name = sop_class_name(cx.abstract_syntax)
        if cx.result == 0x04:  # the class is known, the transfer syntaxes offered are not
            name += " in the transfer syntaxes offered"
        if name not in names:
            names.append(name)
    return ", ".join(names)


__all__ = ["Archive", "ArchiveProfile", "DEFAULT_TIMEOUT_S", "Instance", "Missing", "Retrieved", "STUDY_FIELDS",
           "StudyMatch", "check_timeout", "is_mammography_class", "missing_by_series", "sop_class_name"]
