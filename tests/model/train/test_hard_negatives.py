"""Hard negatives (issue 15): the starting model's false positives on the training images become lesion-free tiles;
its hits do not, and a model at another spacing is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model.errors import ConfigError
from model.nn.weights import save_model
from model.train.config import TrainConfig
from model.train.data import PreparedImage
from model.train.hard_negatives import mine_hard_negatives
from model.train.loop import train
from tests.model.train.test_training import TINY


def _prepared(tmp_path, name: str, discs, truth_discs) -> PreparedImage:
    """A cached working image as training prepares one: equalized tissue in [0, 0.95] with bright discs (radius 14:
    above the 4 mm² the lesion rule asks for at 0.1 mm), of which
    ``truth_discs`` are lesions."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:192, :160]
    image = rng.uniform(0.05, 0.95, (192, 160)).astype(np.float32)
    mask = np.zeros((192, 160), np.uint8)
    for k, (cy, cx, r) in enumerate(discs):
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        image[disc] = rng.uniform(0.97, 1.0, disc.sum())
        if k in truth_discs:
            mask[disc] = 1
    np.save(tmp_path / f"{name}.image.npy", image.astype(np.float16))
    np.save(tmp_path / f"{name}.mask.npy", mask)
    return PreparedImage(name, tmp_path, "P1", [], [], image.shape)


def test_the_false_positives_become_lesion_free_tiles_and_the_hits_do_not(tmp_path, disc_model):
    spacing = disc_model.preprocess.working_spacing_mm
    one = _prepared(tmp_path, "one", [(50, 50, 14), (140, 110, 14)], truth_discs={0})  # the second disc: no lesion
    both = _prepared(tmp_path, "both", [(50, 50, 14), (140, 110, 14)], truth_discs={0, 1})
    seen = []
    samples = mine_hard_negatives([one, both], disc_model, per_image=3, spacing_mm=spacing,
                                  progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]
    (sample,) = samples  # one false positive, on the first image; the second image's discs are both lesions
    assert sample.image == 0 and not sample.lesion and not sample.malignant
    assert abs(sample.center[0] - 110) < 4 and abs(sample.center[1] - 140) < 4  # (x, y) of the disc without truth
    assert mine_hard_negatives([one], disc_model, per_image=0, spacing_mm=spacing) == []
    with pytest.raises(ConfigError, match="training spacing"):
        mine_hard_negatives([one], disc_model, per_image=2, spacing_mm=spacing * 2)


def test_hard_negatives_need_a_model_to_fine_tune_and_the_card_counts_them(tmp_path, demo_root, disc_model):
    with pytest.raises(ConfigError, match="hard_negatives_per_image.*init_weights"):
        TrainConfig(**TINY, hard_negatives_per_image=2).check_start()  # a job sets init_weights after building it
    with pytest.raises(ConfigError, match="hard_negatives_per_image.*init_weights"):
        train(demo_root, tmp_path / "scratch", TrainConfig(**TINY, hard_negatives_per_image=2))
    start = save_model(disc_model.net, {**disc_model.card.to_json(), "preprocess": {"working_spacing_mm": 0.2},
                                        "tile_size": 64}, tmp_path / "start.safetensors")
    config = TrainConfig(**TINY, max_epochs=1, max_batches_per_epoch=1, early_stop_delta=0.0,
                         init_weights=str(start), hard_negatives_per_image=2)
    events = []
    result = train(demo_root, tmp_path / "run", config, callback=events.append)
    messages = [e.message for e in events]
    (mined,) = [e for e in events if "hard_negatives" in e.metrics]
    count = mined.metrics["hard_negatives"]
    assert mined.message.startswith(f"{count} hard negatives from ")
    card = json.loads(result.model_path.with_suffix(".json").read_text())
    assert card["training"]["hard_negatives"] == count and card["training"]["config"]["hard_negatives_per_image"] == 2
    assert "finding the starting model's false positives" in messages
