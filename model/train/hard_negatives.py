"""Hard negatives: where the model being fine-tuned sees a lesion and the truth has none.

Random tiles of normal tissue (``normal_ratio``) rarely show what a model calls by mistake: a dense ridge, crossing
vessels, a film artefact. With ``hard_negatives_per_image`` > 0, fine-tuning first runs the starting model
(``TrainConfig.init_weights``) over each training image as inference does (the whole breast in overlapping tiles,
at the training spacing), lists its lesions by the inference rule (:func:`model.infer.predictor.lesion_components`),
and adds a lesion-free tile centred on each of the most confident ones that touch no true lesion, up to that many
per image. They train the mask ("nothing here") and not the malignancy head (no pathology). Validation is not
mined, so its figures stay comparable between runs.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from model.errors import ConfigError
from model.train.data import PreparedImage, Sample

TRUTH_MARGIN_MM = 2.0  # a component this close to a true lesion is a hit drawn too wide, not a false positive


def _breast(working: np.ndarray) -> np.ndarray:
    """The breast of a cached working image: the preprocessing leaves 0 outside it (and may map its darkest bin to 0
    inside, hence the closing)."""
    inside = (working > 0).astype(np.uint8)
    return cv2.morphologyEx(inside, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0


def false_positive_centres(segmenter, prepared: PreparedImage, *, threshold: float, spacing_mm: float, count: int,
                           min_lesion_mm2: float, max_lesions: int) -> list[tuple[float, float]]:
    """The centroids (working x, y) of the ``count`` most confident lesions ``segmenter`` (a
    :class:`model.infer.predictor.TiledSegmenter`) lists on ``prepared`` that lie further than TRUTH_MARGIN_MM from
    every true lesion."""
    from model.infer.predictor import lesion_components

    working = np.asarray(prepared.working, dtype=np.float32)
    probability = segmenter(working, _breast(working))
    prob8 = np.clip(np.rint(probability * 255), 0, 255).astype(np.uint8)
    labels, candidates, centroids = lesion_components(prob8, int(round(threshold * 255)), spacing_mm ** 2,
                                                      min_lesion_mm2, max_lesions)
    truth = np.asarray(prepared.mask) > 0
    if truth.any():
        reach = 2 * int(np.ceil(TRUTH_MARGIN_MM / spacing_mm)) + 1
        truth = cv2.dilate(truth.astype(np.uint8), np.ones((reach, reach), np.uint8)) > 0
    centres = []
    for _, k in candidates:  # most confident first
        if len(centres) == count:
            break
        if not (truth & (labels == k)).any():
            centres.append((float(centroids[k][0]), float(centroids[k][1])))
    return centres


def mine_hard_negatives(images: list[PreparedImage], model, *, per_image: int, spacing_mm: float, device: str = "cpu",
                        progress: Callable[[int, int], None] | None = None) -> list[Sample]:
    """A lesion-free :class:`Sample` at each of ``model``'s false positives on ``images`` (at most ``per_image``
    each). ``model`` (a LoadedModel) must work at ``spacing_mm``, the spacing the images were prepared at: else
    ConfigError, since its false positives there are not the ones it makes."""
    from model.infer.predictor import InferenceConfig, TiledSegmenter, test_time_flips
    from model.nn.exported import make_runner

    if abs(model.preprocess.working_spacing_mm - spacing_mm) > 1e-9:
        raise ConfigError("hard_negatives_per_image", f"needs the starting model at the training spacing "
                          f"({model.preprocess.working_spacing_mm:g} mm against {spacing_mm:g} mm)")
    rule = InferenceConfig()
    segmenter = TiledSegmenter(make_runner(model, device, runtime="torch"), InferenceConfig(tile=model.tile_size), model.net.multiple,
                               test_time_flips(model.card))
    samples = []
    for i, prepared in enumerate(images):
        for centre in false_positive_centres(segmenter, prepared, threshold=model.threshold, spacing_mm=spacing_mm,
                                             count=per_image, min_lesion_mm2=rule.min_lesion_mm2,
                                             max_lesions=rule.max_lesions):
            samples.append(Sample(i, centre, False, False))
        if progress:
            progress(i + 1, len(images))
    return samples
