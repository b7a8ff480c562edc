"""The network's result for one image, made ready for the panes and the findings panel (no Qt here).

Everything costly happens here, in the AI worker's thread: the predicted mask
on the original pixel grid (cut to the part that holds it), its outlines, the
probability heatmap placed over the original grid, and the comparison with the
ground truth (per lesion hit or false positive, missed truth lesions, Dice and
IoU of the image: :func:`model.infer.compare.compare_with_truth`, the rule
``bcir eval`` counts by). The GUI thread only hands the arrays to its items.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model.errors import Cancelled, ModelFileError
from model.data.masks import load_truth, mask_outlines
from model.infer.compare import TruthComparison, compare_with_truth, mask_bbox
from model.data.study_index import IndexedImage

from app.case_text import image_label

if TYPE_CHECKING:  # model.infer.predictor imports torch: only the worker that loads the model needs it
    from model.infer.predictor import ImageResult

log = logging.getLogger("bcir.app")

@dataclass
class AiImage:
    """One image's AI result with what the overlays draw, all on the original (stored) pixel grid."""

    indexed: IndexedImage
    result: ImageResult
    threshold: float
    fill: np.ndarray  # (h, w, 4) uint8 RGBA: the predicted mask in yellow, transparent elsewhere; may be 0x0
    fill_origin: tuple[int, int]  # (x0, y0) of fill's first pixel on the original grid
    outlines: list[np.ndarray]  # (N, 2) arrays of (x, y), original-grid pixel-centre coordinates
    heat: np.ndarray  # uint8 probability (0-255) on the working grid, turned to read left to right as the original
    heat_rect: tuple[float, float, float, float]  # x, y, width, height it covers on the original grid
    comparison: TruthComparison
    roi_point: tuple[float, float] | None = None  # (x, y) clicked, for an ROI result
    roi_rect: tuple[float, float, float, float] | None = None  # x, y, width, height the ROI tile covers (original grid)

    @property
    def path(self) -> str:
        return self.indexed.path

    @property
    def label(self) -> str:
        return image_label(self.indexed)

    @property
    def is_roi(self) -> bool:
        return self.result.mode == "roi"

    @property
    def mask_pixels(self) -> int:
        return int(np.count_nonzero(self.fill[..., 3])) if self.fill.size else 0


@dataclass
class AiFailure:
    """An image the network could not run on, with the one-line reason."""

    indexed: IndexedImage
    message: str
    roi_point: tuple[float, float] | None = None  # (x, y) for an ROI the reader asked for; None: the whole view

    @property
    def path(self) -> str:
        return self.indexed.path

    @property
    def text(self) -> str:
        """'AI could not run on R CC: <reason>' (the reader's one line)."""
        where = f"the ROI at ({self.roi_point[0]:.0f}, {self.roi_point[1]:.0f}) on " if self.roi_point else ""
        return f"AI could not run on {where}{image_label(self.indexed)}: {self.message}"


@dataclass
class AiProgress:
    """Tiles done on one image (whole-view inference)."""

    indexed: IndexedImage
    done: int
    total: int


YELLOW_RGBA = (255, 255, 0, 255)


def prepare_ai_image(image: IndexedImage, result: ImageResult, threshold: float,
                     roi_point: tuple[float, float] | None = None, roi_tile: tuple[int, int] | None = None) -> AiImage:
    """Everything the overlays and the findings panel need from one result."""
    mask = result.lesion_mask(threshold)  # only what the findings list: no specks drawn that no row names
    box = mask_bbox(mask)
    if box is None:
        fill, origin, outlines = np.zeros((0, 0, 4), np.uint8), (0, 0), []
    else:
        x0, y0, x1, y1 = box
        part = mask[y0:y1, x0:x1]
        fill = np.zeros((*part.shape, 4), np.uint8)
        fill[part] = YELLOW_RGBA
        origin = (x0, y0)
        outlines = [o + (x0 + 0.5, y0 + 0.5) for o in mask_outlines(part)]
    geometry = result.geometry
    heat = result.probability if not geometry.flipped else result.probability[:, ::-1]
    cy0, cy1, cx0, cx1 = geometry.crop
    roi_rect = None
    if roi_point is not None and roi_tile:
        h, w = (n / geometry.scale for n in roi_tile)  # the tile (working pixels) on the original grid, centred on the point
        roi_rect = (roi_point[0] + 0.5 - w / 2, roi_point[1] + 0.5 - h / 2, w, h)
    return AiImage(
        indexed=image, result=result, threshold=threshold, fill=fill, fill_origin=origin, outlines=outlines,
        heat=np.ascontiguousarray(heat), heat_rect=(float(cx0), float(cy0), float(cx1 - cx0), float(cy1 - cy0)),
        comparison=compare_with_truth(load_truth(image, mask.shape), result.lesion_labels(threshold), len(result.lesions)),
        roi_point=roi_point, roi_rect=roi_rect,
    )


# -- worker tasks (run in a QThread by app.background.ai_worker; they never touch a widget)


def load_predictor(path: Path, cache_dir: Path | None):
    """The model file ready to run on the best device. Raises ModelFileError."""
    from model.infer.predictor import Predictor
    from model.nn.weights import load_model

    if path.suffix != ".safetensors" and path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a .safetensors model file")
    return Predictor(load_model(path), device="auto", cache_dir=cache_dir)


def load_with_trust(path: Path, cache_dir: Path | None):
    """:func:`load_predictor`, and the line on how far its malignancy call can be trusted (read from the registry
    and the card here, off the GUI thread)."""
    from model.registry.versions import model_malignancy_trust

    predictor = load_predictor(path, cache_dir)
    return predictor, model_malignancy_trust(predictor.model)


def run_case(predictor, images: list[IndexedImage], report, should_stop) -> int:
    """Whole-view inference on ``images``, one after the other: reports AiProgress, then AiImage or AiFailure each.

    Raises Cancelled when asked to stop (between tiles).
    """
    threshold = predictor.model.scoring.threshold  # what the lesions were listed at (a pair: its fine pass)
    for image in images:
        if should_stop():
            raise Cancelled("inference cancelled")
        report(AiProgress(image, 0, 0))
        try:
            result = predictor.predict(
                image.path, progress=lambda done, total, image=image: report(AiProgress(image, done, total)),
                should_stop=should_stop,
            )
            report(prepare_ai_image(image, result, threshold))
        except Cancelled:  # a stop request, not a bad file
            raise
        except Exception as exc:  # noqa: BLE001 - one image that cannot run never stops the others
            from app.errors import describe

            log.debug("AI on one image failed", exc_info=True)
            report(AiFailure(image, describe(exc)))
    return len(images)


def run_roi(predictor, image: IndexedImage, x: float, y: float) -> AiImage:
    """The paper's protocol: one tile centred on (x, y) of the original image."""
    result = predictor.predict_roi(image.path, x, y)
    return prepare_ai_image(image, result, predictor.model.scoring.threshold, roi_point=(x, y),
                            roi_tile=roi_tile_size(predictor, result.geometry.working_shape))


def roi_tile_size(predictor, working_shape: tuple[int, int]) -> tuple[int, int]:
    """(rows, columns) of the tile ``predict_roi`` runs: the model's tile (a two-pass model's fine pass's), or the
    working image rounded up to the network's multiple when that is smaller (as ``Predictor`` sizes it)."""
    part = predictor.model.scoring
    tile = predictor.config.tile if part is predictor.model else part.tile_size
    multiple = part.net.multiple
    return tuple(min(tile, -(-n // multiple) * multiple) for n in working_shape)


def model_status(predictor) -> str:
    """The status bar's line for the model in use: the device and the version; for a two-pass model, each pass's
    working spacing and tile ('… · model X (two-pass: coarse 0.4 mm, tile 256; fine 0.1 mm, tile 1024)')."""
    from model.nn.passes import model_passes_text

    text = f"{predictor.device_description} · model {predictor.model.version}"
    return f"{text} ({model_passes_text(predictor.model)})" if predictor.model.two_pass else text
