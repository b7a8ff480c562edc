"""What the renderer is asked to draw (breast, lesions) and what it hands back (the rendered view)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LesionSpec:
    """One abnormality to draw.

    ``depth`` (0..1) is the position along the chest-wall -> nipple axis as a
    fraction of the breast depth; ``offset`` (-1..1) the position across it as a
    fraction of the local half width (negative = towards the top of the image, i.e.
    lateral on CC / superior on MLO). Both are breast-relative, so the same lesion
    appears in the CC and the MLO of its breast. ``seed`` fixes the lesion's own
    shape so both views show the same lesion.
    """

    kind: str                 # "mass" or "calcification"
    malignant: bool
    size_mm: float            # mass: longest diameter; calcification: cluster extent
    subtlety: int             # 1 (barely visible) .. 5 (obvious); CBIS-DDSM's scale
    depth: float              # 0..1 from chest wall toward the nipple
    offset: float             # -1..1 across the breast, fraction of local half-width
    shape: str = ""           # ROUND, OVAL, LOBULATED, IRREGULAR, ARCHITECTURAL_DISTORTION
    margins: str = ""         # CIRCUMSCRIBED, OBSCURED, MICROLOBULATED, ILL_DEFINED, SPICULATED
    calc_type: str = ""       # PLEOMORPHIC, FINE_LINEAR_BRANCHING, AMORPHOUS, PUNCTATE, COARSE, ...
    calc_distribution: str = ""  # CLUSTERED, LINEAR, SEGMENTAL, REGIONAL, DIFFUSELY_SCATTERED
    seed: int = 0


@dataclass(frozen=True)
class BreastSpec:
    """The breast being imaged: BI-RADS density 1..4, relative size 0.7..1.3 and an anatomy seed.

    The anatomy is derived from ``seed`` and the laterality, so one spec can serve
    both breasts of a patient (similar, not identical) and both views of a breast
    (identical anatomy).
    """

    density: int
    size: float
    seed: int


@dataclass
class RenderedView:
    """A rendered film: image (uint16 MONOCHROME2), one bool mask per lesion, chest-wall side, breast mask."""

    image: np.ndarray
    masks: list[np.ndarray]
    chest_wall_side: str
    breast_mask: np.ndarray
