"""Tools → Models: every model version in the registry, its card, and a one-click switch (rollback included)."""

from __future__ import annotations

import html
import json

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

from model.registry import ModelRegistry, RegistryEntry
from model.retrain_job import GATE_METRICS

from app.errors import describe

VERSION_ROLE = Qt.ItemDataRole.UserRole


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return html.escape(str(value))


def card_html(entry: RegistryEntry) -> str:
    """The entry's card as the reader reads it: where it comes from, what it was trained on, how it did."""
    rows = [("Version", entry.version), ("Name", entry.name), ("Parent", entry.parent or "none (trained from scratch)"),
            ("Created", entry.created or "?"), ("Added", entry.added or "bundled with the app"),
            ("Source", entry.info.get("source", "")), ("Weights", str(entry.weights))]
    parts = [f"<h3>{html.escape(entry.version)}{' (active)' if entry.active else ''}"
             f"{' · bundled' if entry.bundled else ''}</h3>"]
    if entry.card.get("intended_use"):
        parts.append(f"<p><i>{html.escape(str(entry.card['intended_use']))}</i></p>")
    parts.append("<table>" + "".join(f"<tr><td><b>{k}</b>&nbsp;</td><td>{_fmt(v)}</td></tr>" for k, v in rows) + "</table>")
    data = {k: v for k, v in entry.training_data.items() if v not in (None, "", [], {}) and k != "summary"}
    if data:
        parts.append("<h4>Training data</h4><table>" + "".join(
            f"<tr><td>{html.escape(k)}&nbsp;</td><td>{_fmt(v) if not isinstance(v, dict) else html.escape(json.dumps(v))}</td></tr>"
            for k, v in data.items()) + "</table>")
    metrics = {k: v for k, v in entry.metrics.items() if not isinstance(v, (dict,))}
    if metrics:
        parts.append("<h4>Metrics</h4><table>" + "".join(
            f"<tr><td>{html.escape(k)}&nbsp;</td><td>{_fmt(v)}</td></tr>" for k, v in metrics.items()) + "</table>")
    gate = entry.gate
    if gate:
        rows = {r["model"]: r for r in gate.get("rows", [])}
        head = "<tr><th></th><th>current</th><th>new</th><th>better</th></tr>"
        body = "".join(
            f"<tr><td>{label}&nbsp;</td><td>{_fmt(rows.get('current', {}).get(key, 'n/a'))}</td>"
            f"<td>{_fmt(rows.get('new', {}).get(key, 'n/a'))}</td><td>{gate.get('better', {}).get(key) or '—'}</td></tr>"
            for key, label, _ in GATE_METRICS)
        parts.append(f"<h4>Safety gate</h4><p>{html.escape(str(gate.get('description', '')))}</p><table>{head}{body}</table>")
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
        self.tree.setHeaderLabels(["Version", "Active", "Parent", "Added", "Held-out Dice", "AUC"])
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
            metrics = entry.metrics
            dice = metrics.get("dice_mean", metrics.get("val_dice"))
            auc = metrics.get("auc", metrics.get("val_auc"))
            item = QTreeWidgetItem([entry.version + ("  (bundled)" if entry.bundled else ""), "●" if entry.active else "",
                                    entry.parent or "", (entry.added or "")[:16].replace("T", " "),
                                    f"{dice:.3f}" if isinstance(dice, (int, float)) else "",
                                    f"{auc:.3f}" if isinstance(auc, (int, float)) else ""])
            item.setData(0, VERSION_ROLE, entry.version)
            item.setTextAlignment(1, Qt.AlignmentFlag.AlignCenter)
            self.tree.addTopLevelItem(item)
            if entry.version == selected or (selected is None and entry.active):
                self.tree.setCurrentItem(item)
        for broken in skipped:
            item = QTreeWidgetItem([broken.path.name, "", "", "", "", ""])
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
        except Exception as exc:  # noqa: BLE001 - one line, the dialog stays
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
        except Exception as exc:  # noqa: BLE001
            self.message.setText(f"Not removed: {describe(exc)}")
            return False
        self.message.setText(f"{version} removed.")
        self.refresh()
        return True
