"""The review dock: the reader's verdict on the case (agree / disagree with the AI), BI-RADS and a comment.

The dock gathers the reader's input and shows the case's phase and history; the
rules are the model's. Every record goes to the append-only review log
(``model.reviews.store.ReviewStore``) with the reader's name, the model version
and the AI score as shown; the dock lists the case's history underneath, newest
first.

Blinded reading (Review → Blinded reading) follows ``model.reviews.protocol``:
the AI and the ground truth stay hidden until the reader has recorded their own
BI-RADS; recording it reveals them, and the reader then says whether they agree
with the AI. Both records are stored. The phase of a case, the reading mode and
the cases each reader has seen unblinded are read back from the log, so a
restart neither hides an AI already seen nor reveals one not yet earned.

A case the reader has already seen unblinded (AI and truth on screen, in open
reading) cannot be read blind any more: it stays open, and an own read of it is
refused. In blinded reading the dock, the worklist and the history show the
reader only their own reviews, so double reading stays independent.

What the reader typed but has not recorded is a draft, kept per reader and
patient in ``review-drafts.json`` (atomic writes), so moving on or a crash loses
nothing.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from model.errors import ReviewLogError, ReviewRefused
from model.reviews.protocol import (BLIND, NO_CASE, OPEN, REVEALED, CaseState, check_own_read, check_verdict,
                                    own_read, shows_unblinded, verdict_on_ai, visible_reader)
from model.reviews.records import BIRADS
from model.reviews.store import ReviewStore
from model.reviews.words import local_time, score_text, verdict_text

from app.case_text import percent
from app.errors import describe
from app.trust_text import trust_html
from app.settings import Settings

log = logging.getLogger("bcir.app")

BIRADS_WORDS = {
    "0": "incomplete: needs more imaging", "1": "negative", "2": "benign", "3": "probably benign",
    "4A": "low suspicion", "4B": "moderate suspicion", "4C": "high suspicion",
    "5": "highly suggestive of malignancy", "6": "known biopsy-proven malignancy",
}
DRAFT_SAVE_MS = 400
READER_SETTLE_MS = 400  # the reader's name is read this long after the last keystroke
DISAGREE_COLOR = QColor(235, 150, 40)
HISTORY_COLUMNS = ["When", "Reader", "Verdict", "BI-RADS", "AI shown", "Model", "Comment"]

CHOOSE_BIRADS = "Choose a BI-RADS category first (F2)."
TYPE_NAME = "Type your name in Reader first: every review is signed."


def case_key(reader: str, patient_id: str) -> str:
    return f"{reader.strip()}\t{patient_id}"


class ReviewDock(QDockWidget):
    """Emits ``recorded(patient_id, status)`` after each record and ``phaseChanged(phase)`` when the
    AI must be hidden (``BLIND``) or may be shown again."""

    recorded = Signal(str, str)
    phaseChanged = Signal(str)
    readerChanged = Signal(str)

    def __init__(self, settings: Settings, store: ReviewStore | None, store_problem: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__("Review", parent)
        self.setObjectName("reviewDock")
        self.settings = settings
        self.store = store
        self.store_problem = store_problem
        self.patient_id: str | None = None
        self.ai_score: float | None = None
        self.ai_complete = False  # every CC view has its result (or the AI gave up on it)
        self.ai_trust = None  # how far the model's malignancy call can be trusted, shown with the score
        self.model_version: str | None = None
        self._blinded_without_log = False  # the reading mode while there is no review log to keep it
        self.phase = NO_CASE
        self._adopt_legacy_state()
        self._drafts = settings.load_drafts()  # case_key(reader, patient) -> {"birads", "comment"}
        self._draft_key: str | None = None  # where the text in the form belongs
        self._drafts_dirty = False  # drafts changed since they were last written
        self._loading = False
        self._draft_timer = QTimer(self)
        self._draft_timer.setSingleShot(True)
        self._draft_timer.setInterval(DRAFT_SAVE_MS)
        self._draft_timer.timeout.connect(self.save_drafts)
        self._reader_timer = QTimer(self)
        self._reader_timer.setSingleShot(True)
        self._reader_timer.setInterval(READER_SETTLE_MS)
        self._reader_timer.timeout.connect(self._on_reader_edited)

        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setWordWrap(True)
        self.reader = QLineEdit(settings.reader)
        self.reader.setPlaceholderText("your name (stored with each review)")
        self.birads = QComboBox()
        for value in BIRADS:
            self.birads.addItem(f"{value} — {BIRADS_WORDS[value]}", value)
        self.birads.setPlaceholderText("choose a category (F2)")
        self.birads.setCurrentIndex(-1)
        self.comment = QPlainTextEdit()
        self.comment.setPlaceholderText("comment (optional)")
        self.comment.setTabChangesFocus(True)
        self.comment.setFixedHeight(self.fontMetrics().lineSpacing() * 3 + 12)
        self.ai_line = QLabel()
        self.ai_line.setWordWrap(True)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setObjectName("reviewMessage")
        self.own_button = QPushButton("Record my read (reveals the AI)")
        self.own_button.setToolTip("Blinded reading: store your BI-RADS and comment, then see the AI (Ctrl+Return)")
        self.agree_button = QPushButton("Agree with AI")
        self.agree_button.setToolTip("Record that you agree with the AI result shown (Ctrl+Shift+A)")
        self.disagree_button = QPushButton("Disagree with AI")
        self.disagree_button.setToolTip("Record that you disagree with the AI result shown (Ctrl+Shift+D)")
        self.history = QTreeWidget()
        self.history.setHeaderLabels(HISTORY_COLUMNS)
        self.history.setRootIsDecorated(False)
        self.history.setAlternatingRowColors(True)
        self.history.setUniformRowHeights(True)

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Reader", self.reader)
        form.addRow("BI-RADS", self.birads)
        form.addRow("Comment", self.comment)
        buttons = QHBoxLayout()
        buttons.addWidget(self.own_button)
        buttons.addWidget(self.agree_button)
        buttons.addWidget(self.disagree_button)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addLayout(form)
        layout.addWidget(self.ai_line)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        self.history_label = QLabel("History of this case (append-only, newest first)")
        layout.addWidget(self.history_label)
        layout.addWidget(self.history, 1)
        self.setWidget(body)

        self.reader.editingFinished.connect(self._on_reader_edited)
        self.reader.textEdited.connect(lambda _text: self._reader_timer.start())
        self.birads.currentIndexChanged.connect(lambda _i: self._on_draft_changed())
        self.comment.textChanged.connect(self._on_draft_changed)
        self.own_button.clicked.connect(self.record_own)
        self.agree_button.clicked.connect(lambda: self.record_verdict("agree"))
        self.disagree_button.clicked.connect(lambda: self.record_verdict("disagree"))
        self._refresh()

    # -- what the window tells the dock

    @property
    def available(self) -> bool:
        return self.store is not None

    def set_case(self, patient_id: str | None) -> None:
        self.save_drafts()
        self.patient_id = patient_id
        self.ai_score = None
        self.ai_complete = False
        self.message.clear()
        self._load_draft()
        self._refresh()

    def set_ai(self, score: float | None, model_version: str | None, complete: bool = True, trust=None) -> None:
        """The case score on screen (None while the AI has no result), the model that made it, whether every view
        has answered (the reader agrees or disagrees with the whole case, not with half of it), and how far the
        model's malignancy call can be trusted (model.registry.versions.MalignancyTrust), shown with the score."""
        self.ai_score = score
        self.ai_complete = complete
        self.model_version = model_version
        self.ai_trust = trust
        self._mark_seen()
        self._refresh_buttons()

    @property
    def blinded_mode(self) -> bool:
        """Blinded reading is on: the mode kept in the review log (this session's choice when there is none)."""
        return self.store.blinded_mode if self.available else self._blinded_without_log

    def set_blinded_mode(self, on: bool) -> None:
        self._blinded_without_log = on
        if self.available:
            try:
                self.store.set_blinded_mode(on)
            except ReviewLogError as exc:
                self._say(f"Reading mode not stored: {describe(exc)}", error=True)
        self._refresh()

    def _adopt_legacy_state(self) -> None:
        """An older version kept the reading mode and the cases seen unblinded in the settings: the review log
        takes them over, once (they stay in the settings until it has)."""
        if not self.available:
            return
        blinded, seen = self.settings.legacy_protocol_state()
        if blinded is None and not seen:
            return
        try:
            self.store.adopt_protocol_state(blinded=blinded, seen=seen)
            self.settings.forget_legacy_protocol_state()
        except (ReviewLogError, OSError) as exc:
            log.warning("the reading mode and the cases seen unblinded stay in the settings for now: %s", describe(exc))

    @property
    def reader_name(self) -> str:
        return self.reader.text().strip()

    @property
    def only_reader(self) -> str | None:
        """Whose reviews this reader may see: their own in blinded reading, everyone's (None) in open reading."""
        return visible_reader(self.reader_name, self.blinded_mode)

    def statuses(self) -> dict[str, str]:
        """Review status per patient for the worklist: only this reader's reviews in blinded reading."""
        if not self.available:
            return {}
        return self.store.statuses(reader=self.only_reader)

    def status_of(self, patient_id: str) -> str:
        if not self.available:
            return "unread"
        return self.store.status(patient_id, reader=self.only_reader)

    # -- recording

    def _reader_name(self) -> str | None:
        name = self.reader_name
        if not name:
            self._say(TYPE_NAME, error=True)
            self.reader.setFocus()
            return None
        if name != self.settings.reader:
            self.settings.reader = name
        return name

    def _chosen_birads(self) -> str | None:
        value = self.birads.currentData()
        if value is None:
            self._say(CHOOSE_BIRADS, error=True)
            self.birads.setFocus()
            return None
        return value

    def record_own(self) -> int | None:
        """Blinded phase: store the reader's own read; the AI and the truth are revealed after it."""
        if not self._phase_is_current() or not self._allowed(check_own_read, self.phase, self.blinded_mode):
            return None
        name = self._reader_name()
        birads = self._chosen_birads() if name else None
        if name is None or birads is None:
            return None
        try:
            record_id = self.store.record(own_read(name, self.patient_id, birads, self.comment.toPlainText(),
                                                   model_version=self.model_version or ""))
        except Exception as exc:  # noqa: BLE001 - a database error is one line for the reader; the viewer stays up
            self._say(f"Not recorded: {describe(exc)}", error=True)
            return None
        self._after_record(record_id, "own read recorded; the AI is shown now: do you agree with it?")
        return record_id

    def record_verdict(self, verdict: str) -> int | None:
        """Agree / disagree with the AI result as shown (after the own read in blinded reading)."""
        if not self._phase_is_current() or not self._allowed(check_verdict, self.phase, self.ai_score,
                                                              self.ai_complete):
            return None
        name = self._reader_name()
        birads = self._chosen_birads() if name else None
        if name is None or birads is None:
            return None
        review = verdict_on_ai(self.phase, name, self.patient_id, verdict, birads, self.comment.toPlainText(),
                               ai_score_shown=self.ai_score, model_version=self.model_version or "")
        try:
            record_id = self.store.record(review, ai_complete=self.ai_complete)
        except Exception as exc:  # noqa: BLE001 - one line for the reader, the viewer stays up
            self._say(f"Not recorded: {describe(exc)}", error=True)
            return None
        self._after_record(record_id, f"recorded: {'agrees' if verdict == 'agree' else 'disagrees'} with the AI "
                                      f"({percent(self.ai_score)} shown), BI-RADS {birads}")
        return record_id

    def _allowed(self, check, *args) -> bool:
        """The protocol allows this step now; otherwise its reason is said and False returned."""
        try:
            check(*args)
        except ReviewRefused as exc:
            self._say(str(exc), error=True)
            return False
        return True

    def _phase_is_current(self) -> bool:
        """The phase shown is the phase of the name in the Reader field now (it may have just been edited)."""
        self._reader_timer.stop()
        if self._compute_phase() == self.phase and self._draft_key == self._current_key():
            return True
        self._on_reader_edited()
        self._say("The reader changed: check the case as it is shown now, then record.", error=True)
        return False

    def _after_record(self, record_id: int, text: str) -> None:
        log.info("review %d recorded from the review dock", record_id)
        self._drafts_dirty |= self._drafts.pop(self._current_key(), None) is not None
        self.save_drafts()
        self._loading = True
        self.comment.clear()
        self._loading = False
        self._refresh()
        self._say(text)
        self.recorded.emit(self.patient_id, self.status_of(self.patient_id))

    # -- drafts

    def _current_key(self) -> str | None:
        return case_key(self.reader_name, self.patient_id) if self.patient_id is not None else None

    def _on_draft_changed(self) -> None:
        if self.birads.currentData() is not None and self.message.text() == CHOOSE_BIRADS:
            self.message.clear()  # the hint is answered
        if self._loading or self._draft_key is None:
            return
        draft = {"birads": self.birads.currentData(), "comment": self.comment.toPlainText()}
        if draft["birads"] is None and not draft["comment"]:
            self._drafts.pop(self._draft_key, None)
        else:
            self._drafts[self._draft_key] = draft
        self._drafts_dirty = True
        self._draft_timer.start()

    def _load_draft(self) -> None:
        """The form shows the current reader's draft of the current case (never another reader's)."""
        self._draft_key = self._current_key()
        draft = self._drafts.get(self._draft_key or "", {})
        self._loading = True
        self.birads.view().keyboardSearch("")  # a "2" typed on the last case must not prefix this case's "2"
        index = self.birads.findData(draft.get("birads")) if draft.get("birads") else -1
        self.birads.setCurrentIndex(index)
        self.comment.setPlainText(str(draft.get("comment", "")))
        self._loading = False

    def save_drafts(self) -> None:
        """Write the drafts when they changed (moving from case to case writes nothing otherwise)."""
        self._draft_timer.stop()
        if not self._drafts_dirty:
            return
        try:
            self.settings.save_drafts(self._drafts)
            self._drafts_dirty = False
        except OSError as exc:
            self._say(f"Draft not saved: {exc.strerror or exc}", error=True)

    def drafts(self) -> dict[str, dict]:
        return dict(self._drafts)

    def _on_reader_edited(self) -> None:
        self._reader_timer.stop()
        name = self.reader_name
        if name and self.message.text() == TYPE_NAME:
            self.message.clear()  # the hint is answered
        if name and name != self.settings.reader:
            self.settings.reader = name
        if self._current_key() != self._draft_key:
            self.save_drafts()
            self._load_draft()
        self._refresh()
        self.readerChanged.emit(name)

    # -- cases seen unblinded

    def _mark_seen(self) -> None:
        """The case is on screen with the AI and the truth: this reader cannot read it blind any more."""
        if self.patient_id is None or not self.available or not shows_unblinded(self.phase):
            return
        try:
            self.store.mark_seen(self.reader_name, self.patient_id)
        except ReviewLogError as exc:
            log.warning("could not store that the case was seen unblinded: %s", describe(exc))

    # -- showing

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.setStyleSheet("color: #e05050;" if error else "color: #60c060;")
        self.message.setText(text)

    def _case_state(self) -> CaseState | None:
        """What the log says about this reader and the case on screen (None: no case, or no log)."""
        if self.patient_id is None or not self.available:
            return None
        return self.store.case_state(self.reader_name, self.patient_id)

    def _compute_phase(self) -> str:
        state = self._case_state()
        return NO_CASE if state is None else state.phase

    def _refresh(self) -> None:
        state = self._case_state()
        phase = NO_CASE if state is None else state.phase
        changed = phase != self.phase
        self.phase = phase
        if self.patient_id is None:
            self.title.setText("No case shown")
        elif not self.available:
            self.title.setText(f"<b>{self.patient_id}</b><br><span style='color:#e05050'>Reviews cannot be stored: "
                               f"{self.store_problem}</span>")
        else:
            what = {OPEN: "open reading: the AI is shown",
                    BLIND: "<b>blinded reading</b>: AI and ground truth hidden until you record your own read",
                    REVEALED: "<b>blinded reading</b>: your own read is recorded; AI revealed, now agree or disagree"}[phase]
            if phase == OPEN and state.blinded_mode:
                what = ("blinded reading, but you have seen this case unblinded: an open review"
                        if state.latest is None else
                        "blinded reading done for this case: further reviews are open amendments")
            self.title.setText(f"<b>{self.patient_id}</b> · {what}")
        self._fill_history()
        self._refresh_buttons()
        self._mark_seen()
        if changed:
            self.phaseChanged.emit(phase)

    def _refresh_buttons(self) -> None:
        has_case = self.phase != NO_CASE
        for widget in (self.reader, self.birads, self.comment):
            widget.setEnabled(has_case)
        self.own_button.setVisible(self.phase == BLIND)
        self.own_button.setEnabled(self.phase == BLIND)
        verdicts = self.phase in (OPEN, REVEALED)
        for button in (self.agree_button, self.disagree_button):
            button.setVisible(self.phase != BLIND)
            button.setEnabled(verdicts and self.ai_score is not None and self.ai_complete)
        if self.phase == BLIND:
            self.ai_line.setText("AI: hidden until your own read is recorded")
        elif self.phase == NO_CASE:
            self.ai_line.setText("")
        elif self.ai_score is None:
            self.ai_line.setText("AI: no result for this case yet")
        elif not self.ai_complete:
            self.ai_line.setText(f"AI score so far: {percent(self.ai_score)} (waiting for the other views)")
        else:
            trust = self.ai_trust
            self.ai_line.setText(f"AI score shown: <b>{percent(self.ai_score)}</b> · model {self.model_version or '?'}"
                                 + (f"<br>{trust_html(trust)}" if trust is not None else ""))

    def _fill_history(self) -> None:
        self.history.clear()
        if self.patient_id is None or not self.available:
            return
        # blinded reading is independent reading: the reader sees only their own reviews
        only = self.only_reader  # no name yet: no reviews are this reader's
        self.history_label.setText("Your reviews of this case (blinded reading: other readers' are not shown)"
                                   if only is not None else "History of this case (append-only, newest first)")
        for review in reversed(self.store.history(self.patient_id, reader=only)):
            row = QTreeWidgetItem([local_time(review.created), review.reader, verdict_text(review), review.birads,
                                   score_text(review), review.model_version, review.comment.replace("\n", " ")])
            row.setToolTip(6, review.comment)
            row.setToolTip(0, review.created or "")
            if review.verdict == "disagree":
                row.setForeground(2, QBrush(DISAGREE_COLOR))
            self.history.addTopLevelItem(row)
        for column in range(len(HISTORY_COLUMNS) - 1):
            self.history.resizeColumnToContents(column)

    def focus_birads(self) -> None:
        self.show()
        self.raise_()
        self.birads.setFocus()
