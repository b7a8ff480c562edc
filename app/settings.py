"""The reader's settings: reader name, recent folders, drafts of unrecorded reviews, and the retrain options.

Settings live in ``user_data_dir()/settings.ini`` (QSettings, INI format), next to
the review database, so ``BCIR_DATA_DIR`` moves both together. Review drafts are
text the reader typed but has not recorded yet; they are kept in their own JSON
file, written atomically, so a crash or a power cut never loses them.

The blinded-reading protocol's state (the reading mode, the cases each reader has
seen unblinded) is kept in the review log (``model.reviews``); older versions kept
it here, and :meth:`Settings.legacy_protocol_state` hands it over once.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from PySide6.QtCore import QSettings

from model.fileio import atomic_write_json, user_data_dir

log = logging.getLogger("bcir.app")

RECENT_MAX = 10
DRAFTS_NAME = "review-drafts.json"
SEEN_NAME = "cases-seen-unblinded.json"  # older versions only: the review log holds these now


class Settings:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else user_data_dir()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._qt = QSettings(str(self.folder / "settings.ini"), QSettings.Format.IniFormat)

    # -- plain values

    @property
    def reader(self) -> str:
        return str(self._qt.value("review/reader", "") or "")

    @reader.setter
    def reader(self, name: str) -> None:
        self._qt.setValue("review/reader", name.strip())
        self._qt.sync()

    @property
    def reads_db(self) -> str:
        """The reading database this workstation uses ('': $BCIR_READS_DB, else its own SQLite file)."""
        return str(self._qt.value("reading/database", "") or "")

    @reads_db.setter
    def reads_db(self, url: str) -> None:
        self._qt.setValue("reading/database", url.strip())
        self._qt.sync()

    @property
    def reading_reader(self) -> str:
        """The code of the reader who last read at this workstation (offered first at the next start)."""
        return str(self._qt.value("reading/reader", "") or "")

    @reading_reader.setter
    def reading_reader(self, code: str) -> None:
        self._qt.setValue("reading/reader", code)
        self._qt.sync()

    @property
    def node(self) -> tuple[str, int]:
        """Our DICOM node's AE title and port (File → Receive studies)."""
        return str(self._qt.value("pacs/node_ae", "BCIR") or "BCIR"), int(self._qt.value("pacs/node_port", 11112) or 11112)

    @node.setter
    def node(self, value: tuple[str, int]) -> None:
        self._qt.setValue("pacs/node_ae", value[0])
        self._qt.setValue("pacs/node_port", int(value[1]))
        self._qt.sync()

    # -- recent folders

    def recent(self) -> list[str]:
        """The last folders opened, newest first: absolute paths, each once (an entry written relative by an
        older version cannot be placed and is left out)."""
        value = self._qt.value("open/recent", [])
        items = [value] if isinstance(value, str) else list(value or [])
        absolute = [os.path.normpath(str(p)) for p in items if p and os.path.isabs(str(p))]
        return list(dict.fromkeys(absolute))[:RECENT_MAX]

    def add_recent(self, path: str | Path) -> list[str]:
        """Remember ``path`` resolved (absolute, symlinks followed), so it opens from wherever the app starts."""
        resolved = str(Path(path).expanduser().resolve())
        items = [resolved, *(p for p in self.recent() if p != resolved)][:RECENT_MAX]
        self._qt.setValue("open/recent", items)
        self._qt.sync()
        return items

    def clear_recent(self) -> None:
        self._qt.setValue("open/recent", [])
        self._qt.sync()

    # -- drafts: {patient id: {"birads": ..., "comment": ...}}

    def load_drafts(self) -> dict[str, dict]:
        path = self.folder / DRAFTS_NAME
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("review drafts unreadable, starting without them: %s", type(exc).__name__)
            return {}
        return {str(k): v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}

    def save_drafts(self, drafts: dict[str, dict]) -> None:
        atomic_write_json(self.folder / DRAFTS_NAME, drafts, sort_keys=True, ensure_ascii=False)

    # -- what older versions kept here and the review log keeps now

    def legacy_protocol_state(self) -> tuple[bool | None, set[tuple[str, str]]]:
        """The blinded-reading mode (None when never set) and the (reader, patient ID) pairs seen unblinded that
        an older version kept in these settings, for the review log to take over."""
        value = self._qt.value("review/blinded")
        blinded = None if value is None else str(value).lower() == "true"
        seen: set[tuple[str, str]] = set()
        path = self.folder / SEEN_NAME
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                log.warning("list of cases seen unblinded unreadable, starting without it: %s", type(exc).__name__)
                data = []
            for key in data if isinstance(data, list) else []:
                reader, _, patient_id = str(key).rpartition("\t")  # written as "reader<TAB>patient ID"
                if patient_id:
                    seen.add((reader, patient_id))
        return blinded, seen

    def forget_legacy_protocol_state(self) -> None:
        """Once the review log holds them: the mode and the list of cases seen unblinded are not kept here."""
        self._qt.remove("review/blinded")
        self._qt.sync()
        (self.folder / SEEN_NAME).unlink(missing_ok=True)

    # -- the Retrain dialog's options, as last used: {TrainConfig field or dialog option: value}

    def retrain_options(self) -> dict:
        """The options of the last retrain started from the dialog; {} when none or unreadable."""
        try:
            data = json.loads(str(self._qt.value("retrain/options", "") or "{}"))
        except ValueError:
            log.warning("retrain options unreadable, starting from the paper's defaults")
            return {}
        return data if isinstance(data, dict) else {}

    def save_retrain_options(self, options: dict) -> None:
        self._qt.setValue("retrain/options", json.dumps(options, sort_keys=True))
        self._qt.sync()
