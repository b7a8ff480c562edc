"""The site's archives by name: a DIMSE peer (AE title, host, port, our calling AE title) or a DICOMweb base URL, kept
in ``pacs.json`` in the user data folder (atomic writes) for the command line's ``--pacs NAME`` and the app."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from model.errors import ConfigError
from model.fileio import atomic_write_json, user_data_dir
from model.pacs.archive import DEFAULT_TIMEOUT_S, Archive, ArchiveProfile

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")


@dataclass(frozen=True)
class Profile:
    name: str
    ae_title: str = ""
    host: str = ""
    port: int = 0
    calling_ae: str = "BCIR"
    dicomweb: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S  # the longest wait for any one answer (a slow archive over a WAN: more)

    def __post_init__(self):
        if not _NAME.fullmatch(self.name or ""):
            raise ConfigError("profile name", f"{str(self.name)[:40]!r} is not a name (letters, digits, . _ -)")
        if bool(self.dicomweb) == bool(self.ae_title or self.host or self.port):
            raise ConfigError("profile", f"{self.name} needs either --ae, --host and --port, or --dicomweb")
        self.archive()  # the values are checked where they are used

    def archive(self):
        """The archive this profile names, ready for requests."""
        if self.dicomweb:
            from model.pacs.dicomweb import WebArchive

            return WebArchive(self.dicomweb, timeout_s=self.timeout_s)
        return Archive(ArchiveProfile(self.ae_title, self.host, int(self.port), calling_ae=self.calling_ae,
                                      timeout_s=self.timeout_s))

    def describe(self) -> str:
        where = self.dicomweb if self.dicomweb else f"{self.ae_title}@{self.host}:{self.port} as {self.calling_ae}"
        return where if float(self.timeout_s) == DEFAULT_TIMEOUT_S else f"{where}, timeout {float(self.timeout_s):g} s"


class Profiles:
    """The named archives in ``path`` (default: pacs.json in the user data folder)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else user_data_dir() / "pacs.json"

    def all(self) -> list[Profile]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise ConfigError("pacs.json", f"cannot be read ({type(exc).__name__}): fix or remove {self.path}") from None
        try:
            return [Profile(**item) for item in data.get("archives", [])]
        except (TypeError, AttributeError) as exc:
            raise ConfigError("pacs.json", f"holds an archive that is not one ({exc})") from None

    def get(self, name: str) -> Profile:
        found = next((p for p in self.all() if p.name == name), None)
        if found is None:
            known = ", ".join(p.name for p in self.all()) or "none yet: bcir pacs profiles add"
            raise ConfigError("pacs", f"{name!r:.40} is not a named archive (known: {known})")
        return found

    def add(self, profile: Profile) -> None:
        """Add or replace the archive of that name."""
        others = [p for p in self.all() if p.name != profile.name]
        self._save([*others, profile])

    def remove(self, name: str) -> None:
        self.get(name)
        self._save([p for p in self.all() if p.name != name])

    def _save(self, profiles: list[Profile]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path, {"archives": [asdict(p) for p in sorted(profiles, key=lambda p: p.name)]})


__all__ = ["Profile", "Profiles"]
