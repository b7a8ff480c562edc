"""Hard negatives: where the model being fine-tuned sees a lesion and the truth has none.

Random tiles of normal tissue (``normal_ratio``) rarely show what a model calls by mistake: a dense ridge, crossing
vessels, a film artefact. With ``hard_negatives_per_image`` > 0, fine-tuning first runs the starting model
(``TrainConfig.init_weights``) over each training image as inference does (the whole breast in overlapping tiles,
at the training spacing), lists its lesions by the inference rule (:func:`model.infer.predictor.lesion_components`),
and adds a lesion-free tile centred on each of the most confident ones that touch no true lesion, up to that many
per image. They train the mask ("nothing here") and not the malignancy head (no pathology). Validation is not
mined, so its figures stay comparable between runs.

Mining is one whole-view inference per training image, minutes on a CPU. Under ``torchrun`` each rank mines its own
share of the images and the ranks exchange what they found. The run folder keeps the result
(:data:`MINED_FILE`), so a resumed run reads it back rather than mining again: the same starting model (its weights'
hash) on the same prepared images (their cache keys) finds the same places.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from model.errors import ConfigError
from model.train.data import PreparedImage, Sample

TRUTH_MARGIN_MM = 2.0  # a component this close to a true lesion is a hit drawn too wide, not a false positive
MINED_FILE = "hard_negatives.json"  # in the run folder: what was mined, and from what


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
                        progress: Callable[[int, int], None] | None = None, shard: tuple[int, int] = (0, 1)) -> list[Sample]:
    """A lesion-free :class:`Sample` at each of ``model``'s false positives on ``images`` (at most ``per_image``
    each). ``model`` (a LoadedModel) must work at ``spacing_mm``, the spacing the images were prepared at: else
    ConfigError, since its false positives there are not the ones it makes. ``shard`` (rank, ranks): mine only every
    ranks-th image from the rank-th (a rank's share under torchrun; :func:`gather_mined` joins the shares)."""
    from model.infer.predictor import InferenceConfig, TiledSegmenter, test_time_flips
    from model.nn.exported import make_runner

    if abs(model.preprocess.working_spacing_mm - spacing_mm) > 1e-9:
        raise ConfigError("hard_negatives_per_image", f"needs the starting model at the training spacing "
                          f"({model.preprocess.working_spacing_mm:g} mm against {spacing_mm:g} mm)")
    rule = InferenceConfig()
    segmenter = TiledSegmenter(make_runner(model, device, runtime="torch"), InferenceConfig(tile=model.tile_size), model.net.multiple,
                               test_time_flips(model.card))
    rank, ranks = shard
    mine = range(rank, len(images), ranks)
    samples = []
    for done, i in enumerate(mine, 1):
        for centre in false_positive_centres(segmenter, images[i], threshold=model.threshold, spacing_mm=spacing_mm,
                                             count=per_image, min_lesion_mm2=rule.min_lesion_mm2,
                                             max_lesions=rule.max_lesions):
            samples.append(Sample(i, centre, False, False))
        if progress:
            progress(done, len(mine))
    return samples


def _places(samples: list[Sample]) -> list[list]:
    """Mined samples as plain [image, x, y] lists: what the record holds and what the ranks exchange."""
    return [[s.image, s.center[0], s.center[1]] for s in samples]


def _samples(places) -> list[Sample]:
    """:func:`_places` back into lesion-free samples; TypeError or ValueError for items that are not [image, x, y]."""
    return [Sample(int(i), (float(x), float(y)), False, False) for i, x, y in places]


def gather_mined(samples: list[Sample]) -> list[Sample]:
    """Every rank's mined samples, on every rank, in image order (as one process mining them all would list them)."""
    import torch.distributed as dist

    shares: list = [None] * dist.get_world_size()
    dist.all_gather_object(shares, _places(samples))
    return _samples(sorted((item for share in shares for item in share), key=lambda item: item[0]))  # stable: per image, by confidence


def broadcast_mined(samples: list[Sample] | None) -> list[Sample] | None:
    """Rank 0's ``samples`` (None: none read back) on every rank."""
    import torch.distributed as dist

    box = [None if samples is None else _places(samples)]
    dist.broadcast_object_list(box, src=0)
    return None if box[0] is None else _samples(box[0])


def mined_record(model, images: list[PreparedImage], per_image: int, samples: list[Sample]) -> dict:
    """What :data:`MINED_FILE` holds: the places, and what they were mined from (the starting model's weights, the
    images' cache keys, the count per image)."""
    return {"weights_sha256": model.card.weights_sha256, "per_image": per_image, "images": [im.key for im in images],
            "samples": _places(samples)}


def read_mined(path: str | Path, model, images: list[PreparedImage], per_image: int) -> list[Sample] | None:
    """The samples a run mined before (``path``, a :data:`MINED_FILE`) when they were mined from this model on these
    images; None when there is no such record (a missing, unreadable or other record is mined afresh)."""
    from model.fileio import UnreadableJson, read_json_object

    try:
        record = read_json_object(path)
    except (FileNotFoundError, UnreadableJson):
        return None
    if (record.get("weights_sha256") != model.card.weights_sha256 or model.card.weights_sha256 is None
            or record.get("per_image") != per_image or record.get("images") != [im.key for im in images]):
        return None
    try:
        samples = _samples(record.get("samples", []))
    except (TypeError, ValueError):
        return None
    return samples if all(0 <= s.image < len(images) for s in samples) else None
