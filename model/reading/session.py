"""One reader's reading session at a workstation: the read being written (a draft kept on this workstation until it
is committed), committing, parking, "normal both breasts", arbitration, and what the reader may see; the GUI only
shows it and passes the reader's input in.

A draft is saved atomically in this workstation's data folder (``read-drafts/READER/``) whenever the reader parks a
case, and whenever a commit fails because the database cannot be reached or fails: nothing the reader wrote is lost,
and the draft comes back when the case is opened again. A refused read (a field, the protocol) is not a lost read:
the reader sees why and changes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from model.errors import ReadRefused, ReadStoreError
from model.fileio import atomic_write_json, user_data_dir
from model.reading.db import now
from model.reading.reads import Arbitration, BreastRead, Finding, Mark, Read
from model.reading.store import OpenedCase, ReadStore
from model.reading.vocab import SIDES

DRAFT_FORMAT = "bcir-read-draft/1"


@dataclass
class BreastDraft:
    """One breast of the read being written; ``score`` None until the reader chooses one."""

    outcome: str = "routine"
    score: str | None = None
    density: str | None = None
    technical_view: str | None = None
    technical_reason: str | None = None


@dataclass
class ReadDraft:
    """The read being written: plain values the form edits, checked only when it becomes a :class:`Read`."""

    case_id: str
    reader: str
    opened_at: str
    breasts: dict[str, BreastDraft] = field(default_factory=lambda: {side: BreastDraft() for side in SIDES})
    findings: list[tuple[str, Finding]] = field(default_factory=list)  # (side, finding)
    ai_shown: bool = False
    ai_model_version: str | None = None
    ai_scores: dict[str, float] = field(default_factory=dict)
    replaces: str | None = None
    note: str = ""

    def to_read(self, scale: str) -> Read:
        """The committed form of the draft; ReadRefused with one line when a field is missing or wrong."""
        breasts = []
        for side in SIDES:
            b = self.breasts[side]
            if b.score is None:
                raise ReadRefused(f"breast {side}: choose a score first")
            findings = tuple(f for s, f in self.findings if s == side)
            breasts.append(BreastRead(side, b.outcome, b.score, scale, b.density, findings,
                                      b.technical_view if b.outcome == "technical" else None,
                                      b.technical_reason if b.outcome == "technical" else None))
        return Read(self.case_id, self.reader, tuple(breasts), self.opened_at, None,
                    ai_model_version=self.ai_model_version if self.ai_shown else None,
                    ai_scores=dict(self.ai_scores) if self.ai_shown else {}, ai_shown=self.ai_shown,
                    replaces=self.replaces, note=self.note)

    def to_json(self) -> dict:
        return {"format": DRAFT_FORMAT, "case_id": self.case_id, "reader": self.reader, "opened_at": self.opened_at,
                "breasts": {s: vars(b) for s, b in self.breasts.items()},
                "findings": [[s, f.to_json()] for s, f in self.findings], "ai_shown": self.ai_shown,
                "ai_model_version": self.ai_model_version, "ai_scores": self.ai_scores, "replaces": self.replaces,
                "note": self.note}

    @classmethod
    def from_json(cls, data: dict) -> ReadDraft:
        if not isinstance(data, dict) or data.get("format") != DRAFT_FORMAT:
            raise ReadRefused("not a read draft of this version")
        try:
            return cls(data["case_id"], data["reader"], data["opened_at"],
                       {s: BreastDraft(**data["breasts"][s]) for s in SIDES},
                       [(s, Finding.from_json(f)) for s, f in data["findings"]], bool(data["ai_shown"]),
                       data["ai_model_version"], dict(data["ai_scores"]), data["replaces"], str(data["note"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ReadRefused(f"a damaged read draft ({type(exc).__name__})") from None


class Drafts:
    """This workstation's unsaved reads of one reader, one atomic JSON file per case."""

    def __init__(self, reader: str, folder: Path | None = None):
        self.folder = Path(folder) if folder else user_data_dir() / "read-drafts" / reader

    def _path(self, case_id: str) -> Path:
        # the case id may hold any character: the file is named by its hash
        return self.folder / (hashlib.sha256(case_id.encode("utf-8")).hexdigest()[:24] + ".json")

    def save(self, draft: ReadDraft) -> Path:
        path = self._path(draft.case_id)
        atomic_write_json(path, draft.to_json())
        return path

    def load(self, case_id: str) -> ReadDraft | None:
        path = self._path(case_id)
        try:
            return ReadDraft.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, ReadRefused):
            return None  # a damaged draft is not a read: the case opens empty, the file stays for a person to see

    def discard(self, case_id: str) -> None:
        self._path(case_id).unlink(missing_ok=True)

    def cases(self) -> list[str]:
        out = []
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                out.append(ReadDraft.from_json(json.loads(path.read_text(encoding="utf-8"))).case_id)
            except (OSError, ValueError, ReadRefused):
                continue
        return out


@dataclass
class CommitOutcome:
    read: Read | None  # the committed read; None when it was not committed
    problem: str = ""  # one line: why not
    kept_as_draft: bool = False  # the database failed: the read waits on this workstation


class ReadingSession:
    """``reader`` reading at this workstation against ``store``."""

    def __init__(self, store: ReadStore, reader: str, *, login: str | None = None, drafts_folder: Path | None = None):
        """``login``: the workstation's logged-in user; where the site ties readers to logins, only its own
        readers may read here (ReadRefused otherwise)."""
        if reader not in {r.code for r in store.readers()}:
            from model.reading.store import not_a_reader

            raise not_a_reader(reader)
        if login is not None and reader not in {r.code for r in store.readers_for_login(login)}:
            raise ReadRefused(f"reader {reader} is tied to another login than {login!r:.40}: read under your own "
                              "name")
        self.store, self.reader = store, reader
        self.scale = store.scale()
        self.drafts = Drafts(reader, drafts_folder)
        self.opened: OpenedCase | None = None
        self.draft: ReadDraft | None = None

    # -- opening and leaving a case -------------------------------------------------------------------------------

    def open(self, case_id: str) -> OpenedCase:
        """Open a case: the store records it; a draft saved on this workstation comes back."""
        self.opened = self.store.open_case(case_id, self.reader)
        saved = self.drafts.load(case_id)
        if self.opened.own is not None or self.opened.role not in ("first", "second"):
            self.draft = None  # read already (the reader may change it: :meth:`change`), or not theirs to read
        elif saved is not None and saved.reader == self.reader:
            self.draft = saved
        else:
            self.draft = ReadDraft(case_id, self.reader, self.opened.opened_at)
        return self.opened

    def change(self) -> ReadDraft:
        """Start a changed read of the reader's own committed one: it replaces it, and both are kept."""
        own = self._require_open().own
        if own is None:
            raise ReadRefused("there is no committed read of yours on this case to change")
        draft = ReadDraft(own.case_id, self.reader, now(), replaces=own.read_id,
                          ai_shown=own.ai_shown or (self.opened.ai_visible if self.opened else False))
        for b in own.breasts:
            draft.breasts[b.side] = BreastDraft(b.outcome, b.score, b.density, b.technical_view, b.technical_reason)
            draft.findings += [(b.side, f) for f in b.findings]
        self.draft = draft
        return draft

    def park(self) -> Path | None:
        """Leave the case without committing: the draft stays on this workstation, and the store logs it."""
        if self.draft is None:
            return None
        path = self.drafts.save(self.draft)
        try:
            self.store.log_event(self.draft.case_id, self.reader, "parked")
        except ReadStoreError:
            pass  # the draft is safe here; the log line waits for a database that answers
        return path

    def leave_reading(self) -> None:
        """The reader leaves reading mode (after confirming): logged in the store, the draft kept."""
        self.park()
        self.store.log_event(self.opened.case_id if self.opened else None, self.reader, "left-reading")

    def _require_open(self) -> OpenedCase:
        if self.opened is None:
            raise ReadRefused("open a case first")
        return self.opened

    # -- writing -----------------------------------------------------------------------------------------------------

    def set_breast(self, side: str, **values) -> BreastDraft:
        draft = self._require_draft()
        breast = replace(draft.breasts[side], **values)
        draft.breasts[side] = breast
        return breast

    def add_finding(self, side: str, finding: Finding) -> None:
        self._require_draft().findings.append((side, finding))

    def remove_finding(self, number: int) -> None:
        del self._require_draft().findings[number]

    def add_mark(self, number: int, mark: Mark) -> Finding:
        """Add a mark to finding ``number``; its view joins the finding's views."""
        draft = self._require_draft()
        side, finding = draft.findings[number]
        views = finding.views if mark.view in finding.views else (*finding.views, mark.view)
        updated = replace(finding, views=views, marks=(*finding.marks, mark))
        draft.findings[number] = (side, updated)
        return updated

    def locate_findings(self, landmarks_by_image: dict, spacing_by_image: dict[str, float | None]) -> None:
        """Fill each finding's clock hour, depth, distance from the nipple and size from its marks and the images'
        geometry (model.reading.location; images without landmarks are left out)."""
        from model.reading.location import finding_with_location

        draft = self._require_draft()
        draft.findings = [(side, finding_with_location(f, landmarks_by_image, spacing_by_image, side) if f.marks else f)
                          for side, f in draft.findings]

    def show_ai(self, model_version: str | None, scores: dict[str, float]) -> None:
        """The AI goes on screen (where the policy lets it): the read records that it was seen, and what it said."""
        draft = self._require_draft()
        draft.ai_shown, draft.ai_model_version, draft.ai_scores = True, model_version, dict(scores)

    def _require_draft(self) -> ReadDraft:
        if self.draft is None:
            raise ReadRefused("this case's read is committed: change it to write a new one")
        return self.draft

    # -- committing ---------------------------------------------------------------------------------------------

    def commit(self) -> CommitOutcome:
        """Commit the draft. A refusal leaves it on screen with the reason; a database that fails keeps it as a
        draft on this workstation, with the reason."""
        draft = self._require_draft()
        try:
            read = draft.to_read(self.scale)
        except ReadRefused as exc:
            return CommitOutcome(None, str(exc))
        return self._commit(read, draft)

    def normal_both(self) -> CommitOutcome:
        """"Normal both breasts": routine recall, score 1, the density chosen if any, no findings; committed."""
        draft = self._require_draft()
        for side in SIDES:
            draft.breasts[side] = BreastDraft("routine", "1", draft.breasts[side].density)
        draft.findings = []
        return self.commit()

    def _commit(self, read: Read, draft: ReadDraft) -> CommitOutcome:
        try:
            committed = self.store.commit(read)
        except ReadRefused as exc:
            return CommitOutcome(None, str(exc))
        except ReadStoreError as exc:
            self.drafts.save(draft)
            return CommitOutcome(None, f"{exc}; your read is kept on this workstation as a draft", kept_as_draft=True)
        self.drafts.discard(draft.case_id)
        self.draft = None
        self.open(read.case_id)  # what the reader may see now: the other reads, the AI
        return CommitOutcome(committed)

    def arbitrate(self, outcomes: dict[str, str], reason: str) -> Arbitration:
        """Record the final outcome per breast of the open case (ReadRefused, ReadStoreError with one line)."""
        opened = self._require_open()
        earlier = opened.arbitrations[-1].arbitration_id if opened.arbitrations else None
        recorded = self.store.arbitrate(Arbitration(opened.case_id, self.reader, dict(outcomes), reason,
                                                    replaces=earlier if opened.status.state == "done" else None))
        self.open(opened.case_id)
        return recorded


__all__ = ["BreastDraft", "CommitOutcome", "DRAFT_FORMAT", "Drafts", "ReadDraft", "ReadingSession"]
