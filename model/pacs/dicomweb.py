"""An archive over DICOMweb (dicomweb-client): QIDO-RS study search, WADO-RS study retrieval into our inbox, STOW-RS
to store our results; the same answers as the DIMSE :class:`model.pacs.archive.Archive`, for archives that speak
the web protocols. Every failure is one :class:`model.errors.PacsError` line naming the base URL."""

from __future__ import annotations

from pathlib import Path

from model.errors import ConfigError, PacsError
from model.pacs.archive import STUDY_FIELDS, Retrieved, StudyMatch
from model.pacs.inbox import Inbox

TIMEOUT_S = 60
_FILTERS = {"patient_id": "PatientID", "patient_name": "PatientName", "accession": "AccessionNumber",
            "modality": "ModalitiesInStudy"}


class WebArchive:
    """Requests to the DICOMweb service at ``base_url`` (e.g. ``http://pacs:8042/dicom-web``)."""

    def __init__(self, base_url: str):
        url = str(base_url or "").strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError("dicomweb", f"{url[:60]!r} is not an http:// or https:// URL")
        self.url = url
        self.name = url
        from dicomweb_client.api import DICOMwebClient

        self._client = DICOMwebClient(url=url)
        self._client._session.request = _with_timeout(self._client._session.request)

    def _call(self, what: str, fn, *args, **kwargs):
        import requests

        try:
            return fn(*args, **kwargs)
        except requests.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else "?"
            raise PacsError(f"the DICOMweb service {self.name} failed the {what} (HTTP {code})") from None
        except requests.RequestException as exc:
            reason = type(exc).__name__.replace("Error", " error").lower()
            raise PacsError(f"the DICOMweb service {self.name} cannot be reached ({reason})") from None
        except (ValueError, KeyError) as exc:  # an answer that is not DICOM JSON or multipart DICOM
            raise PacsError(f"the DICOMweb service {self.name} gave an answer that is not DICOM for the {what} "
                            f"({type(exc).__name__})") from None

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

    def get_study(self, study_uid: str, inbox: Inbox, *, progress=None) -> Retrieved:
        """WADO-RS: every instance of the study into ``inbox`` (one atomic file each, never twice)."""
        result = Retrieved()
        instances = self._call("retrieve", self._client.retrieve_study, study_uid)
        for n, dataset in enumerate(instances, 1):
            stored = inbox.store(dataset)
            if stored.new:
                result.stored.append(stored.path)
            else:
                result.repeated += 1
            if progress:
                progress(n, len(instances))
        return result

    def send(self, paths: list[str | Path]) -> list[str]:
        """STOW-RS: store DICOM files; the SOP Instance UIDs stored."""
        import pydicom

        datasets = [pydicom.dcmread(p) for p in paths]
        self._call("store", self._client.store_instances, datasets)
        return [str(d.SOPInstanceUID) for d in datasets]


def _with_timeout(request):
    def call(method, url, **kwargs):
        kwargs.setdefault("timeout", TIMEOUT_S)
        return request(method, url, **kwargs)

    return call


__all__ = ["WebArchive"]
