"""Calibration of p(malignant) and the default operating point, fitted on a model's validation patients
(``bcir calibrate``).

* **Temperature scaling**: p(malignant) as served is sigmoid(logit(p) / T), p
  the head's own. T minimises the mean negative log-likelihood of the
  validation abnormalities' pathologies (a bounded 1-D search over log T in
  [0.01, 100] with scipy's ``minimize_scalar``; the NLL is convex in 1/T, so
  the search finds its one minimum). T > 1 softens an overconfident head, T < 1
  sharpens a timid one; the ranking, and so the AUC, is unchanged. Only the
  scale is fitted, no bias: it cannot move a head whose scores sit on the wrong
  side of 0.5 for everyone.
* **The operating point**: the p(malignant) threshold, on the calibrated scale,
  that maximises Youden's J (sensitivity + specificity - 1) on the same
  patients; ties go to the higher sensitivity, and the threshold sits halfway
  between the last score called malignant and the next one down. Youden's J is
  the default because it needs no target someone has to pick and weighs a
  missed cancer and a needless recall alike; a screening site that wants a
  stated sensitivity passes ``target_sensitivity`` (the highest threshold that
  reaches it, so the best specificity there).

The patients: the model's validation split on the folder it was trained on
(read from its card as :func:`model.evaluate.evaluation.held_out_patients`
reads it), or patients named explicitly, never its training patients. The
abnormalities scored are the paper's protocol, as ``bcir eval`` scores them: the
head on a tile-sized ROI centred on each usable ground-truth mask. The figures
of the fit (ECE before and after, the operating point's sensitivity and
specificity) are in-sample: the held-out figures come from ``bcir eval`` on
other patients, and it says so when it is given the same ones.

The result is a new model (:func:`save_calibrated`): the same weights with a
card of its own version whose ``calibration`` and ``operating_point`` say all
this (:class:`model.nn.card.Calibration`), written as :func:`model.nn.weights.save_model`
writes a pair, never over an existing file.

A two-pass model is scored by its fine part (:attr:`LoadedModel.scoring`): its
head is the one fitted, on its own grid and tile, and the calibration and the
operating point go on the fine part's card, whose training record names the
validation patients. The calibrated copy is a two-pass model again, both parts
under the new version (:func:`model.nn.weights.save_pair`).
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from model.data import cbis_ddsm
from model.data.study_index import StudyIndex, build_index
from model.errors import Cancelled, DataError, ImageReadError, ModelFileError, failure_reason
from model.evaluate import metrics
from model.evaluate.evaluation import EvalProgress, dataset_fingerprint, truth_malignancy
from model.evaluate.held_out import AUC_MIN_PER_CLASS
from model.nn.card import (PROBABILITY_EPS, TEMPERATURE_RANGE, VERSION_RE, Calibration, ModelCard, OperatingPoint,
                           TrainingRecord, apply_temperature)

MIN_PER_CLASS = AUC_MIN_PER_CLASS  # fewer malignant or benign abnormalities than this fit nothing
TEMPERATURE_BOUNDS = (TEMPERATURE_RANGE[1], TEMPERATURE_RANGE[2])
YOUDEN_RULE = "Youden's J (sensitivity + specificity - 1) maximised, ties to the higher sensitivity"


def _labels_scores(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.size} labels but {scores.size} scores")
    if scores.size and (np.isnan(scores).any() or scores.min() < 0 or scores.max() > 1):
        raise ValueError("scores must be probabilities in [0, 1]")
    return labels, scores


def _enough(labels: np.ndarray, what: str) -> None:
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if min(n_pos, n_neg) < MIN_PER_CLASS:
        raise DataError(f"{n_pos} malignant and {n_neg} benign abnormalities: {what} needs at least {MIN_PER_CLASS} "
                        "of each")


def logits(scores) -> np.ndarray:
    """logit(p), p clipped to [PROBABILITY_EPS, 1 - PROBABILITY_EPS] as :func:`model.nn.card.apply_temperature` does."""
    p = np.clip(np.asarray(scores, dtype=np.float64), PROBABILITY_EPS, 1.0 - PROBABILITY_EPS)
    return np.log(p) - np.log1p(-p)


def nll(labels, scores, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under sigmoid(logit(p) / temperature)."""
    labels, scores = _labels_scores(labels, scores)
    z = logits(scores) / temperature
    return float(np.mean(np.logaddexp(0.0, z) - labels * z))


@dataclass(frozen=True)
class TemperatureFit:
    temperature: float
    nll_before: float  # at T = 1
    nll_after: float
    at_bound: bool  # the minimum lies at a bound of the search: the scores separate (T -> 0) or say nothing (T -> inf)


def fit_temperature(labels, scores) -> TemperatureFit:
    """The temperature that minimises :func:`nll` over TEMPERATURE_BOUNDS. DataError when either class has fewer
    than MIN_PER_CLASS abnormalities."""
    from scipy.optimize import minimize_scalar

    labels, scores = _labels_scores(labels, scores)
    _enough(labels, "a calibration")
    z = logits(scores)

    def loss(log_t: float) -> float:
        zt = z / math.exp(log_t)
        return float(np.mean(np.logaddexp(0.0, zt) - labels * zt))

    low, high = (math.log(b) for b in TEMPERATURE_BOUNDS)
    found = minimize_scalar(loss, bounds=(low, high), method="bounded", options={"xatol": 1e-7})
    log_t = float(found.x)
    for edge in (low, high):  # the bounded search stops just inside a bound; the bound itself may be lower
        if loss(edge) <= loss(log_t):
            log_t = edge
    temperature = float(min(max(math.exp(log_t), TEMPERATURE_BOUNDS[0]), TEMPERATURE_BOUNDS[1]))
    at_bound = min(abs(log_t - low), abs(log_t - high)) < 1e-3
    return TemperatureFit(temperature, loss(0.0), loss(math.log(temperature)), at_bound)


@dataclass(frozen=True)
class OperatingPointFit:
    threshold: float
    rule: str
    sensitivity: float | None
    specificity: float | None


def choose_operating_point(labels, scores, target_sensitivity: float | None = None) -> OperatingPointFit:
    """The p threshold (call malignant at p >= threshold) by Youden's J, or, with ``target_sensitivity``, the highest
    threshold whose sensitivity reaches it. The threshold sits halfway between the last score called malignant and
    the next one down (at that score when none is lower). DataError when a class has fewer than MIN_PER_CLASS."""
    labels, scores = _labels_scores(labels, scores)
    _enough(labels, "an operating point")
    fpr, tpr, thresholds = metrics.roc_curve(labels, scores)
    # point k >= 1 calls every score >= thresholds[k] malignant; point 0 calls none
    if target_sensitivity is None:
        j = tpr[1:] - fpr[1:]
        k = 1 + int(np.flatnonzero(j >= j.max() - 1e-12)[-1])  # the last of the best: the lowest threshold
        rule = YOUDEN_RULE
    else:
        if not 0 < target_sensitivity <= 1:
            raise ValueError("target_sensitivity must be in (0, 1]")
        k = 1 + int(np.flatnonzero(tpr[1:] >= target_sensitivity - 1e-12)[0])
        rule = f"the highest threshold with sensitivity >= {target_sensitivity:g}"
    cut = float(thresholds[k])
    threshold = (cut + float(thresholds[k + 1])) / 2 if k + 1 < thresholds.size else cut
    threshold = min(max(threshold, 1e-6), 1 - 1e-6)
    sens, spec = metrics.sensitivity_specificity(labels, scores, threshold)
    return OperatingPointFit(threshold, rule, sens, spec)


# ---------------------------------------------------------------------------
# which patients, and their abnormalities' scores


@dataclass
class CalibrationPatients:
    patients: list[str]
    rule: str  # "validation split" | "explicit"
    how: str  # how the split was read: "site key" | "reproduced" | "ids" | "given"
    description: str


def calibration_patients(index: StudyIndex, card: ModelCard, patients: Iterable[str] | None = None
                         ) -> CalibrationPatients:
    """The model's validation patients among ``index``'s (the folder it was trained on), or ``patients`` when
    given (refusing any it trained on). DataError with one line when there are none to use."""
    from model.data.split import RecordedSplit, resolve_split

    present = sorted({i.patient_id for i in index.images})
    training = card.training if card.training is not None else TrainingRecord()
    fingerprint = dataset_fingerprint(index)
    same_folder = bool(training.data_fingerprint) and training.data_fingerprint == fingerprint
    recorded = RecordedSplit.from_card(training.to_json())
    resolved = (resolve_split(recorded, index, config=(training.config or {}) if same_folder else None)
                if recorded.names_training_patients else None)
    if patients is not None:
        wanted = {str(p) for p in patients}
        chosen = sorted(wanted & set(present))
        if not chosen:
            raise DataError(f"none of the {len(wanted)} given patients is in {index.root}")
        trained = sorted(set(chosen) & (resolved.train or set())) if resolved is not None else []
        if trained:
            raise DataError(f"{len(trained)} of the given patients are training patients of this model: a "
                            "calibration is fitted on patients the model did not train on")
        return CalibrationPatients(chosen, "explicit", "given", f"patients given explicitly ({len(chosen)})")
    if not same_folder:
        raise DataError(f"{index.root} is not the folder this model was trained on (fingerprint {fingerprint}, the "
                        f"card's {training.data_fingerprint or 'none'}), so its validation patients are unknown here: "
                        "calibrate on the training folder, or name patients it never saw with --patients (and "
                        "evaluate on others)")
    if resolved is None or resolved.train is None:
        why = resolved.why if resolved is not None else "the card lists no training patients"
        raise DataError(f"the model was trained on {index.root} but its validation patients cannot be told here "
                        f"({why}): name them with --patients")
    val = sorted(resolved.val or ())
    if not val:
        raise DataError(f"the card's split of {index.root} has no validation patients")
    extra = ", the split reproduced from its seed" if resolved.how == "reproduced" else ""
    return CalibrationPatients(val, "validation split", resolved.how,
                               f"the model's validation patients on the folder it was trained on ({len(val)}{extra})")


@dataclass
class ScoredAbnormalities:
    labels: list[bool]
    raw: list[float]  # the head's own p(malignant)
    images: int
    patients: set[str]
    unknown_pathology: int = 0
    unusable: int = 0
    skipped: Counter = field(default_factory=Counter)


def score_abnormalities(index: StudyIndex, model, patients: Iterable[str], *, views: Iterable[str] | None = ("CC",),
                        device: str = "auto", bf16: bool | None = None,
                        progress: Callable[[EvalProgress], None] | None = None,
                        should_stop: Callable[[], bool] | None = None) -> ScoredAbnormalities:
    """The head's own p(malignant) on a ROI at each usable ground-truth abnormality of ``patients`` (``bcir eval``'s
    protocol) with its pathology; abnormalities of unknown pathology are counted, not scored. An image that fails is
    counted by reason and the others go on."""
    from model.data.dicom_io import read_image
    from model.data.masks import load_truth
    from model.infer.predictor import Predictor

    wanted = set(patients)
    wanted_views = None if views is None else {v.strip().upper() for v in views if v and v.strip()}
    targets = [i for i in index.images if i.patient_id in wanted and i.abnormalities
               and (wanted_views is None or (i.view or "").upper() in wanted_views)]
    predictor = Predictor(model, device, bf16=bf16, cache_dir=None)
    out = ScoredAbnormalities([], [], 0, set())
    start = time.perf_counter()
    for done, image in enumerate(targets, 1):
        if should_stop and should_stop():
            raise Cancelled("calibration cancelled")
        try:
            truth = load_truth(image, (image.rows, image.columns))
            out.unusable += len(truth.unusable)
            usable = [t for t in truth.usable if cbis_ddsm.is_malignant(t.abnormality.pathology or "")
                      or cbis_ddsm.is_benign(t.abnormality.pathology or "")]
            out.unknown_pathology += len(truth.usable) - len(usable)
            if not usable:
                out.skipped["no usable abnormality of known pathology"] += 1
                continue
            raw = truth_malignancy(predictor, read_image(image.path), [t.mask for t in usable])
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - one image fails (unreadable, out of memory): counted, the rest go on
            out.skipped["image unreadable" if isinstance(exc, ImageReadError) else f"failed: {failure_reason(exc)}"] += 1
            continue
        out.labels += [bool(t.abnormality.malignant) for t in usable]
        out.raw += [float(p) for p in raw]
        out.images += 1
        out.patients.add(image.patient_id)
        if progress:
            progress(EvalProgress(done, len(targets), image.path, time.perf_counter() - start))
    return out


# ---------------------------------------------------------------------------
# the whole fit, and the new model


@dataclass
class CalibrationResult:
    card: ModelCard  # the calibrated card (not yet written): a two-pass model's fine part's (the scoring part)
    parent_version: str
    patients: CalibrationPatients
    temperature: TemperatureFit
    operating_point: OperatingPointFit
    ece_before: float | None
    ece_after: float | None
    auc: float | None
    abnormalities: int
    malignant: int
    images: int
    reliability_before: list[dict]
    reliability_after: list[dict]
    notes: list[str]
    skipped: dict
    seconds: float
    two_pass: bool = False  # the calibration is the fine part's; save_calibrated writes the pair

    def to_json(self) -> dict:
        return {"model_version": self.card.version, "parent": self.parent_version, "two_pass": self.two_pass,
                "calibration": self.card.calibration.to_json(), "operating_point": self.card.operating_point.to_json(),
                "patients_rule": self.patients.rule, "patients_description": self.patients.description,
                "images": self.images, "abnormalities": self.abnormalities, "malignant": self.malignant,
                "benign": self.abnormalities - self.malignant, "auc": self.auc,
                "temperature_fit": asdict(self.temperature), "reliability_before": self.reliability_before,
                "reliability_after": self.reliability_after, "skipped_images": self.skipped, "notes": self.notes,
                "seconds": self.seconds}

    def summary(self) -> str:
        def num(v, digits=3):
            return "n/a" if v is None else f"{v:.{digits}f}"

        op = self.operating_point
        rows = [
            ("model", f"{self.card.version} (calibrated from {self.parent_version}"
                      + ("; two-pass: its fine pass's head, on the fine pass's grid and tile)" if self.two_pass
                         else ")")),
            ("fitted on", f"{self.patients.description}: {self.images} images, {self.abnormalities} abnormalities "
                          f"({self.malignant} malignant, {self.abnormalities - self.malignant} benign)"),
            ("temperature", f"{self.temperature.temperature:.4g} (NLL {self.temperature.nll_before:.4f} -> "
                            f"{self.temperature.nll_after:.4f})"),
            (f"ECE ({metrics.ECE_BINS} bins)", f"{num(self.ece_before)} -> {num(self.ece_after)} (in-sample)"),
            ("malignancy AUC", f"{num(self.auc)} (unchanged by a temperature)"),
            ("operating point", f"p >= {op.threshold:.4g}: sensitivity {num(op.sensitivity)}, specificity "
                                f"{num(op.specificity)} (in-sample; {op.rule})"),
        ]
        if self.skipped:
            rows.append(("skipped images", ", ".join(f"{k} {v}" for k, v in self.skipped.items())))
        width = max(len(k) for k, _ in rows)
        return "\n".join([f"{k.ljust(width)}  {v}" for k, v in rows] + [f"note: {n}" for n in self.notes])


def _fitted_on(index: StudyIndex, chosen: CalibrationPatients, scored: ScoredAbnormalities,
               views: Iterable[str] | None) -> dict:
    from model.data.split import PATIENT_SCHEME, site_key

    key = site_key()
    used = sorted(scored.patients)
    return {"data_fingerprint": dataset_fingerprint(index), "rule": chosen.rule, "how": chosen.how,
            "views": sorted({v.strip().upper() for v in views}) if views is not None else ["all"],
            "patients": {"scheme": PATIENT_SCHEME, "site": key.id, "hashes": key.hashes(used), "count": len(used)},
            "images": scored.images, "abnormalities": len(scored.labels), "malignant": int(sum(scored.labels)),
            "benign": len(scored.labels) - int(sum(scored.labels)),
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def calibrate(root: str | Path | StudyIndex, model, *, version: str | None = None,
              patients: Iterable[str] | None = None, views: Iterable[str] | None = ("CC",), device: str = "auto",
              target_sensitivity: float | None = None, bf16: bool | None = None,
              progress: Callable[[EvalProgress], None] | None = None,
              should_stop: Callable[[], bool] | None = None) -> CalibrationResult:
    """Fit the temperature and the operating point of ``model`` (a LoadedModel or a weights path) on its validation
    patients of ``root`` (or ``patients``), and make the calibrated model's card, version ``version`` (default: the
    parent's with ``-cal``). DataError with one line when there is nothing to fit on."""
    from model.nn.weights import LoadedModel, load_model

    start = time.perf_counter()
    if not isinstance(model, LoadedModel):
        model = load_model(model)
    version = version or f"{model.version}-cal"
    if not VERSION_RE.match(version):
        raise DataError(f"{version!r} is not a model version (letters, digits, '.', '_', '-', at most 128)")
    if version == model.version:
        raise DataError(f"the calibrated model needs a version of its own, not {version!r} (results are cached by "
                        "version)")
    index = root if isinstance(root, StudyIndex) else build_index(root, workers=4)
    scoring = model.scoring  # a two-pass model's fine part: its head gives p(malignant), its card says how
    chosen = calibration_patients(index, scoring.card, patients)
    scored = score_abnormalities(index, model, chosen.patients, views=views, device=device, bf16=bf16,
                                 progress=progress, should_stop=should_stop)
    if not scored.labels:
        raise DataError(f"no abnormality to fit on among {len(chosen.patients)} {chosen.rule} patients "
                        f"(views {sorted(views) if views is not None else 'all'}; skipped {dict(scored.skipped)})")
    fit = fit_temperature(scored.labels, scored.raw)
    calibrated = [apply_temperature(p, fit.temperature) for p in scored.raw]
    point = choose_operating_point(scored.labels, calibrated, target_sensitivity)
    ece_before = metrics.expected_calibration_error(scored.labels, scored.raw)
    ece_after = metrics.expected_calibration_error(scored.labels, calibrated)
    fitted_on = _fitted_on(index, chosen, scored, views)
    notes = ["these figures are in-sample (measured on the patients they were fitted on): `bcir eval` on other "
             "patients gives the held-out ones"]
    if fit.at_bound:
        notes.append(f"the temperature lies at a bound of the search ({TEMPERATURE_BOUNDS[0]:g}-"
                     f"{TEMPERATURE_BOUNDS[1]:g}): the validation scores separate the classes perfectly, or say "
                     "nothing about them")
    if point.sensitivity is not None and point.specificity is not None and point.sensitivity + point.specificity <= 1:
        notes.append("the head does not separate the validation abnormalities (Youden's J <= 0): the operating point "
                     "is no better than chance")
    if chosen.rule == "validation split":
        notes.append("these validation patients also picked the model's best epoch, and `bcir eval` on the training "
                     "folder evaluates the same patients: held-out figures need another folder")
    if scored.unknown_pathology:
        notes.append(f"{scored.unknown_pathology} abnormalities of unknown pathology were not used")
    calibration = Calibration("temperature", fit.temperature, fitted_on, ece_before, ece_after,
                              {"bins": metrics.ECE_BINS, "nll_before": fit.nll_before, "nll_after": fit.nll_after})
    operating = OperatingPoint(point.threshold, point.rule, point.sensitivity, point.specificity, fitted_on)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    card = replace(scoring.card, version=version, parent=model.version, created=now, weights_file=None,
                   calibration=calibration, operating_point=operating)
    card = ModelCard.parse(card.to_json())  # checked as the loader will
    return CalibrationResult(
        card=card, parent_version=model.version, patients=chosen, temperature=fit, operating_point=point,
        ece_before=ece_before, ece_after=ece_after, auc=metrics.roc_auc(scored.labels, scored.raw),
        abnormalities=len(scored.labels), malignant=int(sum(scored.labels)), images=scored.images,
        reliability_before=metrics.reliability_bins(scored.labels, scored.raw),
        reliability_after=metrics.reliability_bins(scored.labels, calibrated), notes=notes,
        skipped=dict(scored.skipped), seconds=time.perf_counter() - start, two_pass=model.two_pass)


def calibrated_paths(out: str | Path) -> list[Path]:
    """The files a calibrated model written as ``out`` may take: ``NAME.safetensors`` and ``NAME.json``, and a
    two-pass model's ``NAME.fine.safetensors`` and ``NAME.fine.json``."""
    from model.nn.weights import card_path, fine_name_for

    out = Path(out)
    fine = out.with_name(fine_name_for(out))
    return [out, card_path(out), fine, card_path(fine)]


def save_calibrated(model, card: ModelCard, out: str | Path) -> Path:
    """Write the calibrated model, ``model``'s weights with ``card``, as ``out`` (``.safetensors``) and its card
    beside it, the way :func:`model.nn.weights.save_model` writes a pair. A two-pass model (``card`` is then its
    fine part's, calibrated) is written as a two-pass model: its fine part with ``card`` as ``NAME.fine.safetensors``,
    then its coarse part under the same version, parent and date (:func:`model.nn.weights.save_pair`). Never over
    an existing file (the input model included): ModelFileError."""
    from model.nn.weights import LoadedModel, save_model, save_pair

    out = Path(out)
    if out.suffix != ".safetensors":
        raise ModelFileError(f"{out.name}: the calibrated model is written as NAME.safetensors")
    for path in calibrated_paths(out)[: 4 if model.two_pass else 2]:
        if path.exists():
            raise ModelFileError(f"{path} exists: the calibrated model is written to a new file, never over one")
    if not out.parent.is_dir():
        raise ModelFileError(f"{out.parent} is not a folder")
    if not model.two_pass:
        return save_model(model.net, card, out)
    coarse = replace(model.card, version=card.version, parent=card.parent, created=card.created, weights_file=None,
                     weights_sha256=None, fine=None)
    return save_pair(LoadedModel(model.net, coarse, None), LoadedModel(model.fine.net, card, None), out,
                     version=card.version)


__all__ = ["CalibrationPatients", "CalibrationResult", "MIN_PER_CLASS", "OperatingPointFit", "ScoredAbnormalities",
           "TemperatureFit", "calibrate", "calibrated_paths", "calibration_patients", "choose_operating_point", "fit_temperature",
           "logits", "nll", "save_calibrated", "score_abnormalities"]
