"""An archive over DICOMweb (dicomweb-client): QIDO-RS study search, WADO-RS study retrieval into our inbox, STOW-RS
to store our results; the same answers as the DIMSE :class:`model.pacs.archive.Archive`, for archives that speak
the web protocols. Every failure is one :class:`model.errors.PacsError` line naming the base URL: not reachable, no
answer within ``timeout_s``, an HTTP status, an answer that is not DICOM.

A retrieve lists the study's instances first (QIDO-RS) and fetches, series by series, only the mammograms that are
not in the inbox yet, filing each whole as it arrives: one cut off keeps what came, and a repeat fetches the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from model.errors import Cancelled, ConfigError, PacsError
from model.pacs.archive import (
    DEFAULT_TIMEOUT_S, STUDY_FIELDS, Instance, Retrieved, StudyMatch, check_timeout, is_mammography_class,
    missing_by_series,
)
from model.pacs.inbox import Inbox

TIMEOUT_S = DEFAULT_TIMEOUT_S
_FILTERS = {"patient_id": "PatientID", "patient_name": "PatientName", "accession": "AccessionNumber",
            "modality": "ModalitiesInStudy"}
_INSTANCE_FIELDS = ["SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"]


class WebArchive:
    """Requests to the DICOMweb service at ``base_url`` (e.g. ``http://pacs:8042/dicom-web``)."""

    def __init__(self, base_url: str, *, timeout_s: float = TIMEOUT_S):
        url = str(base_url or "").strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError("dicomweb", f"{url[:60]!r} is not an http:// or https:// URL")
        self.url = url
        self.name = url
        self.timeout_s = check_timeout(timeout_s)
        from dicomweb_client.api import DICOMwebClient

        self._client = DICOMwebClient(url=url, timeout=self.timeout_s)
        # no retries: dicomweb-client would retry a request that timed out four more times, with back-off (over two
        # minutes for a 20 s timeout); a request ends within the timeout, and a failure is one line
        self._client.set_http_retry_params(retry=False)

    @contextmanager
    def _answers(self, what: str, received: Callable[[], int] = lambda: 0):
        """Turn what requests and dicomweb-client raise into one PacsError line; ``received()`` instances are kept."""
        import requests

        def kept() -> str:
            n = received()
            return f"; the {n} instances received are kept" if n else ""

        try:
            yield
        except requests.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else "?"
            raise PacsError(f"the DICOMweb service {self.name} failed the {what} (HTTP {code}){kept()}") from None
        except requests.ConnectTimeout:
            raise PacsError(f"the DICOMweb service {self.name} cannot be reached (connection timed out)") from None
        except requests.RequestException as exc:
            if isinstance(exc, requests.Timeout) or "timed out" in str(exc).lower():  # a read timed out mid-stream
                raise PacsError(f"the DICOMweb service {self.name} did not answer the {what} within "
                                f"{self.timeout_s:g} s (timed out){kept()}") from None
            reason = type(exc).__name__.replace("Error", " error").lower()
            raise PacsError(f"the DICOMweb service {self.name} cannot be reached ({reason}){kept()}") from None
        except (ValueError, KeyError) as exc:  # an answer that is not DICOM JSON or multipart DICOM
            raise PacsError(f"the DICOMweb service {self.name} gave an answer that is not DICOM for the {what} "
                            f"({type(exc).__name__}){kept()}") from None

    def _call(self, what: str, fn, *args, **kwargs):
        with self._answers(what):
            return fn(*args, **kwargs)

    def echo(self) -> None:
        """A QIDO-RS search for one study: the service answers, or PacsError."""
        self._call("search", self._client.search_for_studies, limit=1)

    def find_studies(self, *, patient_id: str = "", patient_name: str = "", date_from: str = "", date_to: str = "",
                     accession: str = "", modality: str = "MG") -> list[StudyMatch]:
        """QIDO-RS study search with the DIMSE find's filters."""
        import pydicom

        values = {"patient_id": patient_id, "patient_name": patient_name, "accession": accession, "modality": modality}
        filters = {_FILTERS[k]: v for k, v in values.items() if v}
        if date_from or date_to:
            filters["StudyDate"] = f"{date_from}-{date_to}"
        found = self._call("search", self._client.search_for_studies, search_filters=filters,
                           fields=list(STUDY_FIELDS))
        matches = []
        for item in found:
            dataset = pydicom.Dataset.from_json(item)
            matches.append(StudyMatch({k: str(dataset.get(k, "") or "") for k in STUDY_FIELDS}))
        return matches

    def instances(self, study_uid: str) -> list[Instance]:
        """QIDO-RS: the study's instances (series, SOP instance and class UIDs)."""
        import pydicom

        found = self._call("retrieve", self._client.search_for_instances, study_instance_uid=study_uid,
                           fields=_INSTANCE_FIELDS, get_remaining=True)
        listed = []
        for item in found:
            ds = pydicom.Dataset.from_json(item)
            listed.append(Instance(study_uid, str(ds.get("SeriesInstanceUID", "")), str(ds.get("SOPInstanceUID", "")),
                                   str(ds.get("SOPClassUID", "") or "")))
        return listed

    def get_study(self, study_uid: str, inbox: Inbox, *, progress: Callable[[int, int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> Retrieved:
        """WADO-RS: the study's mammograms that are not in ``inbox`` yet (one atomic file each, never twice), a whole
        series at a time where none of it is there, else instance by instance. ``should_stop`` (checked as each
        instance arrives) raises Cancelled; what arrived is kept."""
        result = Retrieved()
        listed = self.instances(study_uid)
        if not listed:
            raise PacsError(f"the DICOMweb service {self.name} holds no study {study_uid}")
        missing = missing_by_series(listed, inbox, result)
        total = sum(len(m.instances) for m in missing)
        done = 0

        def file(dataset) -> None:
            nonlocal done
            done += 1
            if not is_mammography_class(str(dataset.get("SOPClassUID", ""))):  # a class QIDO did not tell
                result.skip(str(dataset.get("SOPClassUID", "")))
            else:
                stored = inbox.store(dataset)
                if stored.new:
                    result.stored.append(stored.path)
                else:
                    result.repeated += 1
            if progress:
                progress(done, total)
            if should_stop is not None and should_stop():
                raise Cancelled(f"retrieve of study {study_uid} cancelled: the {len(result.stored)} instances "
                                f"received are kept")

        with self._answers("retrieve", lambda: len(result.stored)):
            for part in missing:
                if part.whole:
                    series = self._client.iter_series(study_uid, part.series_uid)
                    try:
                        for dataset in series:
                            file(dataset)
                    finally:
                        series.close()
                else:
                    for instance in part.instances:
                        file(self._client.retrieve_instance(study_uid, part.series_uid, instance.sop_uid))
        return result

    def send(self, paths: list[str | Path]) -> list[str]:
        """STOW-RS: store DICOM files; the SOP Instance UIDs stored."""
        import pydicom

        datasets = [pydicom.dcmread(p) for p in paths]
        self._call("store", self._client.store_instances, datasets)
        return [str(d.SOPInstanceUID) for d in datasets]


__all__ = ["WebArchive"]
