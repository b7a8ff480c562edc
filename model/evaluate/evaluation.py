"""Honest evaluation of a model on held-out patients of a labelled folder.

What is measured (``bcir eval``):

* **Segmentation**, whole-view inference exactly as the app runs it: Dice and
  IoU per image (the union of an image's ground-truth masks against the
  predicted mask, over images that have lesions) and per lesion (each lesion
  against the listed lesions that overlap it); lesion detection sensitivity
  and false-positive lesions per image, over every evaluated image, lesion-free
  ones included. Hits, misses and false positives are counted over the lesions
  the result lists, by :func:`model.infer.compare.compare_with_truth`: the
  findings panel's rule, so both give the same numbers for the same image.
* **Malignancy**, on the paper's protocol: the head on a tile-sized ROI centred
  on each usable ground-truth abnormality (its mask's centroid), label =
  pathology. AUC with a percentile-bootstrap 95% CI, over all the
  abnormalities and over each lesion type apart (a call may beat chance on
  calcification clusters and not on masses), sensitivity and
  specificity at 0.5 and at the card's operating point (0.5 when it states
  none). Also a per-image AUC of the case score (the highest lesion score of
  the whole-view result), which is what the app shows.
* **Calibration** of p(malignant) as the model serves it (calibrated when the
  card has a calibration): the expected calibration error over 10 equal-width
  bins and the reliability bins (:mod:`model.evaluate.metrics`); with a
  calibration, the head's own ECE beside it. When the evaluated patients are the
  ones the calibration was fitted on, a note says so.
* **FROC**: lesion sensitivity at 0.25, 0.5, 1, 2 and 4 false positives per
  image, the listed lesions ranked by their peak probability, each a hit or a
  false positive as above. Lesions under the segmentation threshold are never
  listed, so a rate beyond what the listed lesions reach is ``None`` (not
  reached), never extrapolated.
* **Pixel accuracy** next to the accuracy of predicting background
  everywhere on the same pixels: lesions are a few percent of a mammogram, so a
  high pixel accuracy alone says nothing.

Held-out rule: when the model card's ``training.data_fingerprint`` equals
:func:`dataset_fingerprint` of the folder, the card's ``train_patients`` are
left out; otherwise the folder is one the model never trained on and every
patient is held out. ``patients=`` overrides both. Undefined numbers (an AUC
with one class present, a mean over nothing) are ``None``, never invented.

A two-pass model is evaluated as the app runs it, both passes: the held-out
patients are those neither part trained on; p(malignant), its calibration and
the operating point are the fine part's (:attr:`LoadedModel.scoring`); the
report says it is two-pass, each pass's spacing and tile, and how many fine
tiles a view took (per image, and the median).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from model.data import cbis_ddsm
from model.evaluate import metrics
from model.errors import Cancelled, DataError, ImageReadError
from model.errors import failure_reason
from model.infer.compare import compare_with_truth, iou_from_dice
from model.nn.card import ModelCard, TrainingRecord
from model.data.study_index import IndexedImage, StudyIndex, build_index

MALIGNANCY_THRESHOLD = 0.5  # the inference labels a lesion malignant at p >= 0.5
CI_LEVEL = 0.95
BOOTSTRAP_N = 2000


def image_class(image: IndexedImage) -> bool | None:
    """Is the image malignant, for the case-level AUC: True with any malignant lesion, False when every lesion is
    known benign (or there is none), None when a lesion's pathology is unknown: it is not guessed benign."""
    if any(a.malignant for a in image.abnormalities):
        return True
    if any(not cbis_ddsm.is_benign(a.pathology or "") for a in image.abnormalities):
        return None
    return False


def dataset_fingerprint(index: StudyIndex) -> str:
    """sha256 over the sorted (patient_id, image path relative to the index root) pairs; hex[:16].

    Moving or copying the folder keeps it; adding, removing or renaming an
    image (or re-assigning it to another patient) changes it. The training
    module stores it in the model card as ``training.data_fingerprint``.
    """
    from model.data.split import _pair_bytes, index_pairs

    digest = hashlib.sha256()
    for patient, rel in index_pairs(index):
        digest.update(_pair_bytes(patient, rel))
    return digest.hexdigest()[:16]


@dataclass
class HeldOut:
    patients: list[str]
    rule: str  # "explicit" | "training-card" | "all-patients"
    description: str
    notes: list[str] = field(default_factory=list)


def held_out_patients(index: StudyIndex, card: ModelCard | None, patients: Iterable[str] | None = None) -> HeldOut:
    """Which patients of ``index`` to evaluate on, and why.

    The card's training patients are read as model.data.split records them: plain IDs (cards of older versions), hashes
    under this site's key, or, on the very folder the model was trained on, the split reproduced from its seed and
    checked against the card's split digest (a model made at another site, such as the bundled one)."""
    from model.data.split import RecordedSplit, resolve_split

    present = sorted({i.patient_id for i in index.images})
    training = card.training if card is not None and card.training is not None else TrainingRecord()
    fingerprint = dataset_fingerprint(index)
    same_folder = bool(training.data_fingerprint) and training.data_fingerprint == fingerprint
    recorded = RecordedSplit.from_card(training.to_json())
    config = training.config or {}
    resolved = (resolve_split(recorded, index, config=config if same_folder else None)
                if recorded.names_training_patients else None)
    train = resolved.train if resolved is not None else None
    if patients is not None:
        wanted = [str(p) for p in patients]
        missing = sorted(set(wanted) - set(present))
        chosen = sorted(set(wanted) & set(present))
        if not chosen:
            raise DataError(f"none of the {len(wanted)} requested patients is in {index.root}")
        notes = [f"{len(missing)} requested patients are not in the folder"] if missing else []  # no IDs: notes are shared
        leaked = sorted(set(chosen) & (train or set()))
        if leaked and same_folder:
            notes.append(f"{len(leaked)} of the requested patients were training patients of this model on this "
                         "very folder: their numbers are not held-out numbers")
        return HeldOut(chosen, "explicit", f"patients given explicitly ({len(chosen)})", notes)
    if same_folder:
        if not recorded.names_training_patients:
            return HeldOut(present, "training-card",
                           f"the model was trained on this folder (fingerprint {fingerprint}) but its card lists no "
                           "training patients: every patient is evaluated, and the numbers may include training data",
                           ["training patients unknown: these are not held-out numbers"])
        if train is None:
            return HeldOut(present, "training-card",
                           f"the model was trained on this folder (fingerprint {fingerprint}) but its training patients "
                           f"cannot be told here ({resolved.why}): every patient is evaluated, and the numbers may "
                           "include training data", ["training patients unknown: these are not held-out numbers"])
        held = sorted(set(present) - train)
        if not held:
            raise DataError(f"every patient of {index.root} was used for training: nothing is held out")
        notes = []
        if resolved.val and set(held) <= resolved.val:
            notes.append("the held-out patients are the validation split, which also picked the best epoch: "
                         "expect these numbers to be slightly optimistic")
        how = " (the split reproduced from its seed)" if resolved.how == "reproduced" else ""
        return HeldOut(held, "training-card",
                       f"same folder as the model's training data (fingerprint {fingerprint}): the card's "
                       f"{len(train & set(present))} training patients left out{how}, {len(held)} held-out patients "
                       "evaluated", notes)
    notes = []
    shared = sorted(set(present) & (train or set()))
    if shared:
        notes.append(f"{len(shared)} patients of this folder also appear among the model's training patients "
                     "(on another folder); if the folders share studies, pass the held-out patients explicitly")
    elif train is None and recorded.hashed and recorded.train:
        notes.append("the model's training patients were recorded at another site (another key): whether this "
                     "folder shares patients with them cannot be checked here")
    return HeldOut(present, "all-patients",
                   f"a folder the model was not trained on (fingerprint {fingerprint} differs from the card's "
                   f"{training.data_fingerprint or 'none'}): all {len(present)} patients are held out", notes)


@dataclass
class EvalProgress:
    done: int
    total: int
    path: str
    elapsed_s: float


@dataclass
class EvalReport:
    root: str
    model_version: str
    device: str
    views: list[str]
    held_out_rule: str
    held_out_description: str
    patients: int
    images: int
    images_with_lesions: int
    dice_mean: float | None
    iou_mean: float | None
    dice_mean_per_lesion: float | None
    iou_mean_per_lesion: float | None
    lesion_sensitivity: float | None
    fp_per_image: float | None
    lesions: int
    lesions_detected: int
    false_positives: int
    auc: float | None
    auc_ci: tuple[float | None, float | None]
    sensitivity: float | None
    specificity: float | None
    malignancy_threshold: float
    abnormalities_scored: int
    malignant: int
    benign: int
    case_auc: float | None
    case_auc_ci: tuple[float | None, float | None]
    pixel_accuracy: float | None
    pixel_accuracy_all_background: float | None
    pixels: int
    lesion_pixel_fraction: float | None
    per_type: dict[str, dict]
    abnormalities_with_problems: int
    images_skipped: dict[str, int]
    segmentation_threshold: float
    min_lesion_mm2: float
    data_fingerprint: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    per_image: list[dict] = field(default_factory=list)
    per_abnormality: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # {path, reason} of each image that failed; counted in images_skipped
    # the operating point: p(malignant) >= threshold called malignant; from the card, else 0.5 (source says which)
    operating_point: dict = field(default_factory=lambda: {"threshold": MALIGNANCY_THRESHOLD, "rule": None,
                                                           "source": "default"})
    sensitivity_at_operating_point: float | None = None
    specificity_at_operating_point: float | None = None
    ece: float | None = None  # of p(malignant) as served, metrics.ECE_BINS equal-width bins
    ece_uncalibrated: float | None = None  # the head's own, when the card has a calibration (else None)
    reliability: list[dict] = field(default_factory=list)  # metrics.reliability_bins of p as served
    reliability_uncalibrated: list[dict] = field(default_factory=list)  # of the head's own, with a calibration
    calibration: dict | None = None  # the card's calibration, as written
    froc: dict = field(default_factory=dict)  # metrics.froc of the listed lesions by peak probability
    two_pass: bool = False  # both passes ran on each view; p(malignant) and its calibration are the fine part's
    passes: list[dict] = field(default_factory=list)  # model.nn.passes.passes: each pass's spacing and tile
    fine_tiles_median: float | None = None  # the fine pass's tiles per evaluated image (two-pass only)
    model_card: dict = field(default_factory=dict, repr=False)

    @property
    def history(self) -> list[dict] | None:
        """The training history from the model card, when it has one."""
        history = (self.model_card.get("training") or {}).get("history")
        return list(history) if history else None

    def roc_points(self) -> tuple[np.ndarray, np.ndarray] | None:
        labels = [a["malignant"] for a in self.per_abnormality]
        scores = [a["p_malignant"] for a in self.per_abnormality]
        try:
            fpr, tpr, _ = metrics.roc_curve(labels, scores)
        except DataError:  # one class only: no curve
            return None
        return fpr, tpr

    def case_roc_points(self) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            known = [i for i in self.per_image if i["malignant"] is not None]
            fpr, tpr, _ = metrics.roc_curve([i["malignant"] for i in known], [i["case_score"] for i in known])
        except DataError:  # one class only: no curve
            return None
        return fpr, tpr

    def to_json(self, *, details: bool = True, shareable: bool = False) -> dict:
        """A JSON-ready dict; the keys the issue fixes come first. ``details=False`` leaves out the per-image lists.

        ``shareable``: as the report folder holds it, a file a site may send on: each per-image and per-lesion
        record names its patient by the site's hash (``patient``) and its image by laterality and view, never by
        patient ID or path (paths name patients); failed images are counted by reason, without their paths.
        Otherwise (``bcir eval --json --details`` on the site's own terminal) IDs and paths are kept."""
        out = asdict(self)
        out.pop("model_card")
        out["auc_ci"] = list(self.auc_ci)
        out["case_auc_ci"] = list(self.case_auc_ci)
        first = ["patients", "images", "dice_mean", "iou_mean", "lesion_sensitivity", "fp_per_image", "auc", "auc_ci",
                 "sensitivity", "specificity", "pixel_accuracy", "pixel_accuracy_all_background"]
        ordered = {k: out.pop(k) for k in first}
        ordered.update(out)
        if not details:
            ordered.pop("per_image")
            ordered.pop("per_abnormality")
            ordered.pop("errors")  # paths name patients; the counts by reason are in images_skipped
        elif shareable:
            from model.data.split import site_key

            key = site_key()

            def pseudonymous(records: list[dict]) -> list[dict]:
                return [{"patient": key.hash(r["patient_id"]),
                         **{k: v for k, v in r.items() if k not in ("path", "patient_id")}} for r in records]

            ordered["patient_key"] = key.id
            ordered["per_image"] = pseudonymous(self.per_image)
            ordered["per_abnormality"] = pseudonymous(self.per_abnormality)
            ordered.pop("errors")
        return ordered

    def summary(self) -> str:
        """A readable table for the terminal."""
        def num(v, pct=False):
            if v is None:
                return "n/a"
            return f"{100 * v:.2f}%" if pct else f"{v:.3f}"

        def ci_text(ci) -> str:
            low, high = ci or (None, None)
            return f" (95% CI {num(low)}-{num(high)})" if low is not None else ""

        rows = [
            ("model", f"{self.model_version} on {self.device}"),
            ("passes", passes_line(self)),
            ("held out", self.held_out_description),
            ("evaluated", f"{self.patients} patients, {self.images} {'/'.join(self.views)} images "
                          f"({self.images_with_lesions} with lesions), {self.lesions} lesions"),
            ("Dice per image", num(self.dice_mean)),
            ("IoU per image", num(self.iou_mean)),
            ("Dice per lesion", num(self.dice_mean_per_lesion)),
            ("IoU per lesion", num(self.iou_mean_per_lesion)),
        ]
        for kind, stats in self.per_type.items():
            rows.append((f"  {kind}", f"{stats['lesions']} lesions, Dice {num(stats['dice_mean'])}, "
                                      f"detected {num(stats['sensitivity'], True)}"))
        rows += [
            ("lesion sensitivity", f"{num(self.lesion_sensitivity, True)} ({self.lesions_detected}/{self.lesions})"),
            ("false positives/image", num(self.fp_per_image)),
            ("malignancy AUC", f"{num(self.auc)}{ci_text(self.auc_ci)} over {self.abnormalities_scored} abnormalities "
                               f"({self.malignant} malignant, {self.benign} benign)"),
        ]
        for kind, stats in self.per_type.items():
            rows.append((f"  {kind}", f"{num(stats['auc'])}{ci_text(stats.get('auc_ci'))} over {stats['lesions']} "
                                      f"({stats['malignant']} malignant)"))
        rows += [
            (f"sens / spec @ {self.malignancy_threshold:g}", f"{num(self.sensitivity, True)} / {num(self.specificity, True)}"),
            (f"sens / spec @ {self.operating_point['threshold']:.3g}",
             f"{num(self.sensitivity_at_operating_point, True)} / {num(self.specificity_at_operating_point, True)} "
             f"(operating point: {operating_point_text(self.operating_point)})"),
            ("calibration (ECE)", calibration_text(self)),
            ("FROC sens @ FP/image", froc_text(self.froc)),
            ("case-score AUC", num(self.case_auc)),
            ("pixel accuracy", f"{num(self.pixel_accuracy, True)} vs {num(self.pixel_accuracy_all_background, True)} "
                               "for predicting all background"),
            ("left out", f"{self.abnormalities_with_problems} abnormalities with unusable masks; skipped images: "
                         + (", ".join(f"{k} {v}" for k, v in self.images_skipped.items()) or "none")),
            ("time", f"{self.seconds:.1f} s"),
        ]
        width = max(len(k) for k, _ in rows)
        lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def passes_line(report: "EvalReport") -> str:
    """'two-pass: coarse 0.4 mm, tile 256; fine 0.1 mm, tile 1024; median 2 fine tiles per image', or one pass's."""
    if not report.passes:
        return "n/a"
    rows = [f"{p['pass'] + ' ' if report.two_pass else ''}{p['working_spacing_mm']:g} mm, tile {p['tile']}"
            for p in report.passes]
    if not report.two_pass:
        return f"one pass: {rows[0]}"
    fine = "n/a" if report.fine_tiles_median is None else f"{report.fine_tiles_median:g}"
    return f"two-pass: {'; '.join(rows)}; median {fine} fine tiles per image"


def held_out_for_model(index: StudyIndex, model, patients: Iterable[str] | None) -> HeldOut:
    """:func:`held_out_patients` by the model's card; for a two-pass model, by each part's, the patients either
    part trained on left out (the two parts may have been trained on different splits)."""
    held = held_out_patients(index, model.card, patients)
    if model.fine is None:
        return held
    fine = held_out_patients(index, model.fine.card, patients)
    both = sorted(set(held.patients) & set(fine.patients))
    notes = held.notes + [n for n in fine.notes if n not in held.notes]
    if both == held.patients and both == fine.patients:
        return HeldOut(both, held.rule, held.description, notes)
    if not both:
        raise DataError(f"no patient of {index.root} is held out from both passes of this two-pass model "
                        f"({len(held.patients)} from the coarse pass, {len(fine.patients)} from the fine pass)")
    return HeldOut(both, held.rule if held.rule == fine.rule else "training-card",
                   f"held out from both passes: {len(both)} patients (coarse pass: {held.description}; fine pass: "
                   f"{fine.description})", notes)


def operating_point_text(point: dict) -> str:
    """How the report's operating point was chosen, in words."""
    if point.get("source") != "model card":
        return "the card states none, so 0.5"
    fitted = point.get("fitted_on") or {}
    count = fitted["patients"].get("count") if isinstance(fitted.get("patients"), dict) else None
    where = f", fitted on {count} patients ({fitted.get('rule', 'unstated')})" if count is not None else ""
    return f"{point.get('rule') or 'unstated rule'}{where}, from the model card"


def calibration_text(report: "EvalReport") -> str:
    """The ECE line of the summary: as served, and the head's own beside it when the card calibrates."""
    def num(v):
        return "n/a" if v is None else f"{v:.3f}"

    text = f"{num(report.ece)} ({metrics.ECE_BINS} equal-width bins)"
    if report.calibration is not None:
        text += (f"; the head uncalibrated {num(report.ece_uncalibrated)}; temperature "
                 f"{report.calibration.get('temperature', float('nan')):.3g} from the model card")
    else:
        text += "; the card has no calibration"
    return text


def froc_text(froc: dict) -> str:
    """'0.55 / 0.70 / 0.79 / not reached / not reached at 0.25 / 0.5 / 1 / 2 / 4 (listed lesions reach 1.54)'."""
    if not froc or froc.get("max_sensitivity") is None:
        return "n/a (no lesion)"
    values = " / ".join("not reached" if v is None else f"{v:.2f}" for v in froc["sensitivity"])
    rates = " / ".join(f"{r:g}" for r in froc["fp_rates"])
    return (f"{values} at {rates} (the listed lesions reach {froc['max_fp_per_image']:.2f} FP/image at "
            f"sensitivity {froc['max_sensitivity']:.2f})")


def fitted_patients(fitted_on: dict | None, index: StudyIndex, patients: Iterable[str]) -> set[str] | None:
    """Which of ``patients`` (of ``index``) a calibration or operating point was fitted on (its ``fitted_on``):
    by this site's patient hashes; on another site's hashes, an empty set for another folder and None (cannot be
    told) for the very folder it was fitted on."""
    from model.data.split import PATIENT_SCHEME, site_key

    fitted_on = fitted_on or {}
    recorded = fitted_on.get("patients") if isinstance(fitted_on.get("patients"), dict) else {}
    hashes = recorded.get("hashes")
    if recorded.get("scheme") == PATIENT_SCHEME and isinstance(hashes, list) and recorded.get("site"):
        key = site_key(create=False)
        if key is not None and key.id == recorded["site"]:
            wanted = set(hashes)
            return {p for p in patients if key.hash(p) in wanted}
    return None if fitted_on.get("data_fingerprint") == dataset_fingerprint(index) else set()


def truth_malignancy(predictor, mammogram, masks: list[np.ndarray]) -> list[float]:
    """The head's own p(malignant), uncalibrated, on the paper's protocol: a tile-sized ROI centred on each
    ground-truth mask's centroid (masks on the image's original grid)."""
    from model.data.preprocess import prepare

    if not masks:
        return []
    working, geometry, _ = prepare(mammogram.monochrome2(), mammogram.header.pixel_spacing_mm,
                                   predictor.model.scoring.preprocess)  # a two-pass model scores on its fine grid
    centres = [geometry.point_to_working(*_centroid(m)) for m in masks]
    return predictor.malignancy(working, centres, calibrated=False)


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def evaluate(
    root: str | Path | StudyIndex,
    model,
    *,
    device: str = "auto",
    views: Iterable[str] | None = ("CC",),
    patients: Iterable[str] | None = None,
    progress: Callable[[EvalProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    bf16: bool | None = None,
    bootstrap: int = BOOTSTRAP_N,
    seed: int = 0,
) -> EvalReport:
    """Evaluate ``model`` (a LoadedModel, or a weights path) on the held-out patients of ``root``.

    ``root`` is a labelled folder or an already built :class:`StudyIndex`;
    ``views=None`` takes every view. Raises Cancelled when
    ``should_stop`` asks for it, DataError when nothing can be evaluated.
    """
    from model.data.dicom_io import read_image
    from model.infer.predictor import Predictor
    from model.data.masks import load_truth
    from model.nn.passes import passes
    from model.nn.weights import LoadedModel, load_model

    start = time.perf_counter()
    if not isinstance(model, LoadedModel):
        model = load_model(model)
    index = root if isinstance(root, StudyIndex) else build_index(root, workers=4)
    held = held_out_for_model(index, model, patients)
    wanted_views = None if views is None else {v.strip().upper() for v in views if v and v.strip()}
    held_set = set(held.patients)

    skipped: Counter[str] = Counter()
    upfront_problems = 0
    targets: list[IndexedImage] = []
    for image in index.images:
        if image.patient_id not in held_set:
            continue
        if wanted_views is not None and (image.view or "").upper() not in wanted_views:
            continue
        if not image.gt_known:
            skipped["no ground truth"] += 1
            continue
        if image.abnormalities and all(a.problem or not a.mask_path for a in image.abnormalities):
            skipped["every abnormality's mask unusable"] += 1
            upfront_problems += len(image.abnormalities)
            continue
        targets.append(image)

    predictor = Predictor(model, device, bf16=bf16, cache_dir=None)
    threshold = model.scoring.threshold  # what the lesions are listed at (a two-pass model: its fine pass's)
    problems = upfront_problems
    image_dice, image_iou = [], []
    lesion_records: list[dict] = []
    image_records: list[dict] = []
    image_errors: list[dict] = []
    n_lesions = n_detected = n_fp = 0
    scoring = model.scoring  # a two-pass model's fine part: its head, calibration and operating point
    correct_pixels = total_pixels = lesion_pixels = 0
    patients_done: set[str] = set()

    for done, image in enumerate(targets, 1):
        if should_stop and should_stop():
            raise Cancelled("evaluation cancelled")
        shape = (image.rows, image.columns)
        try:  # everything that reads or runs on this one image; its failure, of any kind, never stops the others
            truth = load_truth(image, shape)  # a mask that cannot be read, or is empty, is an unusable abnormality
            usable = [(t.abnormality, t.mask) for t in truth.usable]
            problems += len(truth.unusable)
            if image.abnormalities and not usable:
                skipped["every abnormality's mask unusable"] += 1
                continue
            mammogram = read_image(image.path)
            result = predictor.predict(mammogram, should_stop=should_stop, use_cache=False)
            # malignancy on the paper's protocol: the head on a ROI centred on each ground-truth abnormality
            p_raw = truth_malignancy(predictor, mammogram, [t for _, t in usable])
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - one image fails (out of memory, a header pydicom cannot interpret,
            # ...): its reason is counted and recorded, and the other images go on
            reason = failure_reason(exc)
            skipped["image unreadable" if isinstance(exc, ImageReadError) else f"failed: {reason}"] += 1
            image_errors.append({"path": image.path, "reason": reason})
            continue
        labels = result.lesion_labels(threshold)  # the listed lesions, as the reader sees them in yellow and in rows
        if labels.shape != shape:
            skipped["image size differs from its index entry"] += 1
            continue
        pred = labels > 0
        union = np.zeros(shape, bool)
        for _, mask in usable:
            union |= mask

        # segmentation, per image and per lesion: the findings panel's comparison
        comparison = compare_with_truth(truth, labels, len(result.lesions))
        record = {"path": image.path, "patient_id": image.patient_id, "laterality": image.laterality, "view": image.view,
                  "lesions": len(usable), "detected": comparison.detected, "false_positives": comparison.false_positives,
                  "dice": None, "iou": None, "case_score": float(result.case_score), "fine_tiles": result.fine_rois,
                  "malignant": image_class(image),
                  # the listed lesions for the FROC: peak probability and the truth lesions (indices) each one hits
                  "candidates": [{"peak": float(lesion.peak_probability), "hits": list(truths)}
                                 for lesion, truths in zip(result.lesions, comparison.lesion_truths)]}
        if usable:
            record["dice"] = comparison.dice
            record["iou"] = comparison.iou
            image_dice.append(record["dice"])
            image_iou.append(record["iou"])
        n_lesions += len(usable)
        n_detected += comparison.detected
        n_fp += comparison.false_positives
        correct_pixels += int(np.count_nonzero(pred == union))
        total_pixels += union.size
        lesion_pixels += int(np.count_nonzero(union))

        for (a, mask), hit, d, raw in zip(usable, comparison.truth_hit, comparison.truth_dice, p_raw):
            x, y = _centroid(mask)
            lesion_records.append({"path": image.path, "patient_id": image.patient_id, "abnormality_id": a.id,
                                   "type": a.type, "pathology": a.pathology, "malignant": bool(a.malignant),
                                   "p_malignant": scoring.card.p_malignant(raw), "p_malignant_raw": float(raw),
                                   "detected": bool(hit), "dice": float(d),
                                   "iou": iou_from_dice(d), "centroid": [x, y], "area_px": int(mask.sum())})
        image_records.append(record)
        patients_done.add(image.patient_id)
        if progress:
            progress(EvalProgress(done, len(targets), image.path, time.perf_counter() - start))

    if not image_records:
        raise DataError(f"no image to evaluate in {index.root} (held out: {len(held.patients)} patients; "
                        f"views {sorted(wanted_views) if wanted_views else 'all'}; skipped {dict(skipped)})")

    labels = [r["malignant"] for r in lesion_records]
    scores = [r["p_malignant"] for r in lesion_records]
    auc = metrics.roc_auc(labels, scores) if lesion_records else None
    auc_ci = metrics.bootstrap_auc_ci(labels, scores, n=bootstrap, seed=seed, level=CI_LEVEL) if auc is not None else (None, None)
    sens, spec = metrics.sensitivity_specificity(labels, scores, MALIGNANCY_THRESHOLD) if lesion_records else (None, None)
    card = scoring.card
    if card.operating_point is not None:
        operating = {**card.operating_point.to_json(), "source": "model card"}
    else:
        operating = {"threshold": MALIGNANCY_THRESHOLD, "rule": None, "source": "default"}
    op_sens, op_spec = (metrics.sensitivity_specificity(labels, scores, operating["threshold"]) if lesion_records
                        else (None, None))
    ece = metrics.expected_calibration_error(labels, scores)
    reliability = metrics.reliability_bins(labels, scores)
    raw_scores = [r["p_malignant_raw"] for r in lesion_records]
    ece_raw = metrics.expected_calibration_error(labels, raw_scores) if card.calibration is not None else None
    reliability_raw = metrics.reliability_bins(labels, raw_scores) if card.calibration is not None else []
    froc = metrics.froc([(c["peak"], [(n, t) for t in c["hits"]])
                         for n, r in enumerate(image_records) for c in r["candidates"]], n_lesions, len(image_records))
    known = [r for r in image_records if r["malignant"] is not None]  # an image of unknown class scores no case AUC
    case_labels = [r["malignant"] for r in known]
    case_scores = [r["case_score"] for r in known]
    case_auc = metrics.roc_auc(case_labels, case_scores)
    case_ci = metrics.bootstrap_auc_ci(case_labels, case_scores, n=bootstrap, seed=seed, level=CI_LEVEL) if case_auc is not None else (None, None)

    per_type: dict[str, dict] = {}
    by_type: dict[str, list[dict]] = defaultdict(list)
    for r in lesion_records:
        by_type[r["type"]].append(r)
    for kind in sorted(by_type):
        rs = by_type[kind]
        kl, ks = [r["malignant"] for r in rs], [r["p_malignant"] for r in rs]
        kind_auc = metrics.roc_auc(kl, ks)
        per_type[kind] = {
            "lesions": len(rs),
            "dice_mean": _mean([r["dice"] for r in rs]),
            "iou_mean": _mean([r["iou"] for r in rs]),
            "sensitivity": sum(r["detected"] for r in rs) / len(rs),
            "auc": kind_auc,
            # the same bootstrap as the whole set's: whether the call is better than chance on this kind alone
            "auc_ci": list(metrics.bootstrap_auc_ci(kl, ks, n=bootstrap, seed=seed, level=CI_LEVEL))
            if kind_auc is not None else [None, None],
            "malignant": sum(kl),
            "benign": len(kl) - sum(kl),
        }

    notes = list(held.notes)
    fingerprint = dataset_fingerprint(index)
    if total_pixels and lesion_pixels / total_pixels < 0.05:
        notes.append(f"lesions cover {100 * lesion_pixels / total_pixels:.2f}% of the pixels: predicting background "
                     f"everywhere already scores {100 * (1 - lesion_pixels / total_pixels):.2f}% pixel accuracy")
    if auc is None and lesion_records:
        notes.append("only one pathology among the scored abnormalities: the malignancy AUC is undefined")
    reuse: dict[str, list[tuple[str, str]]] = {}  # what the note says -> the fits (and their figures) it is of
    for what, fitted, figures in (("calibration", card.calibration, "the ECE"),
                                  ("operating point", card.operating_point, "the sensitivity and specificity there")):
        if fitted is None:
            continue
        reused = fitted_patients(fitted.fitted_on, index, patients_done)
        same_folder = (fitted.fitted_on or {}).get("data_fingerprint") == fingerprint
        if reused is None:
            said = ("fitted on this very folder, and whether on these patients cannot be told here (another site's "
                    "patient key): {figures} may be optimistic")
        elif reused and same_folder:
            said = (f"fitted on {len(reused)} of the {len(patients_done)} evaluated patients: {{figures}} {{are}} "
                    "in-sample on them, so optimistic")
        elif reused:
            said = (f"fitted on another folder, on patients with the IDs of {len(reused)} of the "
                    f"{len(patients_done)} evaluated patients: if they are the same people, {{figures}} {{are}} "
                    "in-sample on them")
        else:
            continue
        reuse.setdefault(said, []).append((what, figures))
    for said, fits in reuse.items():
        figures = " and ".join(f for _, f in fits)
        notes.append(f"the model's {' and '.join(w for w, _ in fits)} {'was' if len(fits) == 1 else 'were'} "
                     + said.format(figures=figures, are="is" if figures == "the ECE" else "are"))
    if froc["max_sensitivity"] is not None and any(v is None for v in froc["sensitivity"]):
        notes.append(f"FROC: the listed lesions (at the segmentation threshold {threshold:g}) reach "
                     f"{froc['max_fp_per_image']:.2f} false positives per image; higher rates are not reached and "
                     "shown as n/a, never extrapolated")

    return EvalReport(
        root=index.root, model_version=model.version, device=predictor.device_description,
        views=sorted(wanted_views) if wanted_views is not None else ["all"],
        held_out_rule=held.rule, held_out_description=held.description,
        patients=len(patients_done), images=len(image_records), images_with_lesions=len(image_dice),
        dice_mean=_mean(image_dice), iou_mean=_mean(image_iou),
        dice_mean_per_lesion=_mean([r["dice"] for r in lesion_records]),
        iou_mean_per_lesion=_mean([r["iou"] for r in lesion_records]),
        lesion_sensitivity=n_detected / n_lesions if n_lesions else None,
        fp_per_image=n_fp / len(image_records),
        lesions=n_lesions, lesions_detected=n_detected, false_positives=n_fp,
        auc=auc, auc_ci=tuple(auc_ci), sensitivity=sens, specificity=spec, malignancy_threshold=MALIGNANCY_THRESHOLD,
        abnormalities_scored=len(lesion_records), malignant=int(sum(labels)), benign=len(labels) - int(sum(labels)),
        case_auc=case_auc, case_auc_ci=tuple(case_ci),
        pixel_accuracy=correct_pixels / total_pixels if total_pixels else None,
        pixel_accuracy_all_background=1 - lesion_pixels / total_pixels if total_pixels else None,
        pixels=total_pixels, lesion_pixel_fraction=lesion_pixels / total_pixels if total_pixels else None,
        per_type=per_type, abnormalities_with_problems=problems, images_skipped=dict(skipped),
        segmentation_threshold=threshold, min_lesion_mm2=predictor.config.min_lesion_mm2,
        data_fingerprint=fingerprint, seconds=time.perf_counter() - start, notes=notes,
        per_image=image_records, per_abnormality=lesion_records, errors=image_errors,
        operating_point=operating, sensitivity_at_operating_point=op_sens, specificity_at_operating_point=op_spec,
        ece=ece, ece_uncalibrated=ece_raw, reliability=reliability, reliability_uncalibrated=reliability_raw,
        calibration=card.calibration.to_json() if card.calibration is not None else None, froc=froc,
        model_card=model.card.to_json(), two_pass=model.two_pass,
        passes=passes(model.card, model.fine.card if model.fine is not None else None),
        fine_tiles_median=(float(np.median([r["fine_tiles"] for r in image_records])) if model.two_pass else None),
    )


__all__ = ["EvalProgress", "EvalReport", "HeldOut", "calibration_text", "dataset_fingerprint", "evaluate",
           "fitted_patients", "froc_text", "held_out_for_model", "held_out_patients", "operating_point_text",
           "passes_line", "truth_malignancy"]
