"""What a folder holds before anything trains on it: layout, counts, problems, and whether it can be trained on.

The retrain dialog shows this before a run starts; ``summarize_folder`` is the
same index the training uses (:func:`model.data.study_index.build_index`), counted,
and the same image selection (:func:`model.data.selection.select_images`), so the
summary never promises images the training would then leave out.

Problems are of two kinds: ``mask`` (an abnormality that cannot be used: a
mask of another size than its image, a missing or non-binary mask, or a CSV
row whose truth is not known, such as an unknown pathology; the CSV row is
named) and ``file`` (a file the index skipped: unreadable, truncated, not an
image, listed in a CSV but not on disk, an unreadable CSV or an unusable CSV
row). ``benign`` counts BENIGN and BENIGN_WITHOUT_CALLBACK only: an
abnormality of unknown pathology is neither malignant nor benign.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from model.data.cbis_ddsm import is_benign
from model.data.study_index import ScanProgress, StudyIndex, build_index
from model.errors import Cancelled

MIN_PATIENTS = 2  # a patient-level split needs one patient on each side


@dataclass
class FolderProblem:
    kind: str  # "mask" | "file"
    where: str  # a file path, or the CSV row ("mass_case_description_train_set.csv row 4")
    reason: str  # one line


@dataclass
class FolderSummary:
    root: str
    layout: str  # model.data.study_index.LAYOUTS
    views: tuple[str, ...]  # the views training would use
    patients: int
    images: int
    cc_images: int
    mlo_images: int
    images_with_ground_truth: int  # a description CSV or labels.csv covers them (no rows: lesion-free)
    usable_images: int  # labelled images in ``views`` whose masks are all usable: what training takes
    usable_patients: int
    lesion_free_images: int  # labelled, without abnormalities
    lesions: int
    malignant: int
    benign: int
    mass: int
    calcification: int
    problems: list[FolderProblem] = field(default_factory=list)
    trainable: bool = False
    reasons: list[str] = field(default_factory=list)  # why not trainable; empty when trainable
    fingerprint: str = ""  # model.evaluate.evaluation.dataset_fingerprint: the hash of the (patient, file) list
    files_scanned: int = 0
    seconds: float = 0.0

    @property
    def mask_problems(self) -> int:
        return sum(p.kind == "mask" for p in self.problems)

    @property
    def skipped_files(self) -> int:
        return sum(p.kind == "file" for p in self.problems)

    @property
    def problem_counts(self) -> dict[str, int]:
        return {"mask": self.mask_problems, "file": self.skipped_files}

    def to_json(self) -> dict:
        out = asdict(self)
        out["views"] = list(self.views)
        out["problem_counts"] = self.problem_counts
        return out

    @classmethod
    def from_json(cls, data: dict) -> "FolderSummary":
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        values["views"] = tuple(values.get("views", ()))
        values["problems"] = [FolderProblem(**p) for p in values.get("problems", [])]
        return cls(**values)

    def text(self, *, max_problems: int = 20) -> str:
        """A few readable lines, for the dialog and the terminal."""
        views = "/".join(self.views)
        lines = [
            f"{self.root} ({self.layout})",
            f"  {self.patients} patients, {self.images} images ({self.cc_images} CC, {self.mlo_images} MLO); "
            f"{self.images_with_ground_truth} with ground truth",
            f"  {self.lesions} lesions: {self.malignant} malignant, {self.benign} benign; "
            f"{self.mass} mass, {self.calcification} calcification",
            f"  usable for training: {self.usable_images} labelled {views} images of {self.usable_patients} patients "
            f"({self.lesion_free_images} lesion-free)",
            f"  problems: {self.mask_problems} masks, {self.skipped_files} files",
        ]
        for p in self.problems[:max_problems]:
            lines.append(f"    {p.kind}: {p.where}: {p.reason}")
        if len(self.problems) > max_problems:
            lines.append(f"    ... and {len(self.problems) - max_problems} more")
        if self.trainable:
            lines.append("  trainable: yes")
        else:
            lines += [f"  not trainable: {r}" for r in self.reasons]
        return "\n".join(lines)


def summarize_index(index: StudyIndex, *, views: Iterable[str] = ("CC",)) -> FolderSummary:
    """Count an index already built (the dialog may have one)."""
    from model.evaluate.evaluation import dataset_fingerprint
    from model.data.selection import select_images

    wanted = tuple(v.strip().upper() for v in views if v and v.strip())
    abnormalities = [a for i in index.images for a in i.abnormalities]
    malignant = sum(a.malignant for a in abnormalities)
    benign = sum(is_benign(a.pathology) for a in abnormalities)  # an unknown pathology is neither (it is a problem)
    problems = [FolderProblem("mask", a.source or i.path, a.problem or "ROI mask missing")
                for i in index.images for a in i.abnormalities if a.problem or not a.mask_path]
    problems += [FolderProblem("file", s.path, s.reason) for s in index.skipped]
    usable, _ = select_images(index, wanted)
    usable_patients = {i.patient_id for i in usable}
    view_names = "/".join(wanted) or "selected"

    reasons = []
    labelled = [i for i in index.images if i.gt_known and (i.view or "").upper() in wanted]
    if not index.images:
        reasons.append(f"no mammograms found under {index.root}")
    elif not labelled:
        reasons.append(f"no labelled {view_names} image: the folder's layout ({index.layout}) gives no ground truth "
                       f"for its {view_names} views")
    elif not usable:
        reasons.append(f"every labelled {view_names} image has an unusable mask")
    elif not any(i.abnormalities for i in usable):
        reasons.append(f"no usable lesion among the labelled {view_names} images: nothing to learn the segmentation from")
    if usable and len(usable_patients) < MIN_PATIENTS:
        reasons.append(f"{len(usable_patients)} patient with usable {view_names} images: a patient-level split needs "
                       f"at least {MIN_PATIENTS}")

    return FolderSummary(
        root=index.root, layout=index.layout, views=wanted,
        patients=len({i.patient_id for i in index.images}), images=len(index.images),
        cc_images=sum((i.view or "").upper() == "CC" for i in index.images),
        mlo_images=sum((i.view or "").upper() == "MLO" for i in index.images),
        images_with_ground_truth=sum(i.gt_known for i in index.images),
        usable_images=len(usable), usable_patients=len(usable_patients),
        lesion_free_images=sum(not i.abnormalities for i in usable),
        lesions=len(abnormalities), malignant=malignant, benign=benign,
        mass=sum(a.type == "mass" for a in abnormalities),
        calcification=sum(a.type == "calcification" for a in abnormalities),
        problems=problems, trainable=not reasons, reasons=reasons,
        fingerprint=dataset_fingerprint(index), files_scanned=index.files_scanned,
    )


def summarize_folder(
    root: str | Path,
    *,
    views: Iterable[str] = ("CC",),
    progress: Callable[[ScanProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    workers: int = 4,
) -> FolderSummary:
    """Index ``root`` and count it. Raises FileNotFoundError for a missing folder, Cancelled when stopped."""
    start = time.perf_counter()
    index = build_index(root, progress=progress, should_stop=should_stop, workers=workers)
    if should_stop and should_stop():
        raise Cancelled("folder summary cancelled")
    summary = summarize_index(index, views=views)
    summary.seconds = time.perf_counter() - start
    return summary


__all__ = ["FolderProblem", "FolderSummary", "summarize_folder", "summarize_index"]
