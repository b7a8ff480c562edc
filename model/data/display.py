"""Greyscale display: VOI windows and LUTs, computed once per window change.

The math of every VOI function (LINEAR, LINEAR_EXACT, SIGMOID, and VOI LUT
tables) is pydicom's; we evaluate it once over the image's value domain and get
a lookup table, so a window/level drag on a 3000x5000 16-bit image costs one
table of at most 65,536 entries, not a pass over 15 million pixels.
"""

from __future__ import annotations

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from model.data.mammogram import Mammogram, WindowPreset

VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def value_domain(image: Mammogram) -> tuple[int, int]:
    """Smallest and largest pixel value, as integers (the LUT's index range)."""
    px = image.pixels
    return int(np.floor(px.min())), int(np.ceil(px.max()))


def auto_window(image: Mammogram, function: str = "LINEAR") -> WindowPreset:
    """A window over the tissue, for images without header presets (CBIS-DDSM has none).

    The film background and the burned-in labels would dominate a min/max
    window, so we take the 1st-99.8th percentile of the pixels brighter than
    the background (Otsu-like split at the histogram's first valley).
    """
    px = image.monochrome2() if image.inverted else image.pixels
    sample = np.asarray(px[:: max(1, px.shape[0] // 512), :: max(1, px.shape[1] // 512)], dtype=np.float64).ravel()
    lo_all, hi_all = np.percentile(sample, [1, 99.9])
    threshold = lo_all + 0.08 * (hi_all - lo_all)
    tissue = sample[sample > threshold]
    if tissue.size < 16:
        tissue = sample
    lo, hi = np.percentile(tissue, [1, 99.5])
    if image.inverted:  # window on stored values
        total = float(image.pixels.min()) + float(image.pixels.max())
        lo, hi = total - hi, total - lo
    width = max(float(hi - lo), 1.0)
    return WindowPreset(center=float(lo + hi) / 2, width=width, function=function, name="Auto (tissue)")


def _window_dataset(window: WindowPreset) -> Dataset:
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored = 16
    ds.PixelRepresentation = 0
    ds.WindowCenter = window.center
    ds.WindowWidth = window.width
    ds.VOILUTFunction = window.function
    return ds


def window_lut(domain: tuple[int, int], window: WindowPreset, *, invert: bool = False) -> np.ndarray:
    """uint8 table t with t[v - domain[0]] = display grey of modality value v."""
    lo, hi = domain
    values = np.arange(lo, hi + 1, dtype=np.float64)
    out = pydicom.pixels.apply_windowing(values, _window_dataset(window)) / 65535.0
    if invert:
        out = 1.0 - out
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def voi_table_lut(image: Mammogram, index: int = 0, *, invert: bool = False) -> np.ndarray | None:
    """The header's VOI LUT Sequence table as a display LUT, or None when it has none."""
    ds = image.dataset
    if ds is None or not ds.get("VOILUTSequence"):
        return None
    lo, hi = value_domain(image)
    values = np.arange(lo, hi + 1)
    item = ds.VOILUTSequence[min(index, len(ds.VOILUTSequence) - 1)]
    bits = int(item.LUTDescriptor[2]) or 16
    only_table = Dataset()
    only_table.VOILUTSequence = [item]
    only_table.PhotometricInterpretation = "MONOCHROME2"
    only_table.BitsStored = image.header.bits_stored
    only_table.PixelRepresentation = 0
    out = pydicom.pixels.apply_voi(values, only_table, 0).astype(np.float64) / (2**bits - 1)
    if invert:
        out = 1.0 - out
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def presets(image: Mammogram) -> list[WindowPreset]:
    """The windows a reader can step through: the header's presets, then an automatic one."""
    return [*image.header.windows, auto_window(image)]


def render(image: Mammogram, window: WindowPreset | None = None) -> np.ndarray:
    """An 8-bit picture as a radiologist sees it (MONOCHROME1 inverted, VOI applied)."""
    window = window or presets(image)[0]
    lo, hi = value_domain(image)
    lut = window_lut((lo, hi), window, invert=image.inverted)
    return lut[lut_index(image.pixels, lo, hi)]


def lut_index(pixels: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """pixels - lo as indexes into a table of hi - lo + 1 entries, where lo and hi bound the pixels (as
    :func:`value_domain` gives them). In the narrowest type: a 16-bit image gives a uint16 array, never a
    full-size int64 copy."""
    span = hi - lo
    if pixels.dtype.kind in "ui" and pixels.dtype.itemsize <= 4:
        bits = 8 * pixels.dtype.itemsize
        unsigned = np.dtype(f"u{pixels.dtype.itemsize}")
        # modulo 2**bits; exact, because every pixel - lo lies in [0, span] and span < 2**bits
        index = np.subtract(pixels.view(unsigned), unsigned.type(lo % 2**bits))
    elif pixels.dtype.kind == "f":
        index = np.subtract(pixels, np.float32(lo), dtype=np.float32)
        np.clip(index, 0, span, out=index)
        index = index.astype(np.uint32 if span < 2**32 else np.int64)
    else:
        index = np.clip(pixels.astype(np.int64) - lo, 0, span)
    if span < 2**16 and index.dtype.itemsize > 2:
        index = index.astype(np.uint16)
    return index
