"""Tools → Models: every model version in the registry, its card, and a one-click switch (rollback included).

Each model's held-out Dice and AUC are listed with the number of held-out
patients behind them and where they come from (``model.registry.versions.held_out_figures``):
a figure from 2 patients is marked too few to compare, never set beside one from
24 as if alike. The card shows what a reader or a site engineer needs
(``model.registry.versions.card_facts``), not the training machine's paths.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from model.errors import BcirError
from model.registry.versions import ModelRegistry, RegistryEntry, card_facts, held_out_figures, malignancy_trust
from model.jobs.verdict import judge

from app.errors import describe
from app.trust_text import trust_html

VERSION_ROLE = Qt.ItemDataRole.UserRole


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return html.escape(str(value))


METRIC_WORDS = {"dice_mean": "Dice per image", "iou_mean": "IoU per image", "lesion_sensitivity": "lesion sensitivity",
                "fp_per_image": "false positives per image", "auc": "malignancy AUC", "auc_ci": "AUC 95% CI",
                "sensitivity": "sensitivity", "specificity": "specificity", "val_dice": "validation Dice (ROI tiles)",
                "val_auc": "validation AUC (ROI tiles)", "val_loss": "validation loss", "patients": "held-out patients",
                "images": "held-out images", "lesions": "held-out lesions", "malignant": "malignant abnormalities",
                "benign": "benign abnormalities", "epoch": "epoch", "pixel_accuracy": "pixel accuracy",
                "case_auc": "case-score AUC"}


def _figure(value, figures: dict) -> str:
    """'0.467 (24 patients)': a held-out figure never without the size behind it."""
    if not isinstance(value, (int, float)):
        return ""
    patients = figures["patients"]
    return f"{value:.3f} ({patients if patients is not None else '?'} patients)"


def card_html(entry: RegistryEntry) -> str:
    """The entry's card as the reader reads it: where it comes from, what it was trained on, how it did."""
    parts = [f"<h3>{html.escape(entry.version)}{' (active)' if entry.active else ''}"
             f"{' · bundled' if entry.bundled else ''}</h3>"]
    if entry.card.intended_use:
        parts.append(f"<p><i>{html.escape(entry.card.intended_use)}</i></p>")
    parts.append("<table>" + "".join(f"<tr><td><b>{html.escape(k)}</b>&nbsp;</td><td>{_fmt(v)}</td></tr>"
                                     for k, v in card_facts(entry)) + "</table>")
    figures = held_out_figures(entry)
    held = html.escape(figures["text"])
    if figures["warnings"]:
        held += "<br><span style='color:#e0a030'>" + html.escape("; ".join(figures["warnings"])) + "</span>"
    if figures["protocol"] == "training":
        held += "<br>" + html.escape("measured by the training loop on ROI tiles, not on whole views: not comparable "
                                     "with a model's `bcir eval` or safety-gate figures")
    metrics = {k: v for k, v in entry.metrics.items()
               if k in METRIC_WORDS and not isinstance(v, dict) and k not in ("patients", "images")}
    if "auc" in metrics and figures["auc_note"]:
        metrics["auc"] = figures["auc_note"]
        metrics.pop("auc_ci", None)
    if metrics:
        # first what the reader is told beside the AI's score, each lesion type on its own line; then the figures
        trust = trust_html(malignancy_trust(entry.metrics, entry.gate))
        parts.append(f"<h4>Held-out figures</h4><p>{held}</p><p>{trust}</p><table>" + "".join(
            f"<tr><td>{html.escape(METRIC_WORDS[k])}&nbsp;</td><td>{_fmt(v)}</td></tr>" for k, v in metrics.items())
            + "</table>")
    gate = entry.gate
    if gate:
        verdict = judge(gate)
        head = "<tr><th></th><th>current</th><th>new</th><th>better</th><th>held out</th></tr>"
        body = "".join(
            f"<tr><td>{html.escape(f.label)}&nbsp;</td><td>{html.escape(f.current_text)}</td>"
            f"<td>{html.escape(f.new_text)}</td><td>{f.verdict or '—'}</td><td>{html.escape(f.held_out)}</td></tr>"
            for f in verdict.figures)
        warn = "".join(f"<br><span style='color:#e0a030'>{html.escape(w)}</span>" for w in verdict.warnings)
        parts.append(f"<h4>Safety gate</h4><p>{html.escape(str(gate.get('description', '')))}{warn}</p>"
                     f"<table>{head}{body}</table>")
    settings = entry.settings
    if settings:
        keys = ("max_epochs", "batch_size", "lr", "working_spacing_mm", "tile", "augment_factor", "views", "fine_tune",
                "holdout_root", "device")
        shown = {k: settings[k] for k in keys if k in settings}
        parts.append("<h4>Settings</h4><table>" + "".join(
            f"<tr><td>{k}&nbsp;</td><td>{_fmt(v)}</td></tr>" for k, v in shown.items()) + "</table>")
    return "".join(parts)


class ModelsDialog(QDialog):
    """Emits ``modelChosen(entry)`` after the active model changed."""

    modelChosen = Signal(object)

    def __init__(self, registry: ModelRegistry | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.registry = registry or ModelRegistry()
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Version", "Active", "Parent", "Added", "Held-out Dice", "AUC", "Measured on"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.card = QTextBrowser()
        self.card.setOpenLinks(False)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.use_button = QPushButton("Use this model")
        self.remove_button = QPushButton("Remove…")
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        self.use_button.clicked.connect(self.use_selected)
        self.remove_button.clicked.connect(self.ask_remove_selected)
        self.tree.currentItemChanged.connect(lambda *_: self._show_selected())
        self.tree.itemDoubleClicked.connect(lambda *_: self.use_selected())
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tree)
        split.addWidget(self.card)
        split.setSizes([460, 440])
        buttons = QHBoxLayout()
        buttons.addWidget(self.message, 1)
        buttons.addWidget(self.remove_button)
        buttons.addWidget(self.use_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)
        self.resize(980, 560)
        self.refresh()

    def refresh(self) -> None:
        entries, skipped = self.registry.scan()
        self.entries = {e.version: e for e in entries}
        selected = self.selected_version()
        self.tree.clear()
        for entry in entries:
            figures = held_out_figures(entry)
            item = QTreeWidgetItem([entry.version + ("  (bundled)" if entry.bundled else ""), "●" if entry.active else "",
                                    entry.parent or "", (entry.added or "")[:16].replace("T", " "),
                                    _figure(figures["dice"], figures),
                                    _figure(figures["auc"], figures) or ("not measurable" if figures["auc_note"] else ""),
                                    ("⚠ " if figures["too_few"] or figures["protocol"] == "training" else "")
                                    + figures["text"]])
            tip = "; ".join(figures["warnings"] + ([figures["auc_note"]] if figures["auc_note"] else []))
            if figures["protocol"] == "training":
                tip = "measured on the training loop's ROI tiles: not comparable with whole-view figures" + (
                    f"; {tip}" if tip else "")
            for column in (4, 5, 6):
                item.setToolTip(column, tip or figures["text"])
            item.setData(0, VERSION_ROLE, entry.version)
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignCenter)
            self.tree.addTopLevelItem(item)
            if entry.version == selected or (selected is None and entry.active):
                self.tree.setCurrentItem(item)
        for broken in skipped:
            item = QTreeWidgetItem([broken.path.name, "", "", "", "", "", ""])
            item.setToolTip(0, broken.reason)
            item.setDisabled(True)
            self.tree.addTopLevelItem(item)
        for column in range(self.tree.columnCount()):
            self.tree.resizeColumnToContents(column)
        if skipped:
            self.message.setText(f"{len(skipped)} broken entr{'y' if len(skipped) == 1 else 'ies'} not usable: "
                                 + "; ".join(f"{s.path.name}: {s.reason}" for s in skipped[:3]))
        self._show_selected()

    def selected_version(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, VERSION_ROLE) if item is not None else None

    def select(self, version: str) -> bool:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, VERSION_ROLE) == version:
                self.tree.setCurrentItem(item)
                return True
        return False

    def _show_selected(self) -> None:
        entry = self.entries.get(self.selected_version() or "")
        self.card.setHtml(card_html(entry) if entry else "")
        self.use_button.setEnabled(entry is not None and not entry.active)
        self.remove_button.setEnabled(entry is not None and not entry.active and not entry.bundled)
        if entry is not None:
            self.remove_button.setToolTip("the bundled model is always kept" if entry.bundled else
                                          "choose another model first" if entry.active else "delete this version")

    def use_selected(self) -> RegistryEntry | None:
        version = self.selected_version()
        if version is None:
            return None
        try:
            entry = self.registry.use(version)
        except (BcirError, OSError) as exc:  # a version gone, a damaged file, a folder without permission: one line
            self.message.setText(f"Cannot use {version}: {describe(exc)}")
            return None
        self.message.setText(f"Now using {version}; the AI runs again with it.")
        self.refresh()
        self.modelChosen.emit(entry)
        return entry

    def ask_remove_selected(self) -> None:
        version = self.selected_version()
        if version and QMessageBox.question(self, "Remove model", f"Delete {version} from the registry?") == QMessageBox.StandardButton.Yes:
            self.remove(version)

    def remove(self, version: str) -> bool:
        try:
            self.registry.remove(version)
        except (BcirError, OSError) as exc:  # the bundled or active model, a version gone, a folder without permission
            self.message.setText(f"Not removed: {describe(exc)}")
            return False
        self.message.setText(f"{version} removed.")
        self.refresh()
        return True
