"""Index a folder of mammograms: a CBIS-DDSM download, its Kaggle JPEG copy, or a site's DICOMs.

The index is what the worklist, inference, training and evaluation start from:
one :class:`IndexedImage` per full mammogram, with its patient, side, view,
size and ground-truth abnormalities, plus the files that were skipped and why.

How CBIS-DDSM is mapped (``shared/spec/cbis-ddsm.md``):

* every file's header is read (``stop_before_pixels``); CSV paths are mapped to
  files by the SeriesInstanceUID inside them, never by folder names;
* the retriever's ``metadata.csv`` and Kaggle's ``dicom_info.csv`` add series
  UIDs and descriptions for files that do not carry them (JPEGs);
* which of an abnormality's two files is the ROI mask is decided by content:
  the binary one; a mask whose size differs from its image is flagged, never
  resized.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from model.data import cbis_ddsm
from model.data.cbis_ddsm import DescriptionRow, SeriesLocation
from model.data.cbis_ddsm import is_malignant
from model.data.csv_input import CsvPathError, resolve_inside
from model.data.dicom_fields import name_side_view, patient_from_name
from model.data.dicom_io import read_header, read_image
from model.data.mammogram import ImageHeader
from model.data.read_failures import os_error_reason, special_file_reason
from model.data.folder_csvs import read_folder_csvs
from model.errors import ImageReadError
from model.data.labelled_folder import LabelRow

# What kind of folder an index came from (:func:`detect_layout`).
LAYOUTS = ("cbis-ddsm", "kaggle-jpeg", "labelled-folder", "dicom-only", "empty")

# Files a folder scan passes over without listing them as skipped.
_QUIET_SUFFIXES = (".csv", ".md", ".txt", ".json", ".xml", ".html", ".pdf", ".log", ".ini", ".db", ".sqlite")


@dataclass
class Abnormality:
    """One ground-truth abnormality of an image (one CSV row)."""

    id: int
    type: str  # "mass" | "calcification"
    pathology: str  # as written in the CSV
    malignant: bool
    mask_path: str | None
    problem: str | None = None
    crop_path: str | None = None
    assessment: int | None = None
    subtlety: int | None = None
    breast_density: int | None = None
    mass_shape: str | None = None
    mass_margins: str | None = None
    calc_type: str | None = None
    calc_distribution: str | None = None
    source: str | None = None  # "mass_case_description_train_set.csv row 17"


@dataclass
class IndexedImage:
    """One full mammogram."""

    path: str
    patient_id: str
    laterality: str | None
    view: str | None
    rows: int
    columns: int
    pixel_spacing_mm: tuple[float, float] | None = None
    abnormalities: list[Abnormality] = field(default_factory=list)
    gt_known: bool = False  # True when a description CSV covers this patient: no rows means no lesion
    subject: str | None = None  # CBIS-DDSM subject ("Mass-Training_P_00001_LEFT_CC")
    series_uid: str | None = None
    photometric: str = "MONOCHROME2"

    @property
    def name(self) -> str:
        side = {"L": "L", "R": "R"}.get(self.laterality or "", "?")
        return f"{side}{self.view or '?'}"

    @property
    def malignant(self) -> bool | None:
        if not self.abnormalities:
            return False if self.gt_known else None
        return any(a.malignant for a in self.abnormalities)


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class ScanProgress:
    """One progress event of :func:`build_index` (for a progress bar or a log)."""

    stage: str  # "listing", "headers", "masks", "done"
    done: int
    total: int
    elapsed_s: float
    # Images complete from now on (truth and masks decided), a whole patient at a time, in the index's
    # order: a worklist can list these patients while the rest is still being indexed.
    ready: list["IndexedImage"] = field(default_factory=list)


@dataclass
class StudyIndex:
    root: str
    images: list[IndexedImage]
    skipped: list[Skipped]
    description_csvs: list[str] = field(default_factory=list)
    files_scanned: int = 0
    header_scan_s: float = 0.0
    layout: str = "dicom-only"  # one of LAYOUTS

    def patients(self) -> dict[str, list[IndexedImage]]:
        groups: dict[str, list[IndexedImage]] = defaultdict(list)
        for image in self.images:
            groups[image.patient_id].append(image)
        return dict(groups)

    def to_json(self) -> dict:
        return {
            "root": self.root,
            "images": [_image_json(i) for i in self.images],
            "skipped": [asdict(s) for s in self.skipped],
            "description_csvs": self.description_csvs,
            "files_scanned": self.files_scanned,
            "layout": self.layout,
        }

    def summary(self) -> str:
        patients = self.patients()
        abn = [a for i in self.images for a in i.abnormalities]
        problems = [a for a in abn if a.problem]
        malignant = sum(a.malignant for a in abn)
        lines = [
            f"{self.root} ({self.layout})",
            f"  {len(patients)} patients, {len(self.images)} images "
            f"({sum(i.view == 'CC' for i in self.images)} CC, {sum(i.view == 'MLO' for i in self.images)} MLO)",
            f"  {len(abn)} abnormalities: {sum(a.type == 'mass' for a in abn)} mass, "
            f"{sum(a.type == 'calcification' for a in abn)} calcification; {malignant} malignant, "
            f"{sum(cbis_ddsm.is_benign(a.pathology) for a in abn)} benign",
            f"  {len(problems)} with problems, {len(self.skipped)} files skipped, "
            f"{self.files_scanned} files scanned in {self.header_scan_s:.1f} s",
        ]
        for a in problems[:20]:
            lines.append(f"  problem: {a.source}: {a.problem}")
        for s in self.skipped[:20]:
            lines.append(f"  skipped: {s.path}: {s.reason}")
        if len(self.skipped) > 20:
            lines.append(f"  ... and {len(self.skipped) - 20} more skipped")
        return "\n".join(lines)


def _image_json(image: IndexedImage) -> dict:
    out = asdict(image)
    out["pixel_spacing_mm"] = list(image.pixel_spacing_mm) if image.pixel_spacing_mm else None
    return out


def index_from_json(data: dict) -> StudyIndex:
    images = []
    for item in data["images"]:
        item = dict(item)
        item["abnormalities"] = [Abnormality(**a) for a in item.get("abnormalities", [])]
        spacing = item.get("pixel_spacing_mm")
        item["pixel_spacing_mm"] = tuple(spacing) if spacing else None
        images.append(IndexedImage(**item))
    return StudyIndex(
        root=data.get("root", ""),
        images=images,
        skipped=[Skipped(**s) for s in data.get("skipped", [])],
        description_csvs=data.get("description_csvs", []),
        files_scanned=data.get("files_scanned", 0),
        layout=data.get("layout", "dicom-only"),
    )


def detect_layout(csv_kinds: Iterable[str], images: int) -> str:
    """The folder's layout from the kinds of CSV found in it (:func:`model.data.csv_kinds.csv_kind`) and its image count.

    ``kaggle-jpeg``: description CSVs with Kaggle's ``dicom_info.csv``;
    ``cbis-ddsm``: description CSVs (with or without the retriever's
    ``metadata.csv``); ``labelled-folder``: a site's ``labels.csv``;
    ``dicom-only``: images without any labels; ``empty``: neither.
    """
    kinds = set(csv_kinds)
    if kinds & {"mass", "calc"}:
        return "kaggle-jpeg" if "dicom_info" in kinds else "cbis-ddsm"
    if "labels" in kinds:
        return "labelled-folder"
    return "dicom-only" if images else "empty"


# ---------------------------------------------------------------------------
# scanning


def list_files(root: Path, skipped: list[Skipped] | None = None) -> tuple[list[Path], list[Path]]:
    """(image candidates, CSVs) under root, sorted; hidden files and folders are passed over.

    Only regular files (or links to them) are listed: a named pipe would block its reader for ever. What
    cannot be listed or read goes to ``skipped`` with the reason: a folder without permission (its files
    left out), a named pipe, socket or device, a broken or looping link, a link to a folder (not followed).
    """
    candidates: list[Path] = []
    csvs: list[Path] = []
    note = skipped.append if skipped is not None else (lambda item: None)
    stack = [Path(root)]
    while stack:  # depth first, files of a folder before its subfolders, all sorted (as os.walk lists them)
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            note(Skipped(str(folder), f"folder cannot be read ({os_error_reason(exc)}); its files are left out"))
            continue
        subfolders = []
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            path = folder / name
            try:
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append(path)
                elif entry.is_file():  # follows a link to a regular file
                    if name.lower().endswith(".csv"):
                        csvs.append(path)
                    elif not name.lower().endswith(_QUIET_SUFFIXES):
                        candidates.append(path)
                elif entry.is_symlink():
                    mode = _stat_mode(path)
                    if mode is None:
                        note(Skipped(str(path), _link_reason(path)))
                    elif stat.S_ISDIR(mode):
                        note(Skipped(str(path), "link to a folder; not followed"))
                    else:
                        note(Skipped(str(path), special_file_reason(mode)))
                else:
                    note(Skipped(str(path), special_file_reason(entry.stat(follow_symlinks=False).st_mode)))
            except OSError as exc:
                note(Skipped(str(path), os_error_reason(exc)))
        stack += reversed(subfolders)
    return candidates, csvs


def _resolved(path: str | Path) -> Path:
    """The absolute path, links resolved where they can be (a link loop is kept as it is, and reported later)."""
    path = Path(path).expanduser()
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _stat_mode(path: Path) -> int | None:
    """The file mode of path (links followed), or None when it cannot be had (gone, no permission, a loop)."""
    try:
        return os.stat(path).st_mode
    except (OSError, ValueError):
        return None


def _link_reason(path: Path) -> str:
    try:
        os.stat(path)
    except OSError as exc:
        return "broken symbolic link (its target is missing)" if isinstance(exc, FileNotFoundError) else os_error_reason(exc)
    return "symbolic link that cannot be followed"


def scan_headers(paths: Iterable[Path], *, workers: int = 4) -> Iterator[ImageHeader | Skipped]:
    """Read each file's header; yields a header or a :class:`Skipped`, in input order."""

    def one(path: Path) -> ImageHeader | Skipped:
        try:
            return read_header(path)
        except ImageReadError as exc:
            return Skipped(str(path), exc.reason)
        except Exception as exc:  # a reader bug must not stop the scan either
            return Skipped(str(path), f"unexpected error while reading the header ({type(exc).__name__})")

    paths = list(paths)
    if workers <= 1 or len(paths) < 64:
        yield from map(one, paths)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(one, paths, chunksize=16)


def _is_binary(pixels: np.ndarray) -> bool:
    """Two-valued, allowing for lossy compression (Kaggle's JPEG masks): 99% of pixels within 10% of either extreme."""
    lo, hi = float(pixels.min()), float(pixels.max())
    if hi <= lo:
        return False
    tol = 0.1 * (hi - lo)
    sample = pixels[:: max(1, pixels.shape[0] // 1024), :: max(1, pixels.shape[1] // 1024)]
    extreme = np.count_nonzero((sample <= lo + tol) | (sample >= hi - tol))
    return extreme >= 0.99 * sample.size


def classify_roi_files(candidates: list[Path], image_shape: tuple[int, int]) -> tuple[Path | None, Path | None, str | None]:
    """Decide by content which candidate is the ROI mask and which the cropped image.

    The mask is the binary image; a binary image of another size than the
    mammogram is still the mask, but flagged (CBIS-DDSM has such pairs, and no
    resize can align them). Returns (mask, crop, problem).
    """
    binary, grey, unreadable = [], [], []
    for path in candidates:
        try:
            pixels = read_image(path).pixels
        except ImageReadError as exc:
            unreadable.append(f"{path.name} ({exc.reason})")
            continue
        (binary if _is_binary(pixels) else grey).append((path, pixels.shape))
    crop = grey[0][0] if grey else None
    same_size = [p for p, shape in binary if shape == image_shape]
    if same_size:
        return same_size[0], crop, None
    if binary:
        path, shape = binary[0]
        return path, crop, (
            f"mask size {shape[0]}x{shape[1]} differs from image size {image_shape[0]}x{image_shape[1]}; "
            "left out, not resized"
        )
    if unreadable:
        return None, crop, "ROI mask unreadable: " + "; ".join(unreadable)
    if not candidates:
        return None, None, "ROI mask file not found on disk"
    return None, crop, "no binary ROI mask among the files listed for this abnormality"


class _Resolver:
    """Maps CSV paths (Subject/StudyUID/SeriesUID/file) to files on disk, by SeriesInstanceUID."""

    def __init__(self, root: Path, headers: dict[Path, ImageHeader], locations: list[tuple[Path, SeriesLocation]]):
        self.root = root
        self.by_series: dict[str, list[Path]] = defaultdict(list)
        self.description: dict[Path, str | None] = {}
        for path, header in headers.items():
            if header.series_uid:
                self.by_series[header.series_uid].append(path)
            self.description[path] = header.series_description
        # metadata.csv / dicom_info.csv: fill in what the headers lack (JPEGs carry no UIDs).
        by_folder: dict[Path, list[Path]] = defaultdict(list)
        for path in headers:
            by_folder[path.parent].append(path)
        for base, loc in locations:
            target = base / loc.folder_or_file
            found = [target] if target in headers else by_folder.get(target, [])
            for p in found:
                if p not in self.by_series[loc.series_uid]:
                    self.by_series[loc.series_uid].append(p)
                if not self.description.get(p):
                    self.description[p] = loc.description
        for uid, paths in self.by_series.items():
            paths.sort(key=lambda p: (headers[p].instance_number or 0, p.name))

    def files(self, csv_path: str, bases: list[Path], what: str = "path") -> list[Path]:
        """The files a CSV path names. Raises CsvPathError when it leads outside the root from every base."""
        inside, refused = [], None
        for base in bases:
            try:
                inside.append(resolve_inside(self.root, base, csv_path, what=what))
            except CsvPathError as exc:
                refused = refused or exc
        if refused and not inside:
            raise refused
        uid = cbis_ddsm.series_uid_of(csv_path)
        if uid and uid in self.by_series:
            return list(self.by_series[uid])
        for direct in inside:  # a layout that keeps the CSV's own UID paths; only files the scan listed
            if direct in self.description:
                return [direct]
        return []


def _csv_bases(root: Path, csv_path: Path) -> list[Path]:
    bases = [root, root / "CBIS-DDSM", csv_path.parent, csv_path.parent.parent]
    return list(dict.fromkeys(b for b in bases if b.is_dir() and b.is_relative_to(root)))


def build_index(
    root: str | Path | list[str | Path] | tuple[str | Path, ...],
    *,
    progress: Callable[[ScanProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    workers: int = 4,
) -> StudyIndex:
    """Index ``root``: a folder, a single image file, or a list of files and folders (files opened together).

    Never raises for bad files: they go to ``skipped``.
    """
    start = time.perf_counter()
    report = progress or (lambda event: None)
    paths = [_resolved(p) for p in root] if isinstance(root, (list, tuple)) else [_resolved(root)]
    if not paths:
        raise FileNotFoundError("nothing to open")
    candidates, csvs = [], []
    unlisted: list[Skipped] = []  # what the listing could not read (folders, pipes, links), with the reason
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} does not exist") from None
        except (OSError, ValueError) as exc:  # no permission on its folder, a link loop, ...
            unlisted.append(Skipped(str(path), os_error_reason(exc) if isinstance(exc, OSError) else "unusable name"))
            continue
        if stat.S_ISREG(mode):
            candidates.append(path)
        elif stat.S_ISDIR(mode):
            found, found_csvs = list_files(path, unlisted)
            candidates += found
            csvs += found_csvs
        else:
            unlisted.append(Skipped(str(path), special_file_reason(mode)))
    candidates, csvs = list(dict.fromkeys(candidates)), list(dict.fromkeys(csvs))
    root = paths[0] if len(paths) == 1 else Path(os.path.commonpath(paths))
    if len(paths) > 1 and not stat.S_ISDIR(_stat_mode(root) or 0):
        root = root.parent
    report(ScanProgress("listing", len(candidates), len(candidates), time.perf_counter() - start))

    # CSVs, by their columns: each is read or listed as unreadable with the reason; unusable rows are listed too.
    found = read_folder_csvs(csvs, root)
    descriptions: list[tuple[Path, list[DescriptionRow]]] = found.descriptions
    label_rows: list[LabelRow] = found.label_rows
    locations: list[tuple[Path, SeriesLocation]] = found.locations
    skipped: list[Skipped] = unlisted + [Skipped(path, reason) for path, reason in found.skipped]
    kinds: set[str] = found.kinds

    # Headers.
    headers: dict[Path, ImageHeader] = {}
    scan_start = time.perf_counter()
    for i, result in enumerate(scan_headers(candidates, workers=workers), 1):
        if isinstance(result, Skipped):
            skipped.append(result)
        else:
            headers[result.path] = result
        if i % 50 == 0 or i == len(candidates):
            report(ScanProgress("headers", i, len(candidates), time.perf_counter() - start))
            if should_stop and should_stop():
                break
    scan_s = time.perf_counter() - scan_start

    resolver = _Resolver(root, headers, locations)
    images: dict[Path, IndexedImage] = {}
    roi_files: set[Path] = set()
    gt_patients = {row.patient_id for _, rows in descriptions for row in rows if row.patient_id}

    # Ground truth from the description CSVs (each row names an image: read_folder_csvs listed the others). A row
    # with a problem still marks its image (never lesion-free); a row whose image path leads outside the folder
    # names no usable image, as a row without one does (FolderCsvs.row_without_image says what that leaves unsure).
    pending: list[tuple[IndexedImage, Abnormality, list[Path]]] = []
    for csv_path, rows in descriptions:
        bases = _csv_bases(root, csv_path)
        for row in rows:
            try:
                image_files = resolver.files(row.image_path, bases, "image file path")
            except CsvPathError as exc:
                skipped.append(Skipped(*found.row_without_image(csv_path, row.row, exc.reason, row.patient_id)))
                continue
            image_file = next((p for p in image_files if p in headers), None)
            if image_file is None:  # the image it meant may be in the folder under another path: not lesion-free
                found.unsure(row.patient_id, row.side, row.view)
                skipped.append(Skipped(row.image_path, f"listed in {row.csv_name} (row {row.row}) but not found on disk"))
                continue
            header = headers[image_file]
            image = images.get(image_file)
            if image is None:
                patient = row.patient_id or patient_from_name(row.image_subject) or header.patient_id or image_file.parent.name
                image = images[image_file] = _indexed(header, patient, row.image_subject, True)
                if image.laterality is None:
                    image.laterality = row.side
                if image.view is None:
                    image.view = row.view
            roi, problems = [], [row.problem] if row.problem else []
            for ref, column in zip(row.crop_or_mask_paths, ("cropped image file path", "ROI mask file path")):
                if ref:
                    try:
                        roi += [p for p in resolver.files(ref, bases, column) if p != image_file and p not in roi]
                    except CsvPathError as exc:
                        problems.append(exc.reason)
            roi_files.update(roi)
            abnormality = Abnormality(
                id=row.abnormality_id or len(image.abnormalities) + 1, type=row.abnormality_type, pathology=row.pathology,
                malignant=row.malignant, mask_path=None, problem="; ".join(problems) or None, assessment=row.assessment,
                subtlety=row.subtlety, breast_density=row.breast_density,
                mass_shape=row.mass_shape, mass_margins=row.mass_margins, calc_type=row.calc_type,
                calc_distribution=row.calc_distribution, source=f"{row.csv_name} row {row.row}",
            )
            image.abnormalities.append(abnormality)
            pending.append((image, abnormality, roi))

    # A site's labelled folder: the CSV names image and mask files directly.
    unknown_view: set[Path] = set()
    for row in label_rows:
        header = headers.get(row.image)
        if header is None:
            found.unsure(row.patient, row.laterality, row.view)  # as a description row whose image is not found
            reason = "unreadable" if any(s.path == str(row.image) for s in skipped) else "not found"
            skipped.append(Skipped(str(row.image), f"listed in {row.csv_name} (row {row.row}) but {reason}"))
            continue
        image = images.get(row.image)
        if image is None and row.image not in unknown_view:
            patient = row.patient or patient_from_name(header.patient_id or "") or header.patient_id or row.image.parent.name
            image = images[row.image] = _indexed(header, patient, None, True)
            image.laterality = image.laterality or row.laterality
            image.view = image.view or row.view
            reason = _unknown_view_reason(header, image)
            if reason:  # listed as skipped; its mask is not an image of its own either
                del images[row.image]
                unknown_view.add(row.image)
                skipped.append(Skipped(str(row.image), reason))
        if row.mask:
            roi_files.add(row.mask)  # never an image of its own, whether or not its image is listed
        if row.image in unknown_view or row.normal:
            continue
        mask_header = headers.get(row.mask) if row.mask else None
        if row.problem:  # a problem row (unknown pathology, lesion without mask, ...) keeps its image off "lesion-free"
            problem = row.problem
        elif mask_header is None:
            problem = "mask file missing or unreadable"
        elif mask_header.shape != header.shape:
            problem = (f"mask size {mask_header.rows}x{mask_header.columns} differs from image size "
                       f"{header.rows}x{header.columns}; left out, not resized")
        else:
            problem = None
        image.abnormalities.append(Abnormality(
            id=len(image.abnormalities) + 1, type=row.type, pathology=row.pathology, malignant=is_malignant(row.pathology),
            mask_path=str(row.mask) if mask_header else None, problem=problem, source=f"{row.csv_name} row {row.row}",
        ))
    gt_patients |= {row.patient for row in label_rows if row.patient}
    # An unreadable truth CSV, or a row that names no usable image, may have listed any of these: not lesion-free.
    gt_patients = found.lesion_free_known(gt_patients)

    # Full mammograms that no CSV row lists: a site's own DICOMs, or the clean views of a CBIS patient.
    for path, header in headers.items():
        if path in images or path in roi_files:
            continue
        description = (resolver.description.get(path) or "").strip().lower()
        if description in (cbis_ddsm.CROP_SERIES.lower(), cbis_ddsm.MASK_SERIES.lower()):
            continue
        subject = header.patient_id if header.patient_id and patient_from_name(header.patient_id) else None
        patient = patient_from_name(header.patient_id or "") or header.patient_id or patient_from_name(str(path)) or path.parent.name
        image = _indexed(header, patient, subject, False)
        image.gt_known = found.lesion_free(patient, image.laterality, image.view, gt_patients)
        reason = _unknown_view_reason(header, image)
        if reason:
            skipped.append(Skipped(str(path), reason))
        else:
            images[path] = image

    # Masks by content (reads pixels; the slow part of indexing real CBIS-DDSM), patient by patient in the
    # index's order, so that each patient is reported ready as soon as its masks are decided.
    def decide(item: tuple[IndexedImage, Abnormality, list[Path]]) -> None:
        image, abnormality, roi = item
        mask, crop, problem = classify_roi_files(roi, (image.rows, image.columns))
        abnormality.mask_path = str(mask) if mask else None
        abnormality.crop_path = str(crop) if crop else None
        abnormality.problem = "; ".join(p for p in (abnormality.problem, problem) if p) or None  # the row's own first

    ordered = sorted(images.values(), key=_image_order)
    by_patient: dict[str, list[IndexedImage]] = defaultdict(list)
    for image in ordered:
        by_patient[image.patient_id].append(image)
    order = {patient: n for n, patient in enumerate(by_patient)}
    pending.sort(key=lambda item: order[item[0].patient_id])
    waiting = Counter(item[0].patient_id for item in pending)
    patients = iter(by_patient)
    next_patient = next(patients, None)

    def ready_patients() -> list[IndexedImage]:
        """Images of the patients, in order, whose masks are all decided and not yet reported."""
        nonlocal next_patient
        out: list[IndexedImage] = []
        while next_patient is not None and waiting[next_patient] == 0:
            out += by_patient[next_patient]
            next_patient = next(patients, None)
        return out

    report(ScanProgress("masks", 0, len(pending), time.perf_counter() - start, ready_patients()))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, item in enumerate(zip(pending, pool.map(decide, pending)), 1):
            waiting[item[0][0].patient_id] -= 1
            if i % 10 == 0 or i == len(pending) or waiting[item[0][0].patient_id] == 0:
                ready = ready_patients()
                if ready or i % 10 == 0 or i == len(pending):
                    report(ScanProgress("masks", i, len(pending), time.perf_counter() - start, ready))

    report(ScanProgress("done", len(ordered), len(ordered), time.perf_counter() - start))
    return StudyIndex(
        root=str(root),
        images=ordered,
        skipped=skipped,
        description_csvs=[str(p) for p, _ in descriptions],
        files_scanned=len(candidates),
        header_scan_s=scan_s,
        layout=detect_layout(kinds, len(ordered)),
    )


def _unknown_view_reason(header: ImageHeader, image: IndexedImage) -> str | None:
    """Why a PNG/JPEG (any non-DICOM image) is not a mammogram of a known view, or None when it is one.

    Such a file has no header to say its side and view; a CSV or its name must. Without them it is not listed:
    the AI would run on a picture that no worklist slot (R CC, L MLO, ...) can hold.
    """
    if header.is_dicom or (image.laterality and image.view):
        return None
    missing = " and ".join(w for w, v in (("laterality", image.laterality), ("view", image.view)) if not v)
    kind = header.path.suffix.lstrip(".").upper() or "image"
    return f"{kind} image with no {missing} from a CSV or its name: not a mammogram of a known view; left out"


def _indexed(header: ImageHeader, patient: str, subject: str | None, gt_known: bool) -> IndexedImage:
    side, view = header.laterality, header.view
    if subject and (side is None or view is None):
        name_side, name_view = name_side_view(subject)
        side, view = side or name_side, view or name_view
    return IndexedImage(
        path=str(header.path), patient_id=patient, laterality=side, view=view, rows=header.rows,
        columns=header.columns, pixel_spacing_mm=header.pixel_spacing_mm, gt_known=gt_known, subject=subject,
        series_uid=header.series_uid, photometric=header.photometric,
    )


_VIEW_ORDER = {"CC": 0, "MLO": 1}


def _image_order(image: IndexedImage) -> tuple:
    return (image.patient_id, {"R": 0, "L": 1}.get(image.laterality or "", 2), _VIEW_ORDER.get(image.view or "", 9), image.path)


def index_json_text(index: StudyIndex) -> str:
    return json.dumps(index.to_json(), indent=1)


__all__ = [
    "LAYOUTS", "Abnormality", "IndexedImage", "ScanProgress", "Skipped", "StudyIndex", "build_index", "classify_roi_files",
    "detect_layout", "index_from_json", "list_files", "scan_headers",
]
