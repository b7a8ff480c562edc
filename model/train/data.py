"""Training data: cases from an index, preprocessed once and cached on disk, ROIs sampled around lesions.

* Cases come from :func:`model.data.study_index.build_index` (CBIS-DDSM, the Kaggle
  copy, or a site's labelled folder). CC views by default, as in the paper.
* Images with a flagged problem (a mask of another size, an unreadable file)
  are left out and counted (:func:`model.data.selection.select_images`); an
  image with several abnormalities trains on the union of their masks.
* Each image goes through the shared preprocessing once; the working image and
  its mask are cached as ``.npy`` files and memory-mapped, so epochs never
  decode a 30 MB DICOM again.
* Samples follow the paper: a tile centred on each abnormality, expanded
  ``augment_factor`` times by :mod:`model.train.augment` (index -> case, transform).
  Ours beyond the paper: a share of lesion-free tiles from normal tissue, so
  whole-view inference learns "nothing here".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from model.train.augment import Transform, sample_roi, transform_for
from model.train.cache import NORMAL_PER_IMAGE, cache_key, holds, tile_count
from model.data.dicom_io import read_image
from model.errors import DataError
from model.fileio import atomic_write_bytes
from model.data.masks import load_truth
from model.data.preprocess import PreprocessConfig, prepare
from model.data.selection import CaseReport
from model.data.study_index import IndexedImage


@dataclass
class Lesion:
    center: tuple[float, float]  # working-image (x, y)
    malignant: bool
    type: str


@dataclass
class PreparedImage:
    """One image after preprocessing, backed by memory-mapped files."""

    key: str
    folder: Path
    patient_id: str
    lesions: list[Lesion]
    normal_centers: list[tuple[float, float]]
    shape: tuple[int, int]
    _arrays: dict = field(default_factory=dict, repr=False)

    def array(self, name: str) -> np.ndarray:
        if name not in self._arrays:  # opened lazily, once per process (DataLoader workers included)
            self._arrays[name] = np.load(self.folder / f"{self.key}.{name}.npy", mmap_mode="r", allow_pickle=False)
        return self._arrays[name]

    @property
    def working(self) -> np.ndarray:
        return self.array("image")

    @property
    def mask(self) -> np.ndarray:
        return self.array("mask")


def _save_npy(path: Path, array: np.ndarray) -> None:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def _normal_centers(breast: np.ndarray, lesion_mask: np.ndarray, tile: int, count: int, seed: int) -> list[tuple[float, float]]:
    """Centres inside the breast whose tile holds no lesion pixel."""
    h, w = breast.shape
    near_lesion = cv2.dilate(lesion_mask.astype(np.uint8), np.ones((tile // 2 * 2 + 1, tile // 2 * 2 + 1), np.uint8)) > 0 if lesion_mask.any() else np.zeros_like(breast)
    core = cv2.erode(breast.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    ys, xs = np.nonzero(core & ~near_lesion)
    if ys.size == 0:
        return []
    rng = np.random.default_rng(seed)
    pick = rng.choice(ys.size, size=min(count, ys.size), replace=False)
    return [(float(xs[i]), float(ys[i])) for i in pick]


def prepare_image(image: IndexedImage, preprocess: PreprocessConfig, tile: int, cache_dir: Path,
                  normal_per_image: int = NORMAL_PER_IMAGE) -> PreparedImage:
    """Preprocess one image (or find it in the cache). Raises DataError for bad files (an image that cannot be read,
    a mask of another size)."""
    key = cache_key(image, preprocess, tile)
    meta_path = cache_dir / f"{key}.json"
    if holds(key, cache_dir):
        meta = json.loads(meta_path.read_text())
        return PreparedImage(key, cache_dir, meta["patient_id"], [Lesion(tuple(l["center"]), l["malignant"], l["type"]) for l in meta["lesions"]],
                             [tuple(c) for c in meta["normal_centers"]], tuple(meta["shape"]))
    mammogram = read_image(image.path)
    working, geometry, region = prepare(mammogram.monochrome2(), mammogram.header.pixel_spacing_mm, preprocess)
    breast = geometry.to_working(region.mask)
    union = np.zeros(working.shape, bool)
    lesions = []
    for truth in load_truth(image, strict=True).usable:  # a mask that cannot be read leaves the image out
        a = truth.abnormality
        m = geometry.to_working(truth.mask)
        if not m.any():
            continue
        union |= m
        ys, xs = np.nonzero(m)
        lesions.append(Lesion((float(xs.mean()), float(ys.mean())), bool(a.malignant), a.type))
    seed = int(key[:8], 16)
    normal = _normal_centers(breast, union, tile, normal_per_image, seed)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _save_npy(cache_dir / f"{key}.image.npy", working.astype(np.float16))
    _save_npy(cache_dir / f"{key}.mask.npy", union.astype(np.uint8))
    meta = {"patient_id": image.patient_id, "path": image.path, "shape": list(working.shape), "normal_centers": normal,
            "lesions": [{"center": list(l.center), "malignant": l.malignant, "type": l.type} for l in lesions]}
    atomic_write_bytes(meta_path, json.dumps(meta).encode())
    return PreparedImage(key, cache_dir, image.patient_id, lesions, normal, tuple(working.shape))


@dataclass(frozen=True)
class Sample:
    image: int  # index into the prepared images
    center: tuple[float, float]
    malignant: bool
    lesion: bool  # False: a lesion-free tile from normal tissue


def build_samples(images: list[PreparedImage], normal_ratio: float, seed: int = 0) -> list[Sample]:
    """One sample per lesion, plus ``normal_ratio`` x as many lesion-free tiles."""
    samples = [Sample(i, l.center, l.malignant, True) for i, im in enumerate(images) for l in im.lesions]
    pool = [Sample(i, c, False, False) for i, im in enumerate(images) for c in im.normal_centers]
    wanted = tile_count(len(samples), len(pool), normal_ratio) - len(samples)
    if wanted:
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(pool), size=wanted, replace=False)
        samples += [pool[i] for i in sorted(picks)]
    return samples


class RoiDataset(Dataset):
    """Virtual dataset: index -> (sample, transform id). Nothing augmented is ever written to disk."""

    def __init__(self, images: list[PreparedImage], samples: list[Sample], tile: int, augment_factor: int = 40):
        self.images, self.samples, self.tile, self.factor = images, samples, tile, max(1, augment_factor)

    def __len__(self) -> int:
        return len(self.samples) * self.factor

    def transform(self, index: int) -> Transform:
        return transform_for(index % self.factor)

    def __getitem__(self, index: int):
        sample = self.samples[index // self.factor]
        prepared = self.images[sample.image]
        image, mask = sample_roi(prepared.working, prepared.mask, sample.center, self.tile, self.transform(index), seed=index)
        return (torch.from_numpy(image[None]), torch.from_numpy(mask[None].astype(np.float32)),
                torch.tensor(float(sample.malignant)), torch.tensor(float(sample.lesion)))


def prepare_all(images: list[IndexedImage], preprocess: PreprocessConfig, tile: int, cache_dir: Path,
                report: CaseReport, progress=None) -> list[PreparedImage]:
    prepared = []
    for i, image in enumerate(images, 1):
        try:
            prepared.append(prepare_image(image, preprocess, tile, cache_dir))
        except (DataError, OSError) as exc:  # an image or mask that cannot be read, or a mask of another size
            report.left_out.append({"path": image.path, "reason": getattr(exc, "reason", str(exc))})
            report.images_used -= 1
        if progress:
            progress(i, len(images))
    return prepared
