"""The reading store: readers, cases, reads and arbitrations, with the double-reading protocol enforced here,
where every client (the GUI, the command line, a second workstation) must pass, not in a widget.

The protocol:

* A read is committed once, whole, in one transaction. The store sets its id and commit time.
* A reader reads a case once. A change of mind is a new read that ``replaces`` the reader's current one; both
  are kept, and the older stops counting. Once a case has an arbitration, its reads are final.
* Blindness: :meth:`ReadStore.reads` and :meth:`ReadStore.open_case` show a reader the other readers' reads only
  after the reader has committed their own. Where the site's AI policy is ``after_own_read``, a first commit
  that says the AI was on screen is refused.
* A case takes as many readers as the site's reading policy asks (one under ``single``, two otherwise); a
  further reader is refused. Two readers committing one case at the same moment are serialised by the database
  and both succeed: one is the first read, the other the second.
* Discordance is per breast, and :func:`model.reading.policy.next_step` says what follows under the site's
  policy. An arbitration is accepted only while the case waits for one; under ``arbitration`` the arbiter is a
  third reader, under ``consensus`` one of the two may record the agreed outcome.
* Nothing is updated or deleted, by this code or by anyone else: the database refuses it (model.reading.db).
* Settings (the reading policy, the AI policy) are rows too: the latest wins, and who set them is kept.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from model.errors import ReadRefused
from model.reading.db import Database, Tx, default_url, now
from model.reading.policy import CaseStatus, next_step
from model.reading.reads import Arbitration, Read, Reader
from model.reading.vocab import POLICIES, ROLES, SCALES, SIDES

AI_POLICIES = ("after_own_read", "on_request")  # hidden until the reader's own read is committed, or shown on request
DEFAULTS = {"reading_policy": "arbitration", "ai_policy": "after_own_read", "scale": "birads"}
READERS_PER_CASE = {"single": 1}  # every other policy: two
DONE_SHOWN = 200  # a reader's done list names their latest cases; the count is of all of them


@dataclass(frozen=True)
class OpenedCase:
    """What a reader may see of a case when opening it."""

    case_id: str
    reader: str
    role: str  # "first", "second", "arbitration", "consensus", "done" (nothing left for this reader), "read" (theirs is in)
    opened_at: str
    own: Read | None  # the reader's current read, if any
    others: tuple[Read, ...]  # the other readers' current reads: empty until the reader's own read is committed
    arbitrations: tuple[Arbitration, ...]
    status: CaseStatus
    ai_visible: bool  # the site's AI policy lets this reader see the AI now
    ai_policy: str = "after_own_read"  # on_request: allowed before the own read, shown when the reader asks


@dataclass(frozen=True)
class WorkItem:
    case_id: str
    state: str
    waiting_since: str
    waiting_s: float

    @property
    def waited(self) -> str:
        """How long the case has waited, as a worklist says it: '7 min', '2 h 05 min', '3 days'."""
        minutes = int(self.waiting_s // 60)
        if minutes < 60:
            return f"{minutes} min"
        hours = minutes // 60
        return f"{hours} h {minutes % 60:02d} min" if hours < 48 else f"{hours // 24} days"


@dataclass
class Worklist:
    role: str
    reader: str
    items: list[WorkItem] = field(default_factory=list)
    total: int | None = None  # when not every case is listed (done: the latest DONE_SHOWN)

    @property
    def count(self) -> int:
        return len(self.items) if self.total is None else self.total


@dataclass(frozen=True)
class _CaseRows:
    reads: list[tuple[Read, str]]  # every read of the case in commit order, with its role
    arbitrations: list[Arbitration]


def _seconds_since(iso: str, at: str) -> float:
    return max(0.0, (datetime.fromisoformat(at) - datetime.fromisoformat(iso)).total_seconds())


def _item(case_id: str, state: str, since: str, at: datetime) -> WorkItem:
    return WorkItem(case_id, state, since, max(0.0, (at - datetime.fromisoformat(since)).total_seconds()))


def current_reads(reads: list[Read]) -> list[Read]:
    """The reads that count: those no later read replaces, in commit order."""
    replaced = {r.replaces for r in reads if r.replaces}
    return [r for r in reads if r.read_id not in replaced]


def current_arbitrations(arbitrations: list[Arbitration]) -> list[Arbitration]:
    replaced = {a.replaces for a in arbitrations if a.replaces}
    return [a for a in arbitrations if a.arbitration_id not in replaced]


def not_a_reader(code: str) -> ReadRefused:
    """The refusal of a reader code the site does not have."""
    return ReadRefused(f"reader {str(code)!r:.20} is not one of this site's readers (`bcir readers list`)")


def _status_of(body: str) -> CaseStatus:
    data = json.loads(body)
    return CaseStatus(state=data["state"], final=data["final"], discordant=tuple(data["discordant"]), reads=data["reads"])


def _may_see_others(own: Read | None, status: CaseStatus) -> bool:
    """Blindness: a reader sees the other reads once their own is committed, or when the case waits for an
    arbiter or is decided."""
    return own is not None or status.state in ("arbitration", "done")


def earlier_kept(earlier: list[Arbitration], new: Arbitration) -> list[Arbitration]:
    """The current arbitrations once ``new`` is recorded (it replaces one of ``earlier``, or adds to them)."""
    return current_arbitrations([*earlier, new])


class ReadStore:
    """The site's reading store at ``url`` (default: $BCIR_READS_DB, else this workstation's SQLite file)."""

    def __init__(self, url: str | None = None):
        self.db = Database(url or default_url())
        self.url = self.db.url

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "ReadStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- readers and cases -----------------------------------------------------------------------------------

    def add_reader(self, reader: Reader, *, login: str | None = None) -> Reader:
        """Add a reader; ``login``: the workstation login that alone may read as them (a site that ties readers to
        logins; None: any login may choose them)."""
        login = (login or "").strip() or None
        if login is not None and (len(login) > 64 or any(ord(c) < 33 for c in login)):
            raise ReadRefused(f"login {login!r:.40} is not a login name")
        with self.db.transaction() as tx:
            if tx.one("SELECT code FROM readers WHERE code = ?", (reader.code,)):
                raise ReadRefused(f"reader {reader.code} exists already: a code names one reader for good")
            tx.execute("INSERT INTO readers (code, name, login, added_at) VALUES (?, ?, ?, ?)",
                       (reader.code, reader.name, login, now()))
        return reader

    def readers(self) -> list[Reader]:
        with self.db.transaction(write=False) as tx:
            return [Reader(code, name) for code, name in tx.execute("SELECT code, name FROM readers ORDER BY code")]

    def logins(self) -> dict[str, str | None]:
        """Reader code -> the login tied to them (None: not tied)."""
        with self.db.transaction(write=False) as tx:
            return dict(tx.execute("SELECT code, login FROM readers ORDER BY code"))

    def readers_for_login(self, login: str) -> list[Reader]:
        """Whom ``login`` may read as: the readers tied to it; where the site ties no reader to a login, every
        reader (the site's list is then the only guard, and the start dialog says so)."""
        logins = self.logins()
        readers = self.readers()
        if not any(logins.values()):
            return readers
        return [r for r in readers if logins.get(r.code) == login]

    def add_case(self, case_id: str, images: list[str] | tuple[str, ...] = ()) -> bool:
        """Add a case to read (the study's key, never a patient's name); False when it is there already."""
        case_id = _case_id(case_id)
        with self.db.transaction() as tx:
            if tx.one("SELECT case_id FROM cases WHERE case_id = ?", (case_id,)):
                return False
            added = now()
            tx.execute("INSERT INTO cases (case_id, images, added_at) VALUES (?, ?, ?)",
                       (case_id, json.dumps([str(i) for i in images]), added))
            self._record_status(tx, case_id, next_step(self._setting(tx, "reading_policy"), [], []), added)
        return True

    def cases(self) -> list[str]:
        with self.db.transaction(write=False) as tx:
            return [c for (c,) in tx.execute("SELECT case_id FROM cases ORDER BY added_at, case_id")]

    # -- what is known of a case besides the reads: the pathology, and the AI's scores --------------------------

    def record_truth(self, case_id: str, side: str, cancer: bool, source: str) -> None:
        """The outcome known for one breast (pathology of a reader study or of CBIS-DDSM); the latest row wins. Never
        shown in reading mode: only the statistics read it."""
        if side not in SIDES:
            raise ReadRefused(f"side {side!r:.10} is not one of {', '.join(SIDES)}")
        with self.db.transaction() as tx:
            self._require_case(tx, case_id)
            tx.execute("INSERT INTO truth (case_id, side, cancer, source, added_at) VALUES (?, ?, ?, ?, ?)",
                       (case_id, side, int(bool(cancer)), str(source)[:200], now()))

    def truth(self) -> dict[tuple[str, str], bool]:
        """(case, side) -> cancer, for the breasts whose outcome is known."""
        with self.db.transaction(write=False) as tx:
            return {(c, s): bool(v) for c, s, v in tx.execute("SELECT case_id, side, cancer FROM truth ORDER BY seq")}

    def record_ai(self, case_id: str, side: str, model_version: str, score: float) -> None:
        """The AI's p(malignant) for one breast, whether or not a reader saw it; the latest row wins."""
        if side not in SIDES:
            raise ReadRefused(f"side {side!r:.10} is not one of {', '.join(SIDES)}")
        score = float(score)
        if not 0.0 <= score <= 1.0:
            raise ReadRefused(f"AI score {score!r:.10} is not in [0, 1]")
        with self.db.transaction() as tx:
            self._require_case(tx, case_id)
            tx.execute("INSERT INTO ai_results (case_id, side, model_version, score, added_at) VALUES (?, ?, ?, ?, ?)",
                       (case_id, side, str(model_version)[:128], score, now()))

    def ai_results(self) -> dict[tuple[str, str], tuple[str, float]]:
        """(case, side) -> (model version, score), the latest of each."""
        with self.db.transaction(write=False) as tx:
            return {(c, s): (v, float(p)) for c, s, v, p in tx.execute(
                "SELECT case_id, side, model_version, score FROM ai_results ORDER BY seq")}

    def case_states(self) -> dict[str, tuple[CaseStatus, str]]:
        """Every case's latest recorded state and since when it holds."""
        with self.db.transaction(write=False) as tx:
            rows = tx.execute("SELECT s.case_id, s.since, s.status FROM case_status s WHERE s.seq = "
                              "(SELECT MAX(t.seq) FROM case_status t WHERE t.case_id = s.case_id)")
        return {case: (_status_of(body), since) for case, since, body in rows}

    # -- settings -------------------------------------------------------------------------------------------

    def _setting(self, tx: Tx, name: str) -> str:
        row = tx.one("SELECT value FROM settings WHERE name = ? ORDER BY seq DESC LIMIT 1", (name,))
        return row[0] if row else DEFAULTS[name]

    def policy(self) -> str:
        """The site's reading policy: single, recall_if_either, consensus or arbitration."""
        with self.db.transaction(write=False) as tx:
            return self._setting(tx, "reading_policy")

    def ai_policy(self) -> str:
        with self.db.transaction(write=False) as tx:
            return self._setting(tx, "ai_policy")

    def scale(self) -> str:
        """The site's scale for a breast's score: birads (0-6 with 4A/4B/4C) or rcr (the UK 1-5)."""
        with self.db.transaction(write=False) as tx:
            return self._setting(tx, "scale")

    def set_policy(self, policy: str, by: str, *, ai: str | None = None, scale: str | None = None) -> None:
        """Set the site's reading policy (and, with ``ai``, its AI policy; with ``scale``, its score scale); new
        rows, the latest wins."""
        if policy not in POLICIES:
            raise ReadRefused(f"policy {policy!r:.40} is not one of {', '.join(POLICIES)}")
        if ai is not None and ai not in AI_POLICIES:
            raise ReadRefused(f"AI policy {ai!r:.40} is not one of {', '.join(AI_POLICIES)}")
        if scale is not None and scale not in SCALES:
            raise ReadRefused(f"scale {scale!r:.20} is not one of {', '.join(SCALES)}")
        with self.db.transaction() as tx:
            self._require_reader(tx, by)
            at = now()
            for name, value in (("reading_policy", policy), ("ai_policy", ai), ("scale", scale)):
                if value is not None:
                    tx.execute("INSERT INTO settings (name, value, set_by, set_at) VALUES (?, ?, ?, ?)",
                               (name, value, by, at))

    def log_event(self, case_id: str | None, reader: str, kind: str, detail: str = "") -> None:
        """Log what a reader did besides reading (parked a case, left reading mode): append-only, with the time."""
        with self.db.transaction() as tx:
            self._require_reader(tx, reader)
            if case_id is not None:
                self._require_case(tx, case_id)
            tx.execute("INSERT INTO events (case_id, reader, kind, at, detail) VALUES (?, ?, ?, ?, ?)",
                       (case_id, reader, str(kind)[:40], now(), str(detail)[:500]))

    def events(self, reader: str | None = None) -> list[dict]:
        with self.db.transaction(write=False) as tx:
            rows = tx.execute("SELECT case_id, reader, kind, at, detail FROM events ORDER BY seq")
        return [{"case_id": c, "reader": r, "kind": k, "at": a, "detail": d} for c, r, k, a, d in rows
                if reader is None or r == reader]

    def policy_history(self) -> list[dict]:
        with self.db.transaction(write=False) as tx:
            return [{"name": n, "value": v, "set_by": b, "set_at": t} for n, v, b, t in tx.execute(
                "SELECT name, value, set_by, set_at FROM settings ORDER BY seq")]

    # -- the protocol -----------------------------------------------------------------------------------------

    @staticmethod
    def _require_reader(tx: Tx, code: str) -> None:
        if not tx.one("SELECT code FROM readers WHERE code = ?", (code,)):
            raise not_a_reader(code)

    @staticmethod
    def _require_case(tx: Tx, case_id: str, *, lock: bool = False) -> None:
        known = tx.lock_case(case_id) if lock else tx.one("SELECT case_id FROM cases WHERE case_id = ?", (case_id,))
        if not known:
            raise ReadRefused(f"case {str(case_id)!r:.60} is not on this site's reading list")

    @staticmethod
    def _case_rows(tx: Tx, case_id: str) -> _CaseRows:
        reads = [(replace(Read.from_json(json.loads(body)), read_id=read_id, committed_at=committed), role)
                 for read_id, role, committed, body in tx.execute(
                     "SELECT read_id, role, committed_at, body FROM reads WHERE case_id = ? ORDER BY seq", (case_id,))]
        arbitrations = [replace(Arbitration.from_json(json.loads(body)), arbitration_id=aid, decided_at=decided)
                        for aid, decided, body in tx.execute(
                            "SELECT arbitration_id, decided_at, body FROM arbitrations WHERE case_id = ? ORDER BY seq",
                            (case_id,))]
        return _CaseRows(reads, arbitrations)

    def open_case(self, case_id: str, reader: str) -> OpenedCase:
        """Record that ``reader`` opened the case (the dwell time starts) and return what they may see now."""
        with self.db.transaction() as tx:
            self._require_reader(tx, reader)
            self._require_case(tx, case_id)
            at = now()
            tx.execute("INSERT INTO events (case_id, reader, kind, at, detail) VALUES (?, ?, 'opened', ?, '')",
                       (case_id, reader, at))
            rows = self._case_rows(tx, case_id)
            status = self._recorded_status(tx, case_id)
            ai_policy = self._setting(tx, "ai_policy")
        current = current_reads([r for r, _ in rows.reads])
        own = next((r for r in current if r.reader == reader), None)
        if own is not None:
            role = "consensus" if status.state == "consensus" else "read"
        else:
            role = status.state
        others = tuple(r for r in current if r.reader != reader) if _may_see_others(own, status) else ()
        return OpenedCase(case_id, reader, role, at, own, others, tuple(current_arbitrations(rows.arbitrations)),
                          status, ai_visible=ai_policy == "on_request" or own is not None
                          or status.state in ("arbitration", "done"),  # both reads are in: nothing to bias
                          ai_policy=ai_policy)

    def commit(self, read: Read, *, committed_elsewhere: str | None = None) -> Read:
        """Commit ``read`` whole, or refuse it with one line; returns it with its id and commit time.
        ``committed_elsewhere``: the time a read was committed in another system (an import from a RIS or a
        reader study; the protocol is checked all the same), kept as its commit time."""
        if read.read_id is not None or read.committed_at is not None:
            raise ReadRefused("a read gets its id and commit time from the store: it was committed already")
        with self.db.transaction() as tx:
            self._require_reader(tx, read.reader)
            self._require_case(tx, read.case_id, lock=True)
            rows = self._case_rows(tx, read.case_id)
            policy = self._setting(tx, "reading_policy")
            current = current_reads([r for r, _ in rows.reads])
            mine = next((r for r in current if r.reader == read.reader), None)
            if current_arbitrations(rows.arbitrations):
                raise ReadRefused(f"case {read.case_id} was arbitrated: its reads are final")
            if read.replaces is not None:
                if mine is None or mine.read_id != read.replaces:
                    raise ReadRefused(f"a changed read replaces the reader's own current read of case {read.case_id}"
                                      f" ({mine.read_id if mine else 'none'}), not {read.replaces!r:.40}")
                role = next(role for r, role in rows.reads if r.read_id == mine.read_id)
            else:
                if mine is not None:
                    raise ReadRefused(f"reader {read.reader} has read case {read.case_id} already: a change of mind "
                                      f"replaces that read ({mine.read_id})")
                if len(current) >= READERS_PER_CASE.get(policy, 2):
                    raise ReadRefused(f"case {read.case_id} has its {len(current)} reads already: "
                                      "what follows is arbitration or consensus, not another read")
                if read.ai_shown and self._setting(tx, "ai_policy") == "after_own_read":
                    raise ReadRefused("the site's AI policy hides the AI until the reader's own read is committed: "
                                      "this read says the AI was on screen")
                role = ROLES[len(current)]  # first, then second
            committed = replace(read, read_id=uuid.uuid4().hex, committed_at=committed_elsewhere or now())
            if committed_elsewhere:
                tx.execute("INSERT INTO events (case_id, reader, kind, at, detail) VALUES (?, ?, 'imported', ?, ?)",
                           (read.case_id, read.reader, now(), committed.read_id))
            tx.execute("INSERT INTO reads (read_id, case_id, reader, role, replaces, opened_at, committed_at, body)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (committed.read_id, committed.case_id, committed.reader, role, committed.replaces,
                        committed.opened_at, committed.committed_at, json.dumps(committed.to_json(), sort_keys=True)))
            reads = current_reads([r for r, _ in rows.reads] + [committed])
            self._record_status(tx, read.case_id, next_step(policy, reads, []), committed.committed_at)
        return committed

    def arbitrate(self, arbitration: Arbitration, *, decided_elsewhere: str | None = None) -> Arbitration:
        """Record the final outcome per breast of a case that waits for arbitration or consensus.
        ``decided_elsewhere``: as :meth:`commit`'s ``committed_elsewhere``."""
        if arbitration.arbitration_id is not None or arbitration.decided_at is not None:
            raise ReadRefused("an arbitration gets its id and time from the store: it was recorded already")
        with self.db.transaction() as tx:
            self._require_reader(tx, arbitration.arbiter)
            self._require_case(tx, arbitration.case_id, lock=True)
            rows = self._case_rows(tx, arbitration.case_id)
            policy = self._setting(tx, "reading_policy")
            current = current_reads([r for r, _ in rows.reads])
            earlier = current_arbitrations(rows.arbitrations)
            if arbitration.replaces is not None:
                if not earlier or earlier[-1].arbitration_id != arbitration.replaces:
                    raise ReadRefused(f"a changed arbitration replaces the case's current one "
                                      f"({earlier[-1].arbitration_id if earlier else 'none'}), "
                                      f"not {arbitration.replaces!r:.40}")
            else:
                status = next_step(policy, current, earlier)
                if status.state not in ("arbitration", "consensus"):
                    raise ReadRefused(f"case {arbitration.case_id} does not wait for arbitration (it is at "
                                      f"'{status.state}')")
            if policy == "arbitration" and arbitration.arbiter in {r.reader for r in current}:
                raise ReadRefused(f"reader {arbitration.arbiter} read case {arbitration.case_id}: under the "
                                  "arbitration policy a third reader decides")
            recorded = replace(arbitration, arbitration_id=uuid.uuid4().hex, decided_at=decided_elsewhere or now())
            tx.execute("INSERT INTO arbitrations (arbitration_id, case_id, arbiter, replaces, decided_at, body)"
                       " VALUES (?, ?, ?, ?, ?, ?)",
                       (recorded.arbitration_id, recorded.case_id, recorded.arbiter, recorded.replaces,
                        recorded.decided_at, json.dumps(recorded.to_json(), sort_keys=True)))
            self._record_status(tx, arbitration.case_id, next_step(policy, current, earlier_kept(earlier, recorded)),
                                recorded.decided_at)
        return recorded

    def reads(self, case_id: str, as_reader: str, *, history: bool = False) -> list[Read]:
        """The reads of a case ``as_reader`` may see: their own always; the others' once their own is committed,
        or once the case waits for arbitration or is decided. ``history``: replaced reads too."""
        with self.db.transaction(write=False) as tx:
            self._require_reader(tx, as_reader)
            self._require_case(tx, case_id)
            rows = self._case_rows(tx, case_id)
            status = self._recorded_status(tx, case_id)
        every = [r for r, _ in rows.reads]
        own = next((r for r in current_reads(every) if r.reader == as_reader), None)
        shown = every if history else current_reads(every)
        return shown if _may_see_others(own, status) else [r for r in shown if r.reader == as_reader]

    def status(self, case_id: str) -> CaseStatus:
        """The case's state as recorded when it last moved (a read, an arbitration), under the policy then in force."""
        with self.db.transaction(write=False) as tx:
            self._require_case(tx, case_id)
            return self._recorded_status(tx, case_id)

    @staticmethod
    def _recorded_status(tx: Tx, case_id: str) -> CaseStatus:
        (body,) = tx.one("SELECT status FROM case_status WHERE case_id = ? ORDER BY seq DESC LIMIT 1", (case_id,))
        return _status_of(body)

    @staticmethod
    def _record_status(tx: Tx, case_id: str, status: CaseStatus, since: str) -> None:
        body = {"state": status.state, "final": status.final, "discordant": list(status.discordant),
                "reads": status.reads}
        tx.execute("INSERT INTO case_status (case_id, state, since, status) VALUES (?, ?, ?, ?)",
                   (case_id, status.state, since, json.dumps(body, sort_keys=True)))

    def arbitrations(self, case_id: str) -> list[Arbitration]:
        with self.db.transaction(write=False) as tx:
            self._require_case(tx, case_id)
            return self._case_rows(tx, case_id).arbitrations

    # -- worklists ---------------------------------------------------------------------------------------------

    def worklists(self, reader: str, *, done_shown: int = DONE_SHOWN) -> dict[str, Worklist]:
        """The reader's four worklists, oldest first, with the time each case has waited in its state:

        * ``first``: cases waiting for a first read;
        * ``second``: cases waiting for a second read that this reader did not read first;
        * ``arbitration``: cases waiting for arbitration that this reader did not read (under the arbitration
          policy), or for consensus between this reader and the other one;
        * ``done``: cases this reader read or arbitrated: all of them counted, the ``done_shown`` latest listed.

        One query for the cases' latest states (written when each case last moved) and one for this reader's
        cases: no read is decoded, so the lists stay quick with a site's years of reads."""
        at = datetime.fromisoformat(now())
        lists = {role: Worklist(role, reader) for role in ROLES}
        with self.db.transaction(write=False) as tx:
            self._require_reader(tx, reader)
            states = tx.execute(
                "SELECT s.case_id, s.state, s.since FROM case_status s JOIN "
                "(SELECT case_id, MAX(seq) AS last FROM case_status GROUP BY case_id) t ON s.seq = t.last")
            mine = {c for (c,) in tx.execute(
                "SELECT case_id FROM reads WHERE reader = ? UNION SELECT case_id FROM arbitrations WHERE arbiter = ?",
                (reader, reader))}
        done = []
        for case_id, state, since in states:
            if state == "consensus" and case_id in mine:
                role = "arbitration"  # the two readers meet: either records what they agreed
            elif case_id in mine:
                done.append((since, case_id, state))
                continue
            elif state in ("first", "second", "arbitration"):
                role = state
            else:
                continue
            lists[role].items.append(_item(case_id, state, since, at))
        lists["done"].total = len(done)
        done.sort(reverse=True)  # the latest first: what a reader looks back at
        lists["done"].items = [_item(c, st, since, at) for since, c, st in done[:done_shown]]
        for role in ("first", "second", "arbitration"):
            lists[role].items.sort(key=lambda i: (i.waiting_since, i.case_id))
        return lists

    def worklist(self, reader: str, role: str) -> Worklist:
        if role not in ROLES:
            raise ReadRefused(f"role {role!r:.20} is not one of {', '.join(ROLES)}")
        return self.worklists(reader)[role]

    # -- export -----------------------------------------------------------------------------------------------

    def export(self) -> list[dict]:
        """Every read, one row per breast, then every arbitration, one row per breast: the columns the README lists
        under "Exported reads". Replaced reads are kept and say so (``current`` false)."""
        out: list[dict] = []
        with self.db.transaction(write=False) as tx:
            rows = tx.execute("SELECT read_id, role, committed_at, body FROM reads ORDER BY seq")
            arbitrations = tx.execute("SELECT arbitration_id, decided_at, body FROM arbitrations ORDER BY seq")
        reads = [(replace(Read.from_json(json.loads(body)), read_id=i, committed_at=c), role) for i, role, c, body in rows]
        replaced = {r.replaces for r, _ in reads if r.replaces}
        for read, role in reads:
            dwell = _seconds_since(read.opened_at, read.committed_at)
            for breast in read.breasts:
                out.append({
                    "kind": "read", "id": read.read_id, "case_id": read.case_id, "reader": read.reader, "role": role,
                    "side": breast.side, "outcome": breast.outcome, "score": breast.score, "scale": breast.scale,
                    "density": breast.density or "", "findings": len(breast.findings),
                    "findings_json": json.dumps([f.to_json() for f in breast.findings], sort_keys=True),
                    "technical_view": breast.technical_view or "", "technical_reason": breast.technical_reason or "",
                    "opened_at": read.opened_at, "committed_at": read.committed_at, "dwell_s": round(dwell, 3),
                    "ai_model_version": read.ai_model_version or "", "ai_shown": read.ai_shown,
                    "ai_score": read.ai_scores.get(breast.side, ""), "replaces": read.replaces or "",
                    "current": read.read_id not in replaced, "reason": read.note,
                })
        replaced_a = set()
        decoded = [replace(Arbitration.from_json(json.loads(body)), arbitration_id=i, decided_at=d)
                   for i, d, body in arbitrations]
        replaced_a = {a.replaces for a in decoded if a.replaces}
        for a in decoded:
            for side in sorted(a.outcomes):
                out.append({
                    "kind": "arbitration", "id": a.arbitration_id, "case_id": a.case_id, "reader": a.arbiter,
                    "role": "arbitration", "side": side, "outcome": a.outcomes[side], "score": "", "scale": "",
                    "density": "", "findings": "", "findings_json": "", "technical_view": "", "technical_reason": "",
                    "opened_at": "", "committed_at": a.decided_at, "dwell_s": "", "ai_model_version": "",
                    "ai_shown": "", "ai_score": "", "replaces": a.replaces or "",
                    "current": a.arbitration_id not in replaced_a, "reason": a.reason,
                })
        return out


EXPORT_COLUMNS = ("kind", "id", "case_id", "reader", "role", "side", "outcome", "score", "scale", "density", "findings",
                  "findings_json", "technical_view", "technical_reason", "opened_at", "committed_at", "dwell_s",
                  "ai_model_version", "ai_shown", "ai_score", "replaces", "current", "reason")


def _case_id(case_id: str) -> str:
    text = str(case_id).strip()
    if not text or len(text) > 128 or any(ord(c) < 32 for c in text):
        raise ReadRefused(f"case id {str(case_id)!r:.40} must be 1 to 128 printable characters")
    return text


__all__ = ["AI_POLICIES", "DEFAULTS", "DONE_SHOWN", "EXPORT_COLUMNS", "OpenedCase", "ReadStore", "WorkItem", "Worklist",
           "current_arbitrations", "current_reads", "not_a_reader"]
