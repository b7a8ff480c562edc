"""The model registry: every model the reader may switch to, in the user data folder, with one-step rollback.

Layout (``user_data_dir() / "models"``, ``BCIR_DATA_DIR`` moves it)::

    models/
      active.json                 {"version": ..., "chosen": ...}; missing or broken: the bundled model is active
      <version>/
        model.safetensors         the weights
        model.json                their card (model.nn.weights.save_model's format, SHA-256 included)
        model.fine.safetensors    a two-pass model's fine pass, with model.fine.json, named by model.json's
                                  ``fine``: the pair is one version, added, used, rolled back and removed whole
        entry.json                added, source, training data summary (with the file-list hash), settings,
                                  metrics, the safety-gate comparison when the model came from a retrain
        train.log                 the training log, when there is one

The bundled demo model (``resources/models``) is always listed, never copied and
never removed; it is the active model until the reader chooses another. An entry
appears whole or not at all: it is built in a hidden temp folder inside the
registry and renamed into place. Entries are files a site may copy to another:
no patient ID is in them (a card's patients are the site's hashes, model.data.split;
an older card's IDs are hashed when it is added; the training folder's problem
list, whose paths name patients, is left out). A broken entry (unreadable card, missing
weights) is reported by :meth:`ModelRegistry.skipped`, never raised by
:meth:`ModelRegistry.list`; an active pointer to a broken or vanished entry
falls back to the bundled model.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from model.errors import ModelFileError, RegistryError, UnknownModel
from model.fileio import atomic_copy, atomic_write_json, fsync_dir, user_data_dir
from model.nn.card import VERSION_RE, FinePart, ModelCard, TrainingRecord
from model.nn.weights import bundled_model_path, fine_weights_path, load_model, read_card

log = logging.getLogger(__name__)

ENTRY_FORMAT = "bcir-registry-entry/1"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "model.json"
FINE_WEIGHTS_NAME = "model.fine.safetensors"
FINE_CARD_NAME = "model.fine.json"
ENTRY_NAME = "entry.json"
LOG_NAME = "train.log"
ACTIVE_NAME = "active.json"


@dataclass
class RegistryEntry:
    version: str
    weights: Path
    card: ModelCard
    bundled: bool
    active: bool
    added: str | None  # ISO date-time the entry was added; None for the bundled model
    log_path: Path | None
    info: dict = field(default_factory=dict)  # entry.json

    @property
    def name(self) -> str:
        return self.card.name or self.version

    @property
    def parent(self) -> str | None:
        return self.card.parent

    @property
    def created(self) -> str | None:
        return self.card.created

    @property
    def training(self) -> TrainingRecord:
        return self.card.training or TrainingRecord()

    @property
    def training_data(self) -> dict:
        return self.info.get("training_data") or training_data_from_card(self.card)

    @property
    def settings(self) -> dict:
        return self.info.get("settings") or self.training.config or {}

    @property
    def metrics(self) -> dict:
        """Held-out figures when known (the gate's, or the card's held-out evaluation), else the training metrics."""
        return self.info.get("metrics") or metrics_from_card(self.card)

    @property
    def gate(self) -> dict | None:
        return self.info.get("gate")

    def to_json(self) -> dict:
        return {
            "version": self.version, "name": self.name, "bundled": self.bundled, "active": self.active,
            "added": self.added, "created": self.created, "parent": self.parent, "weights": str(self.weights),
            "log_path": str(self.log_path) if self.log_path else None, "training_data": self.training_data,
            "settings": self.settings, "metrics": self.metrics, "gate": self.gate, "source": self.info.get("source"),
            "intended_use": self.card.intended_use,
        }


@dataclass
class SkippedEntry:
    """A folder in the registry that is not a usable model, and why (one line)."""

    path: Path
    reason: str


def training_data_from_card(card: ModelCard) -> dict:
    from model.data.split import RecordedSplit

    training = card.training or TrainingRecord()
    report = training.data_report or {}
    recorded = RecordedSplit.from_card(training.to_json())  # counts only: the card's patients are hashes, or IDs of old
    return {
        "data": training.data,
        "data_fingerprint": training.data_fingerprint,
        "train_patients": recorded.train_count or 0,
        "val_patients": recorded.val_count or 0,
        "images_used": report.get("images_used"),
        "abnormalities_used": report.get("abnormalities_used"),
        "date": training.date,
    }


def metrics_from_card(card: ModelCard) -> dict:
    training = card.training or TrainingRecord()
    return dict(training.held_out_evaluation or training.metrics or {})


_PATH_IN_PARENS = re.compile(r"\s*\((?:/|~/|[A-Za-z]:[\\/])[^)]*\)")


def _without_paths(text: str) -> str:
    """A description without the absolute paths of the machine the model was trained on ("(/tmp/run80)")."""
    return _PATH_IN_PARENS.sub("", str(text)).strip()


def _looks_like_path(text) -> bool:
    return isinstance(text, str) and (text.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", text) is not None)


def held_out_figures(entry: "RegistryEntry") -> dict:
    """The Dice and AUC listed for a model with what stands behind them: how many held-out patients and images,
    which protocol ("evaluation": whole views, as ``bcir eval`` and the safety gate measure; "training": the
    training loop's ROI tiles), whether the AUC could be measured, and whether the set is too small to compare
    models (model.evaluate.held_out.held_out_warnings). The Models window and ``bcir models list`` show these together."""
    return _figures(entry.metrics, entry.gate, entry.training_data)


def _figures(m: dict, gate_record: dict | None = None, training_data: dict | None = None) -> dict:
    """:func:`held_out_figures` from a model's metrics (a registry entry's, or :func:`metrics_from_card`), its
    safety gate's record and its training data, where there are."""
    from model.evaluate.held_out import held_out_warnings

    not_measurable = m.get("not_measurable") or {}
    if "dice_mean" in m:
        gate = m.get("held_out") == "gate"
        patients = m.get("patients")
        if patients is None and gate and gate_record:
            patients = len(gate_record.get("patients") or [])
        out = {"dice": m.get("dice_mean"), "auc": None if "auc" in not_measurable else m.get("auc"),
               "auc_ci": m.get("auc_ci"), "auc_note": not_measurable.get("auc"), "patients": patients,
               "images": m.get("images"), "protocol": "evaluation", "source": "safety gate" if gate else "bcir eval",
               "per_type": m.get("per_type") or {}}
        lesions, malignant, benign = m.get("lesions"), m.get("malignant"), m.get("benign")
    else:
        out = {"dice": m.get("val_dice"), "auc": m.get("val_auc"), "auc_ci": None, "auc_note": None,
               "patients": (training_data or {}).get("val_patients") or None, "images": None,
               "protocol": "training", "source": "training validation tiles", "per_type": {}}
        lesions = malignant = benign = None
    out["warnings"] = held_out_warnings(out["patients"], lesions, malignant, benign) if out["patients"] is not None else []
    out["too_few"] = bool(out["warnings"])
    size = (f"{out['patients']} patients" if out["patients"] is not None else "? patients") + (
        f", {out['images']} images" if out["images"] is not None else "")
    out["text"] = f"{size} · {out['source']}" + (" · too few to compare" if out["too_few"] else "")
    return out


@dataclass(frozen=True)
class TypeTrust:
    """The same for one lesion type: "masses 0.54 (CI 0.23-0.83, 19 lesions): not shown to be better than chance"."""

    kind: str  # as the CSVs write it: "mass", "calcification"
    text: str
    warn: bool  # its CI reaches 0.5


@dataclass(frozen=True)
class MalignancyTrust:
    """How far a model's benign/malignant call can be trusted, from its held-out figures: a headline over all the
    lesions and, where they were measured, the same for each lesion type."""

    headline: str
    warn: bool  # no whole-view held-out figure, or a 95% CI that reaches 0.5: not shown to beat chance
    by_type: tuple[TypeTrust, ...] = ()

    @property
    def text(self) -> str:
        """All of it in one line (``bcir model-info``)."""
        if not self.by_type:
            return self.headline
        return f"{self.headline}. By lesion type: " + "; ".join(t.text for t in self.by_type) + "."


_KIND_NAMES = {"calcification": "calcification clusters", "mass": "masses"}


def _chance_verdict(low: float) -> str:
    return "better than chance" if low > 0.5 else "not shown to be better than chance"


def _by_type(per_type: dict) -> tuple[TypeTrust, ...]:
    """Each lesion type with an AUC and a CI, when at least two have them (one type says what the whole set says)."""
    parts = []
    for kind in sorted(per_type):
        stats = per_type[kind] or {}
        auc, ci = stats.get("auc"), stats.get("auc_ci") or ()
        if auc is None or len(ci) != 2 or None in ci:
            continue
        lesions = f", {stats['lesions']} lesions" if stats.get("lesions") is not None else ""
        parts.append(TypeTrust(kind, f"{_KIND_NAMES.get(kind, kind)} {auc:.2f} (CI {ci[0]:.2f}-{ci[1]:.2f}{lesions}): "
                                     f"{_chance_verdict(ci[0])}", ci[0] <= 0.5))
    return tuple(parts) if len(parts) >= 2 else ()


def malignancy_trust(metrics: dict, gate_record: dict | None = None) -> MalignancyTrust:
    """The line a reader sees beside the AI's p(malignant): the held-out malignancy AUC with its CI and patients,
    as :func:`held_out_figures` reads them from ``metrics`` (a registry entry's, or :func:`metrics_from_card`)
    and ``gate_record``. A call whose CI reaches 0.5 is said to be no better than chance on those patients; one
    measured only on the training run's validation tiles, or not at all, says so. Where the figures hold each
    lesion type's AUC and CI, the line says the same of each type: a head may tell benign from malignant
    calcification clusters and not masses, and a reader should know which of its calls mean something."""
    figures = _figures(metrics, gate_record)
    auc = figures["auc"]
    if figures["protocol"] == "evaluation":  # whole views: bcir eval, the safety gate, the bundled card
        patients = figures["patients"]
        on = f"{patients} held-out patients" if patients is not None else "its held-out patients"
        if auc is None:
            note = figures["auc_note"]
            return MalignancyTrust(f"AI malignancy call: not measurable on {on}" + (f" ({note})" if note else ""), True)
        lo, hi = figures["auc_ci"] if len(figures["auc_ci"] or ()) == 2 else (None, None)
        if lo is None or hi is None:
            return MalignancyTrust(f"AI malignancy call: AUC {auc:.2f} on {on}, without a confidence interval", True)
        text = f"AI malignancy call: AUC {auc:.2f} (95% CI {lo:.2f}-{hi:.2f}) on {on}"
        if lo <= 0.5:
            text += f": {_chance_verdict(lo)}"
        return MalignancyTrust(text, lo <= 0.5, _by_type(figures["per_type"]))
    if auc is not None:
        return MalignancyTrust(f"AI malignancy call: AUC {float(auc):.2f} on the training run's validation tiles only, "
                               "not on whole held-out views", True)
    return MalignancyTrust("AI malignancy call: no held-out measurement in the model's card", True)


def model_malignancy_trust(model) -> MalignancyTrust:
    """:func:`malignancy_trust` of a loaded model: its registry entry's figures (a retrained model's are the safety
    gate's), else its card's."""
    try:
        entry = ModelRegistry().get(model.version) if model.version else None
    except (UnknownModel, RegistryError, ModelFileError, OSError):
        entry = None
    return malignancy_trust(entry.metrics, entry.gate) if entry else malignancy_trust(metrics_from_card(model.card))


def _passes_fact(entry: "RegistryEntry") -> str:
    """One pass, or a two-pass model's passes, each with its working spacing and tile (the fine part's own card)."""
    from model.nn.passes import fine_card_beside, passes_text

    try:
        return passes_text(entry.card, fine_card_beside(entry.weights, entry.card))
    except ModelFileError as exc:
        return f"two-pass; the fine pass's card cannot be read ({exc})"


def card_facts(entry: "RegistryEntry") -> list[tuple[str, str]]:
    """The card as a reader or a site engineer needs it, without the internal paths of the machine or the run
    folder it was trained in: what it is, where it comes from, what it was trained on, the weights' SHA-256."""
    source = entry.info.get("source") or ""
    if _looks_like_path(source):
        source = f"added from the file {Path(source).name}"
    data = entry.training_data
    described = data.get("data")
    folder = data.get("root") or (described if _looks_like_path(described) else None)
    facts = [("Version", entry.version), ("Name", entry.name), ("Passes", _passes_fact(entry)),
             ("Parent", entry.parent or "none (trained from scratch)"), ("Created", entry.created or "?"),
             ("Added", entry.added or "bundled with the app"), ("Source", source or "?")]
    if described and not _looks_like_path(described):
        facts.append(("Trained on", _without_paths(described)))
    if folder:
        facts.append(("Training folder", str(folder)))
    counts = [f"{data[k]} {word}" for k, word in (("train_patients", "training patients"),
                                                  ("val_patients", "validation patients"),
                                                  ("images_used", "images"), ("abnormalities_used", "abnormalities"))
              if isinstance(data.get(k), int)]
    if counts:
        facts.append(("Training data", ", ".join(counts)))
    if data.get("data_fingerprint"):
        facts.append(("Data fingerprint", str(data["data_fingerprint"])))
    if data.get("date"):
        facts.append(("Trained", str(data["date"])))
    sha = entry.card.weights_sha256
    if sha:
        facts.append(("Weights SHA-256", f"{sha[:16]}…"))
    return facts


def shareable_gate(gate: dict | None) -> dict | None:
    """A safety-gate comparison without patient IDs: one written before patients were hashed (no ``patient_key``)
    gets its patient lists hashed with the site's key, as model.jobs.gate.run_gate writes them now."""
    if not isinstance(gate, dict) or "patient_key" in gate:
        return gate
    rows = [r for r in gate.get("rows") or [] if isinstance(r, dict)]
    if not isinstance(gate.get("patients"), list) and not any(isinstance(r.get("patients"), list) for r in rows):
        return gate
    from model.data.split import site_key

    key = site_key()

    def hashed(value):
        return key.hashes(str(p) for p in value) if isinstance(value, list) else value

    out = {**gate, "patient_key": key.id}
    if "patients" in gate:
        out["patients"] = hashed(gate["patients"])
    if isinstance(gate.get("rows"), list):
        out["rows"] = [dict(r, patients=hashed(r["patients"])) if isinstance(r, dict) and "patients" in r else r
                       for r in gate["rows"]]
    if isinstance(gate.get("notes"), list):  # older evaluation notes listed missing patients by ID
        out["notes"] = [n for n in gate["notes"] if "not in the folder:" not in str(n)]
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def check_version(version: str) -> str:
    """A model version usable as a folder name; RegistryError otherwise."""
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise RegistryError(f"model version {version!r} cannot name a registry entry (letters, digits, '.', '_', '-')")
    return version


class ModelRegistry:
    """The models in ``root`` (default ``user_data_dir() / "models"``) plus the bundled one."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else user_data_dir() / "models"

    # -- reading

    def _bundled(self) -> RegistryEntry | None:
        path = bundled_model_path()
        if path is None:
            return None
        try:
            card = read_card(path)
        except ModelFileError as exc:
            log.warning("bundled model unusable: %s", exc)
            return None
        return RegistryEntry(version=card.version, weights=path, card=card, bundled=True, active=False,
                             added=None, log_path=None,
                             info={"source": "bundled with the app", "training_data": training_data_from_card(card),
                                   "metrics": metrics_from_card(card)})

    def _read_entry(self, folder: Path) -> RegistryEntry:
        weights = folder / WEIGHTS_NAME
        if not weights.is_file():
            raise ModelFileError(f"{WEIGHTS_NAME} missing")
        card = read_card(weights)
        fine = fine_weights_path(weights, card)
        if fine is not None and not fine.is_file():
            raise ModelFileError(f"its fine pass {fine.name} is missing")
        version = card.version
        if version != folder.name:
            raise ModelFileError(f"its card names version {version!r}, not {folder.name!r}")
        try:
            info = json.loads((folder / ENTRY_NAME).read_text())
        except FileNotFoundError:
            info = {}
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"{ENTRY_NAME} unreadable ({type(exc).__name__})") from None
        if not isinstance(info, dict):
            raise ModelFileError(f"{ENTRY_NAME} is not a JSON object")
        log_path = folder / LOG_NAME
        return RegistryEntry(version=version, weights=weights, card=card, bundled=False, active=False,
                             added=info.get("added"), log_path=log_path if log_path.is_file() else None, info=info)

    def scan(self) -> tuple[list[RegistryEntry], list[SkippedEntry]]:
        """(usable entries, bundled first then by date added; broken folders with a reason). Never raises for bad entries."""
        entries: list[RegistryEntry] = []
        skipped: list[SkippedEntry] = []
        bundled = self._bundled()
        children = sorted(self.root.iterdir()) if self.root.is_dir() else []
        folders = [p for p in children if p.is_dir() and not p.name.startswith(".")]  # dot folders: adds and removes under way
        for folder in folders:
            try:
                entry = self._read_entry(folder)
            except ModelFileError as exc:
                skipped.append(SkippedEntry(folder, " ".join(str(exc).split())))
                continue
            if bundled and entry.version == bundled.version:
                skipped.append(SkippedEntry(folder, f"same version as the bundled model ({entry.version})"))
                continue
            entries.append(entry)
        entries.sort(key=lambda e: (e.added or "", e.version))
        if bundled:
            entries.insert(0, bundled)
        active = self._active_version(entries)
        for entry in entries:
            entry.active = entry.version == active
        return entries, skipped

    def list(self) -> list[RegistryEntry]:
        return self.scan()[0]

    def skipped(self) -> list[SkippedEntry]:
        return self.scan()[1]

    def get(self, version: str) -> RegistryEntry:
        """The entry of ``version``; UnknownModel when the registry has no usable model of that version."""
        for entry in self.list():
            if entry.version == version:
                return entry
        raise UnknownModel(f"no model {version!r} in the registry")

    def _read_active_pointer(self) -> str | None:
        try:
            data = json.loads((self.root / ACTIVE_NAME).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("%s unreadable: the bundled model is active", ACTIVE_NAME)
            return None
        version = data.get("version") if isinstance(data, dict) else None
        return version if isinstance(version, str) else None

    def _active_version(self, entries: list[RegistryEntry]) -> str | None:
        chosen = self._read_active_pointer()
        versions = {e.version for e in entries}
        if chosen in versions:
            return chosen
        if chosen is not None:
            log.warning("the active model %s is missing or broken: falling back to the bundled model", chosen)
        bundled = next((e for e in entries if e.bundled), None)
        return bundled.version if bundled else None

    def active(self) -> RegistryEntry:
        """The chosen model; the bundled one when none was chosen or the choice is gone. ModelFileError when neither exists."""
        entries = self.list()
        for entry in entries:
            if entry.active:
                return entry
        raise ModelFileError("no model chosen in the registry and none bundled in resources/models")

    def active_path(self) -> Path:
        return self.active().weights

    # -- writing

    def use(self, version: str) -> RegistryEntry:
        """Make ``version`` the active model (rollback is ``use`` of an older one). UnknownModel when unknown;
        ModelFileError when its files are broken (a card against its schema, weights that do not match it or
        are not finite): the active model stays as it was."""
        entries, skipped = self.scan()
        entry = next((e for e in entries if e.version == version), None)
        if entry is None:
            broken = next((s for s in skipped if s.path.name == version), None)
            if broken is not None:
                raise ModelFileError(f"model {version} cannot be used: {broken.reason}")
            raise UnknownModel(f"no model {version!r} in the registry")
        try:
            load_model(entry.weights)  # refuse to switch to weights that no longer match their card
        except ModelFileError as exc:
            raise ModelFileError(f"model {version} cannot be used: {exc}") from None
        atomic_write_json(self.root / ACTIVE_NAME, {"version": entry.version, "chosen": _now()})
        entry.active = True
        return entry

    def add(self, weights_path: str | Path, *, log_path: str | Path | None = None, info: dict | None = None) -> RegistryEntry:
        """Copy a model (weights and card) into the registry; it does not become active. RegistryError when its version is present.

        ``info`` adds to or overrides entry.json's fields (``source``,
        ``training_data``, ``settings``, ``metrics``, ``gate``, ...).
        """
        weights_path = Path(weights_path)
        # one-line ModelFileError for pickles, a card against its schema, a wrong SHA-256, a foreign network, NaN
        model = load_model(weights_path)
        if not model.card.weights_sha256:  # nothing else ties card and weights together once copied
            raise ModelFileError(f"model card {weights_path.with_suffix('.json').name}: weights_sha256 is missing: "
                                 "nothing ties the card to its weights (save_model writes it)")
        card = replace(model.card.shareable(), weights_file=WEIGHTS_NAME)  # an older card's patient IDs hashed
        if model.fine is not None:  # the fine pass goes in with it, under the registry's name
            card = replace(card, fine=FinePart(FINE_WEIGHTS_NAME, model.card.fine.weights_sha256))
        version = check_version(card.version)
        if any(e.version == version for e in self.list()) or (self.root / version).exists():
            raise RegistryError(f"model {version} is already in the registry")
        entry_info = {
            "format": ENTRY_FORMAT,
            "version": version,
            "added": _now(),
            "source": str(weights_path.resolve()),
            "training_data": training_data_from_card(card),
            "settings": (card.training or TrainingRecord()).config or {},
            "metrics": metrics_from_card(card),
            "gate": None,
            **(info or {}),
        }
        entry_info["gate"] = shareable_gate(entry_info.get("gate"))
        summary = (entry_info.get("training_data") or {}).get("summary")
        if isinstance(summary, dict) and "problems" in summary:  # each problem names a file: its path names a patient
            entry_info["training_data"] = {**entry_info["training_data"],
                                           "summary": {k: v for k, v in summary.items() if k != "problems"}}
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".adding-{version}-"))
        try:
            os.chmod(tmp, 0o755)
            atomic_copy(weights_path, tmp / WEIGHTS_NAME)
            atomic_write_json(tmp / CARD_NAME, card.to_json(), indent=2)
            if model.fine is not None:
                atomic_copy(model.fine.path, tmp / FINE_WEIGHTS_NAME)
                fine_card = replace(model.fine.card.shareable(), weights_file=FINE_WEIGHTS_NAME)
                atomic_write_json(tmp / FINE_CARD_NAME, fine_card.to_json(), indent=2)
            atomic_write_json(tmp / ENTRY_NAME, entry_info, default=str)
            if log_path is not None and Path(log_path).is_file():
                atomic_copy(log_path, tmp / LOG_NAME)
            load_model(tmp / WEIGHTS_NAME)  # the copy matches the card's SHA-256 (and the fine pass its own)
            try:
                os.rename(tmp, self.root / version)  # fails rather than merge when another writer got there first
            except OSError:
                raise RegistryError(f"model {version} is already in the registry") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(self.root)
        return self.get(version)

    def remove(self, version: str) -> None:
        """Delete an entry. RegistryError for the bundled model and the active one; UnknownModel when unknown."""
        entries, skipped = self.scan()
        entry = next((e for e in entries if e.version == version), None)
        if entry is None:
            broken = next((s for s in skipped if s.path.name == version), None)
            if broken is None:
                raise UnknownModel(f"no model {version!r} in the registry")
            folder = broken.path
        else:
            if entry.bundled:
                raise RegistryError(f"{version} is the bundled model: it is always kept")
            if entry.active:
                raise RegistryError(f"{version} is the active model: choose another one first")
            folder = entry.weights.parent
        trash = Path(tempfile.mkdtemp(dir=self.root, prefix=f".removing-{folder.name}-"))
        os.replace(folder, trash / folder.name)  # gone from the listing at once, whatever the rmtree below does
        fsync_dir(self.root)
        shutil.rmtree(trash, ignore_errors=True)


__all__ = ["ModelRegistry", "RegistryEntry", "SkippedEntry", "card_facts", "check_version", "held_out_figures",
           "malignancy_trust", "MalignancyTrust", "TypeTrust", "metrics_from_card", "model_malignancy_trust", "shareable_gate",
           "training_data_from_card"]
