"""Loading one patient's images for display, in a worker thread (no Qt here).

Everything the panes need is computed here, off the GUI thread: the pixels,
a small pyramid of half-size copies (so a window/level drag on a zoomed-out
5000x3000 image only looks up a screen's worth of pixels), the window presets,
the side of the chest wall and the ground-truth outlines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from model.data.dicom_io import read_image
from model.data.mammogram import Mammogram, WindowPreset
from model.data.display import presets, voi_table_lut, window_lut
from model.errors import ImageReadError
from model.data.masks import load_truth, mask_outlines
from model.data.preprocess import chest_wall_side
from model.data.study_index import Abnormality, IndexedImage

from app.case_text import abnormality_text, image_label
from app.errors import describe

log = logging.getLogger("bcir.app")

# Half-size copies are made down to about this many pixels on the long side.
PYRAMID_MIN_SIDE = 384
MAX_LUT_ENTRIES = 65_536
# chest_wall_side looks at a pyramid level of at most this many pixels.
CHEST_WALL_PIXELS = 1_500_000


@dataclass(frozen=True)
class VoiTable:
    """The header's VOI LUT Sequence item ``index``, as a display choice next to the windows."""

    index: int
    name: str


DisplayWindow = WindowPreset | VoiTable


@dataclass
class TruthOutline:
    """One ground-truth abnormality's outlines, (N, 2) arrays of (x, y) in stored-pixel coordinates.

    Pixel (col, row) covers [col, col+1) x [row, row+1), so outline points sit at pixel centres (+0.5).
    """

    abnormality: Abnormality
    outlines: list[np.ndarray]

    @property
    def label(self) -> str:
        return f"{abnormality_text(self.abnormality)} (abnormality {self.abnormality.id})"


@dataclass
class LoadedImage:
    """One image ready for a pane."""

    indexed: IndexedImage
    mammogram: Mammogram
    pyramid: list[np.ndarray]  # [0] is what the pane shows at full resolution; [k] is 2**k times smaller
    domain: tuple[int, int]  # modality values covered by the LUT
    levels: tuple[int, int]  # ImageItem levels for which LUT index = value - domain[0]
    windows: list[DisplayWindow]
    chest_wall: str  # 'left' | 'right': where the chest wall is in the stored image
    truth: list[TruthOutline] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # ground truth that is not drawn, and why
    seconds: float = 0.0

    @property
    def shape(self) -> tuple[int, int]:
        return self.mammogram.pixels.shape[:2]

    @property
    def spacing_mm(self) -> tuple[float, float] | None:
        return self.mammogram.header.pixel_spacing_mm or self.indexed.pixel_spacing_mm

    def value_at(self, col: int, row: int) -> float | None:
        rows, cols = self.shape
        if 0 <= row < rows and 0 <= col < cols:
            return float(self.mammogram.pixels[row, col])
        return None

    def lut(self, window: DisplayWindow, invert: bool) -> np.ndarray:
        """The uint8 table the pane hands to its ImageItem; ``invert`` is the reader's toggle."""
        flip = invert != self.mammogram.inverted  # MONOCHROME1 is shown inverted by default
        if isinstance(window, VoiTable):
            table = voi_table_lut(self.mammogram, window.index, invert=flip)
            if table is not None:
                return table[:MAX_LUT_ENTRIES]
            window = self.default_linear_window()
        return window_lut(self.domain, window, invert=flip)

    def default_linear_window(self) -> WindowPreset:
        """The window a right-drag starts from when a VOI table is shown (the automatic one)."""
        linear = [w for w in self.windows if isinstance(w, WindowPreset)]
        return next((w for w in linear if w.name.startswith("Auto")), linear[0])


@dataclass
class LoadFailure:
    """An image of the case that could not be shown, with the one-line reason."""

    indexed: IndexedImage
    message: str


def full_range_window(domain: tuple[int, int]) -> WindowPreset:
    lo, hi = domain
    return WindowPreset(center=(lo + hi + 1) / 2, width=float(hi - lo + 1), function="LINEAR", name="Full range")


def _display_array(pixels: np.ndarray) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """(array for the ImageItem, LUT domain, levels). uint8/uint16 go as they are; others are shifted to uint16."""
    lo, hi = int(np.floor(pixels.min())), int(np.ceil(pixels.max()))
    hi = min(hi, lo + MAX_LUT_ENTRIES - 1)
    if pixels.dtype in (np.uint8, np.uint16):
        data = np.ascontiguousarray(pixels)
        return data, (lo, hi), (lo, hi + 1)
    shifted = np.clip(np.rint(pixels.astype(np.float64) - lo), 0, hi - lo).astype(np.uint16)
    return shifted, (lo, hi), (0, hi - lo + 1)


def build_pyramid(data: np.ndarray, min_side: int = PYRAMID_MIN_SIDE) -> list[np.ndarray]:
    """[data, data/2, data/4, ...] by area averaging (no aliasing of fine calcifications)."""
    levels = [data]
    while max(levels[-1].shape) // 2 >= min_side and min(levels[-1].shape) >= 4:
        rows, cols = levels[-1].shape
        levels.append(cv2.resize(levels[-1], (cols // 2, rows // 2), interpolation=cv2.INTER_AREA))
    return levels


def _chest_wall(pyramid: list[np.ndarray], domain: tuple[int, int], shifted: bool, inverted: bool) -> str:
    """chest_wall_side on a pyramid level of at most ~1 MP: the same answer, 20x sooner on a full film.

    (Bands of a 2x2-averaged image have the same bright-versus-dark order as the
    full-resolution bands; the median over 4600x480 pixels is what costs.)
    """
    level = next((lvl for lvl in pyramid if lvl.size <= CHEST_WALL_PIXELS), pyramid[-1])
    if inverted:  # MONOCHROME1: dense is dark; turn it bright-is-dense as chest_wall_side expects
        lo, hi = (0, domain[1] - domain[0]) if shifted else domain
        level = (lo + hi) - level.astype(np.int64)
    return chest_wall_side(level)


def _truth(image: IndexedImage, shape: tuple[int, int]) -> tuple[list[TruthOutline], list[str]]:
    truth, problems = [], []
    for lesion in load_truth(image, shape).lesions:
        abnormality = lesion.abnormality
        name = f"{image_label(image)} {abnormality_text(abnormality)} (abnormality {abnormality.id})"
        outlines = [o + 0.5 for o in mask_outlines(lesion.mask)] if lesion.mask is not None else []
        if not outlines:  # a mask of a pixel or two has no outline to draw either
            problems.append(f"{name}: {lesion.reason or 'empty mask'}")
            continue
        truth.append(TruthOutline(abnormality, outlines))
    return truth, problems


def load_image(image: IndexedImage) -> LoadedImage:
    """Read one image and prepare everything its pane shows. Raises ImageReadError."""
    start = time.perf_counter()
    mammogram = read_image(image.path)
    data, domain, levels = _display_array(mammogram.pixels)
    windows: list[DisplayWindow] = list(mammogram.header.windows)
    dataset = mammogram.dataset
    if dataset is not None and dataset.get("VOILUTSequence"):
        windows += [VoiTable(i, f"VOI LUT {i + 1}") for i in range(len(dataset.VOILUTSequence))]
    auto = presets(mammogram)[-1]
    windows += [auto, full_range_window(domain)]
    pyramid = build_pyramid(data)
    chest_wall = _chest_wall(pyramid, domain, data is not mammogram.pixels, mammogram.inverted)
    truth, problems = _truth(image, mammogram.pixels.shape[:2])
    return LoadedImage(
        indexed=image, mammogram=mammogram, pyramid=pyramid, domain=domain, levels=levels,
        windows=windows, chest_wall=chest_wall, truth=truth, problems=problems,
        seconds=time.perf_counter() - start,
    )


def load_case(images: list[IndexedImage], report: Callable[[object], None], should_stop: Callable[[], bool]) -> int:
    """Worker task: load ``images`` in order, reporting each LoadedImage (or LoadFailure) as it is ready.

    Stops between images when asked (the worker then reports a cancel, not a result).
    """
    for image in images:
        if should_stop():
            break
        try:
            loaded = load_image(image)
        except ImageReadError as exc:
            loaded = LoadFailure(image, str(exc))
        except Exception as exc:  # noqa: BLE001 - one file that cannot be shown never stops the others
            log.debug("loading one image failed", exc_info=True)
            loaded = LoadFailure(image, describe(exc))
        report(loaded)
    return len(images)
