"""Inference on a whole CC view, or on one ROI the reader picks.

Whole view: the shared preprocessing (:mod:`model.data.preprocess`) gives the
working image; 1024x1024 tiles slide over the breast with overlap, tiles
without breast tissue are skipped, and the seams are blended with a window that
fades toward each tile's edges. The probability map goes back to the original
pixel grid; lesions are the connected components of the thresholded mask, each
with its p(malignant) from the head run on a 1024 ROI centred on it, as the
paper trains it. The case score is the highest lesion score.

ROI mode runs one tile centred on a point: the paper's own protocol.

A two-pass model (:attr:`LoadedModel.fine`) searches, then looks closer, as a
radiologist does: the coarse pass above, over the whole breast, proposes
candidates (its lesions); the fine pass runs its own tile, at its own finer
working spacing, centred on each candidate (one tile serves the candidates
near its centre). Inside those tiles the fine probability replaces the coarse
one, so the fine pass refines the outline and drops what it does not confirm;
the lesions are listed from the result on the fine grid, and p(malignant) comes
from the fine head on a tile centred on each. ROI mode uses the fine pass.

Results are cached per (image file, model version, settings), on disk as plain
arrays (``np.load(allow_pickle=False)``) and JSON, so reopening a case costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from model.data.dicom_io import read_image
from model.data.mammogram import Mammogram
from model.data.preprocess import BreastRegion, Geometry, prepare
from model.errors import Cancelled
from model.nn.exported import make_runner
from model.nn.runtime import Runner
from model.fileio import atomic_write_bytes
from model.nn.weights import LoadedModel


@dataclass(frozen=True)
class InferenceConfig:
    tile: int = 1024
    overlap: int = 128
    min_breast_fraction: float = 0.01  # tiles with less breast than this are skipped
    min_lesion_mm2: float = 4.0  # smaller components are noise (a 2.3 mm disc)
    max_lesions: int = 8  # the most confident components get a malignancy score
    batch: int = 1


@dataclass
class Lesion:
    bbox: list[int]  # x0, y0, x1, y1 on the original grid (exclusive ends)
    area_px: int
    area_mm2: float | None
    longest_diameter_px: float
    longest_diameter_mm: float | None
    centroid: list[float]  # x, y on the original grid
    peak_probability: float
    p_malignant: float
    label: str  # "benign" | "malignant"


@dataclass
class ImageResult:
    path: str
    laterality: str | None
    view: str | None
    rows: int
    columns: int
    lesions: list[Lesion]
    case_score: float
    model_version: str
    device: str
    seconds: float
    spacing_mm: float
    spacing_known: bool
    mode: str = "whole"  # "whole" | "roi"
    fine_rois: int = 0  # tiles the fine pass of a two-pass model ran (0: one pass)
    probability: np.ndarray | None = field(default=None, repr=False)  # uint8 0-255 on the working grid
    geometry: Geometry | None = field(default=None, repr=False)
    from_cache: bool = False

    min_lesion_mm2: float = InferenceConfig.min_lesion_mm2  # the lesion rule this result was listed with
    max_lesions: int = InferenceConfig.max_lesions

    def mask(self, threshold: float) -> np.ndarray:
        """The thresholded probability on the original pixel grid, specks included."""
        return self.probability_original() >= int(round(threshold * 255))

    def lesion_mask(self, threshold: float) -> np.ndarray:
        """The predicted lesion mask on the original pixel grid: the components listed in ``lesions`` only
        (specks under ``min_lesion_mm2`` and components past the ``max_lesions`` most confident are left out).
        What the reader sees in yellow and what ``bcir eval`` scores."""
        return self._listed_components(threshold) > 0

    def lesion_labels(self, threshold: float) -> np.ndarray:
        """The listed lesions on the original pixel grid: ``n`` on the pixels of ``lesions[n - 1]``, 0 elsewhere.

        Each lesion's pixels are its own component (the one it was listed from, mapped back as ``lesion_mask``
        maps it), so a lesion split or merged by the mapping is still one lesion. ``threshold`` is the one the
        lesions were listed at. For a result the Predictor made, ``lesion_labels(t) > 0`` is ``lesion_mask(t)``.
        """
        components = self._listed_components(threshold)
        count = int(components.max())
        # Which lesion each component is: the one with its box and area (the list was made from these very pixels).
        ys, xs = np.nonzero(components)
        codes = components[ys, xs]
        by_shape: dict[tuple, list[int]] = {}
        for n, lesion in enumerate(self.lesions, 1):
            by_shape.setdefault((*lesion.bbox, lesion.area_px), []).append(n)
        to_lesion = np.zeros(count + 1, np.uint8)
        for code in range(1, count + 1):
            cy, cx = ys[codes == code], xs[codes == code]
            if cy.size:
                key = (int(cx.min()), int(cy.min()), int(cx.max()) + 1, int(cy.max()) + 1, int(cy.size))
                if by_shape.get(key):
                    to_lesion[code] = by_shape[key].pop(0)
        return to_lesion[components]

    def _listed_components(self, threshold: float) -> np.ndarray:
        """uint8 on the original grid: ``k`` on the pixels of the k-th most confident listed component, else 0."""
        labels, chosen, _ = lesion_components(self.probability, int(round(threshold * 255)),
                                              self.geometry.working_spacing_mm ** 2, self.min_lesion_mm2, self.max_lesions)
        if len(chosen) > 255:  # max_lesions is code's (InferenceConfig), no reader sets it: a bug, so a ValueError
            raise ValueError(f"{len(chosen)} lesions listed: at most 255 can be told apart (max_lesions is "
                             f"{InferenceConfig.max_lesions} by default)")
        code = np.zeros(int(labels.max()) + 1, np.uint8)
        code[[k for _, k in chosen]] = np.arange(1, len(chosen) + 1)
        return self.geometry.to_original(code[labels], nearest=True)

    def probability_original(self) -> np.ndarray:
        """uint8 probability (0-255) on the original pixel grid."""
        return self.geometry.to_original(self.probability).astype(np.uint8, copy=False)

    def to_json(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("probability", "geometry", "lesions")}
        out["lesions"] = [asdict(lesion) for lesion in self.lesions]
        return out


ProgressFn = Callable[[int, int], None]  # (tiles done, tiles total)


def blend_window(height: int, width: int, overlap: int) -> np.ndarray:
    """Weights that fall from 1 in the middle to a small floor at a tile's edges over ``overlap`` pixels."""

    def ramp(n: int) -> np.ndarray:
        r = np.ones(n, np.float32)
        m = min(overlap, n // 2)
        if m > 0:
            edge = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, m + 2, dtype=np.float32)[1:-1])
            r[:m], r[-m:] = np.maximum(edge, 0.02), np.maximum(edge[::-1], 0.02)
        return r

    return np.outer(ramp(height), ramp(width))


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return sorted(set(starts))


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def test_time_flips(card) -> bool:
    """Whether a model card asks for test-time flips (``"inference": {"test_time_flips": true}``): each tile is run
    as is and mirrored left to right, and the two probabilities (mask and malignancy) are averaged."""
    inference = card.data.get("inference")
    return isinstance(inference, dict) and inference.get("test_time_flips") is True


def segment_probability(runner: Runner, batch: torch.Tensor, flips: bool = False) -> np.ndarray:
    """The mask probability (N, H, W) of a batch of tiles; with ``flips``, averaged with the mirrored tiles'."""
    logits, _ = runner.segment(batch)
    prob = torch.sigmoid(logits[:, 0])
    if flips:
        mirrored, _ = runner.segment(torch.flip(batch, dims=[-1]))
        prob = (prob + torch.flip(torch.sigmoid(mirrored[:, 0]), dims=[-1])) / 2
    return prob.numpy()


def malignancy_probability(runner: Runner, batch: torch.Tensor, flips: bool = False) -> np.ndarray:
    """The head's p(malignant) (N,) of a batch of tiles; with ``flips``, averaged with the mirrored tiles'."""
    prob = torch.sigmoid(runner.classify(batch))
    if flips:
        prob = (prob + torch.sigmoid(runner.classify(torch.flip(batch, dims=[-1])))) / 2
    return prob.numpy()


class TiledSegmenter:
    """Slides tiles over a working image; returns the blended lesion probability."""

    def __init__(self, runner: Runner, config: InferenceConfig = InferenceConfig(), multiple: int = 16,
                 flips: bool = False):
        self.runner, self.config, self.multiple, self.flips = runner, config, multiple, flips
        self.last_tile_count = 0  # tiles run by the last call (the rest had no breast)

    def tile_grid(self, breast: np.ndarray) -> tuple[tuple[int, int], list[tuple[int, int]]]:
        h, w = breast.shape
        th = min(self.config.tile, _round_up(h, self.multiple))
        tw = min(self.config.tile, _round_up(w, self.multiple))
        stride_y, stride_x = max(self.multiple, th - self.config.overlap), max(self.multiple, tw - self.config.overlap)
        ph, pw = max(h, th), max(w, tw)
        integral = cv2.integral(np.pad(breast, ((0, ph - h), (0, pw - w))).astype(np.uint8))
        tiles = []
        for y in _starts(ph, th, stride_y):
            for x in _starts(pw, tw, stride_x):
                inside = integral[y + th, x + tw] - integral[y, x + tw] - integral[y + th, x] + integral[y, x]
                if inside >= self.config.min_breast_fraction * th * tw:
                    tiles.append((y, x))
        return (th, tw), tiles

    def __call__(self, working: np.ndarray, breast: np.ndarray, progress: ProgressFn | None = None,
                 should_stop: Callable[[], bool] | None = None) -> np.ndarray:
        h, w = working.shape
        (th, tw), tiles = self.tile_grid(breast)
        self.last_tile_count = len(tiles)
        ph, pw = max(h, th), max(w, tw)
        image = np.zeros((ph, pw), np.float32)
        image[:h, :w] = working
        acc = np.zeros((ph, pw), np.float32)
        weight = np.zeros((ph, pw), np.float32)
        window = blend_window(th, tw, self.config.overlap)
        for i in range(0, len(tiles), self.config.batch):
            if should_stop and should_stop():
                raise Cancelled("inference cancelled")
            chunk = tiles[i : i + self.config.batch]
            batch = torch.from_numpy(np.stack([image[y : y + th, x : x + tw] for y, x in chunk])[:, None])
            prob = segment_probability(self.runner, batch, self.flips)
            for (y, x), p in zip(chunk, prob):
                acc[y : y + th, x : x + tw] += p * window
                weight[y : y + th, x : x + tw] += window
            if progress:
                progress(min(i + len(chunk), len(tiles)), len(tiles))
        out = np.divide(acc, weight, out=np.zeros_like(acc), where=weight > 0)[:h, :w]
        out[~breast] = 0
        return out


def _roi(image: np.ndarray, cx: float, cy: float, size: tuple[int, int]) -> np.ndarray:
    """A (th, tw) window of ``image`` centred on (cx, cy), zero outside the image."""
    th, tw = size
    y0, x0 = int(round(cy - th / 2)), int(round(cx - tw / 2))
    out = np.zeros((th, tw), np.float32)
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(image.shape[0], y0 + th), min(image.shape[1], x0 + tw)
    if ye > ys and xe > xs:
        out[ys - y0 : ye - y0, xs - x0 : xe - x0] = image[ys:ye, xs:xe]
    return out


def longest_diameter(contour: np.ndarray) -> float:
    hull = cv2.convexHull(contour).reshape(-1, 2).astype(np.float64)
    if len(hull) < 2:
        return 1.0
    d = hull[:, None, :] - hull[None, :, :]
    return float(np.sqrt((d**2).sum(-1)).max()) + 1.0


class Predictor:
    """Everything needed to go from a mammogram to a lesion list with one model on one device."""

    def __init__(self, model: LoadedModel, device: str = "auto", *, config: InferenceConfig = InferenceConfig(),
                 bf16: bool | None = None, cache_dir: str | Path | None = None, runtime: str = "auto"):
        self.model = model
        self.config = InferenceConfig(**{**asdict(config), "tile": min(config.tile, model.tile_size)})
        self.runner = make_runner(model, device, runtime=runtime, bf16=bf16)  # torch, ONNX Runtime or OpenVINO
        # a two-pass model's fine pass, on the same device and runtime
        self.fine_runner = make_runner(model.fine, device, runtime=runtime, bf16=bf16) if model.fine else None
        self.segmenter = TiledSegmenter(self.runner, self.config, model.net.multiple, test_time_flips(model.card))
        self.cache = ResultCache(cache_dir) if cache_dir else None

    @property
    def device_description(self) -> str:
        return self.runner.description

    @property
    def _scoring_runner(self) -> Runner:
        """What runs the part that scores and looks closer: the fine pass of a two-pass model, else the model."""
        return self.fine_runner if self.fine_runner is not None else self.runner

    def _tile_size(self, shape: tuple[int, int], part=None) -> tuple[int, int]:
        """The tile of ``part`` (default: the model itself) on a working image of ``shape``: the card's tile (the
        coarse pass at most ``config.tile``), no larger than the image rounded up to the network's multiple."""
        part = part or self.model
        m = part.net.multiple
        tile = self.config.tile if part is self.model else part.tile_size
        return min(tile, _round_up(shape[0], m)), min(tile, _round_up(shape[1], m))

    def malignancy(self, working: np.ndarray, centres: list[tuple[float, float]], *, calibrated: bool = True
                   ) -> list[float]:
        """p(malignant) from the head on a tile-sized ROI centred on each (x, y) of the working image, calibrated
        as the model card says (``ModelCard.p_malignant``; ``calibrated=False``: the head's own). For a two-pass
        model, ``working`` is the fine pass's working image and its head, tile and card are used."""
        if not centres:
            return []
        part = self.model.scoring
        size = self._tile_size(working.shape, part)
        out = []
        for cx, cy in centres:
            batch = torch.from_numpy(_roi(working, cx, cy, size)[None, None])
            out.append(float(malignancy_probability(self._scoring_runner, batch, test_time_flips(part.card))[0]))
        return [part.card.p_malignant(p) for p in out] if calibrated else out

    def predict(self, image: Mammogram | str | Path, *, progress: ProgressFn | None = None,
                should_stop: Callable[[], bool] | None = None, use_cache: bool = True) -> ImageResult:
        """Whole-view inference: tiles over the breast, lesions, case score."""
        path = image if isinstance(image, (str, Path)) else image.header.path
        key = self.cache.key(path, self.model.version, "whole", asdict(self.config)) if (self.cache and use_cache) else None
        if key:
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        start = time.perf_counter()
        mammogram = read_image(path) if isinstance(image, (str, Path)) else image
        pixels = mammogram.monochrome2()
        working, geometry, region = prepare(pixels, mammogram.header.pixel_spacing_mm, self.model.preprocess)
        breast = geometry.to_working(region.mask)
        probability = self.segmenter(working, breast, progress, should_stop)
        if self.model.fine is None:
            result = self._result(mammogram, working, geometry, probability, start, "whole")
        else:
            result = self._second_pass(mammogram, pixels, geometry, region, probability, start, progress, should_stop)
        if key:
            self.cache.put(key, result)
        return result

    def predict_roi(self, image: Mammogram | str | Path, x: float, y: float) -> ImageResult:
        """The paper's protocol: one tile centred on the point (x, y) of the original image."""
        start = time.perf_counter()
        mammogram = read_image(image) if isinstance(image, (str, Path)) else image
        part = self.model.scoring  # a two-pass model looks closer with its fine pass
        working, geometry, _ = prepare(mammogram.monochrome2(), mammogram.header.pixel_spacing_mm, part.preprocess)
        u, v = geometry.point_to_working(x, y)
        probability = np.zeros(working.shape, np.float32)
        self._fine_tile(working, u, v, probability, None)
        return self._result(mammogram, working, geometry, probability, start, "roi", part=part)

    def _fine_tile(self, working: np.ndarray, u: float, v: float, acc: np.ndarray, weight: np.ndarray | None) -> None:
        """Run the scoring part's tile centred on (u, v) of ``working``: its probability written into ``acc``
        (``weight`` None), or added into ``acc`` and ``weight`` with the blending window (several tiles)."""
        th, tw = self._tile_size(working.shape, self.model.scoring)
        y0, x0 = int(round(v - th / 2)), int(round(u - tw / 2))
        tile_prob = segment_probability(self._scoring_runner, torch.from_numpy(_roi(working, u, v, (th, tw))[None, None]),
                                        test_time_flips(self.model.scoring.card))[0]
        ys, xs = max(0, y0), max(0, x0)
        ye, xe = min(working.shape[0], y0 + th), min(working.shape[1], x0 + tw)
        if ye <= ys or xe <= xs:
            return
        part = tile_prob[ys - y0 : ye - y0, xs - x0 : xe - x0]
        if weight is None:
            acc[ys:ye, xs:xe] = part
            return
        window = blend_window(th, tw, self.config.overlap)[ys - y0 : ye - y0, xs - x0 : xe - x0]
        acc[ys:ye, xs:xe] += part * window
        weight[ys:ye, xs:xe] += window

    def _second_pass(self, mammogram: Mammogram, pixels: np.ndarray, geometry: Geometry, region: BreastRegion,
                     coarse: np.ndarray, start: float, progress: ProgressFn | None, should_stop: Callable[[], bool] | None) -> ImageResult:
        """The fine pass of a two-pass model: its tile centred on each coarse candidate, on its own working grid."""
        fine = self.model.fine
        coarse8 = np.clip(np.rint(coarse * 255), 0, 255).astype(np.uint8)
        _, candidates, centroids = lesion_components(coarse8, int(round(self.model.threshold * 255)),
                                                     geometry.working_spacing_mm ** 2, self.config.min_lesion_mm2,
                                                     self.config.max_lesions)
        working, fine_geometry, _ = prepare(pixels, mammogram.header.pixel_spacing_mm, fine.preprocess, region=region)
        breast = fine_geometry.to_working(region.mask)
        centres = fine_tile_centres([fine_geometry.point_to_working(*geometry.point_to_original(*centroids[k]))
                                     for _, k in candidates], self._tile_size(working.shape, fine))
        base = regrid(coarse, geometry, fine_geometry)  # outside the fine tiles the coarse pass stands
        acc, weight = np.zeros(working.shape, np.float32), np.zeros(working.shape, np.float32)
        done = self.segmenter.last_tile_count
        for i, (u, v) in enumerate(centres, 1):
            if should_stop and should_stop():
                raise Cancelled("inference cancelled")
            self._fine_tile(working, u, v, acc, weight)
            if progress:
                progress(done + i, done + len(centres))
        probability = np.where(weight > 0, np.divide(acc, weight, out=np.zeros_like(acc), where=weight > 0), base)
        probability[~breast] = 0
        result = self._result(mammogram, working, fine_geometry, probability, start, "whole", part=fine)
        result.fine_rois = len(centres)
        return result

    def _result(self, mammogram: Mammogram, working: np.ndarray, geometry: Geometry, probability: np.ndarray,
                start: float, mode: str, *, part=None) -> ImageResult:
        """The lesions of ``probability`` (on the working grid of ``part``, default the model itself) as a result."""
        prob8 = np.clip(np.rint(probability * 255), 0, 255).astype(np.uint8)
        lesions = self._lesions(working, geometry, prob8, (part or self.model).threshold)
        header = mammogram.header
        return ImageResult(
            path=str(header.path), laterality=header.laterality, view=header.view, rows=header.rows, columns=header.columns,
            lesions=lesions, case_score=max((l.p_malignant for l in lesions), default=0.0),
            model_version=self.model.version, device=self.runner.description, seconds=time.perf_counter() - start,
            spacing_mm=geometry.spacing_mm, spacing_known=geometry.spacing_known, mode=mode, probability=prob8, geometry=geometry,
            min_lesion_mm2=self.config.min_lesion_mm2, max_lesions=self.config.max_lesions,
        )

    def _lesions(self, working: np.ndarray, geometry: Geometry, prob8: np.ndarray, threshold: float) -> list[Lesion]:
        labels, candidates, centroids = lesion_components(
            prob8, int(round(threshold * 255)), geometry.working_spacing_mm**2,
            self.config.min_lesion_mm2, self.config.max_lesions)
        p_malignant = self.malignancy(working, [tuple(centroids[k]) for _, k in candidates])
        lesions = []
        spacing = geometry.spacing_mm if geometry.spacing_known else None
        for (peak, k), p in zip(candidates, p_malignant):
            component = geometry.to_original(labels == k)
            ys, xs = np.nonzero(component)
            if ys.size == 0:
                continue
            y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            contours, _ = cv2.findContours(component[y0:y1, x0:x1].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            diameter = longest_diameter(np.vstack(contours)) if contours else 1.0
            area = int(ys.size)
            lesions.append(Lesion(
                bbox=[int(x0), int(y0), int(x1), int(y1)], area_px=area,
                area_mm2=round(area * spacing**2, 2) if spacing else None,
                longest_diameter_px=round(diameter, 1), longest_diameter_mm=round(diameter * spacing, 2) if spacing else None,
                centroid=[float(xs.mean()), float(ys.mean())], peak_probability=round(peak, 4),
                p_malignant=round(p, 4), label="malignant" if p >= self.model.scoring.card.malignancy_threshold else "benign",
            ))
        lesions.sort(key=lambda l: l.p_malignant, reverse=True)
        return lesions


def fine_tile_centres(points: list[tuple[float, float]], tile: tuple[int, int]) -> list[tuple[float, float]]:
    """Where the fine pass puts its tiles: on each candidate (most confident first), except one that already lies in
    the middle half of a tile chosen before it (within a quarter tile of its centre), which that tile serves."""
    th, tw = tile
    chosen: list[tuple[float, float]] = []
    for u, v in points:
        if not any(abs(u - cu) <= tw / 4 and abs(v - cv) <= th / 4 for cu, cv in chosen):
            chosen.append((float(u), float(v)))
    return chosen


def regrid(array: np.ndarray, source: Geometry, target: Geometry) -> np.ndarray:
    """A float map on ``source``'s working grid onto ``target``'s (the same image at another working spacing):
    resized directly when both crop the image alike, else through the original grid."""
    if source.crop == target.crop and source.flipped == target.flipped:
        h, w = target.working_shape
        return cv2.resize(np.ascontiguousarray(array, dtype=np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return target.to_working(source.to_original(array.astype(np.float32)))


def lesion_components(prob8: np.ndarray, threshold8: int, working_mm2: float, min_mm2: float, max_lesions: int
                      ) -> tuple[np.ndarray, list[tuple[float, int]], np.ndarray]:
    """The lesion rule, in one place: the connected components of ``prob8 >= threshold8`` (working grid) of at
    least ``min_mm2``, the ``max_lesions`` with the highest peak probability.

    Returns (component labels, [(peak probability, label)] most confident first, component centroids (x, y)).
    """
    from scipy import ndimage  # only once a result is listed: loading the model does not wait for scipy

    binary = (prob8 >= threshold8).astype(np.uint8)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(binary, connectivity=8)
    big = [k for k in range(1, count) if stats[k, cv2.CC_STAT_AREA] * working_mm2 >= min_mm2]
    peaks = ndimage.maximum(prob8, labels, big) if big else []
    candidates = sorted(((float(p) / 255, k) for p, k in zip(np.atleast_1d(peaks), big)), reverse=True)
    return labels, candidates[:max_lesions], centroids


class ResultCache:
    """Results on disk, keyed by (file identity, model version, settings): ``KEY.npz`` (arrays) + ``KEY.json``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    @staticmethod
    def key(path: str | Path, model_version: str, mode: str, settings: dict) -> str:
        st = os.stat(path)
        ident = json.dumps([str(Path(path).resolve()), st.st_size, st.st_mtime_ns, model_version, mode, settings], sort_keys=True)
        return hashlib.sha256(ident.encode()).hexdigest()[:32]

    def get(self, key: str) -> ImageResult | None:
        meta, arrays = self.folder / f"{key}.json", self.folder / f"{key}.npz"
        if not (meta.is_file() and arrays.is_file()):
            return None
        try:
            data = json.loads(meta.read_text())
            with np.load(arrays, allow_pickle=False) as npz:
                probability = npz["probability"]
            geometry = Geometry(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.pop("geometry").items()})
            lesions = [Lesion(**l) for l in data.pop("lesions")]
            data.pop("from_cache", None)
            return ImageResult(**data, lesions=lesions, probability=probability, geometry=geometry, from_cache=True)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged cache entry is recomputed, never trusted

    def put(self, key: str, result: ImageResult) -> None:
        import io

        buffer = io.BytesIO()
        np.savez_compressed(buffer, probability=result.probability)
        atomic_write_bytes(self.folder / f"{key}.npz", buffer.getvalue())
        data = result.to_json()
        data["geometry"] = asdict(result.geometry)
        atomic_write_bytes(self.folder / f"{key}.json", json.dumps(data).encode())
