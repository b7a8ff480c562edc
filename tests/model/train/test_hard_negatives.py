"""Hard negatives (issue 15): the starting model's false positives on the training images become lesion-free tiles;
its hits do not, and a model at another spacing is refused."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest

from model.errors import ConfigError
from model.nn.weights import save_model
from model.train.config import TrainConfig
from model.train.data import PreparedImage
from model.fileio import atomic_write_json
from model.train.hard_negatives import MINED_FILE, mine_hard_negatives, mined_record, read_mined
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


def test_each_rank_mines_its_share_and_the_shares_join_as_one_mining(tmp_path, disc_model):
    """torchrun: rank r of n mines images r, r+n, ...; the shares, joined in image order, are the whole mining."""
    spacing = disc_model.preprocess.working_spacing_mm
    images = [_prepared(tmp_path, f"im{k}", [(50, 50, 14), (140, 110, 14)], truth_discs=truth)
              for k, truth in enumerate([{0}, set(), {0, 1}, {1}, {0}])]
    whole = mine_hard_negatives(images, disc_model, per_image=2, spacing_mm=spacing)
    assert sorted({s.image for s in whole}) == [0, 1, 3, 4]  # image 2's discs are both lesions
    shares = [mine_hard_negatives(images, disc_model, per_image=2, spacing_mm=spacing, shard=(rank, 2)) for rank in (0, 1)]
    assert {s.image for s in shares[0]} == {0, 4} and {s.image for s in shares[1]} == {1, 3}
    assert sorted(shares[0] + shares[1], key=lambda s: s.image) == whole


def test_a_mined_record_is_read_back_only_for_the_same_model_images_and_count(tmp_path, disc_model):
    spacing = disc_model.preprocess.working_spacing_mm
    images = [_prepared(tmp_path, f"im{k}", [(50, 50, 14), (140, 110, 14)], truth_discs={0}) for k in range(2)]
    model = copy.copy(disc_model)
    model.card = dataclasses.replace(disc_model.card, weights_sha256="a" * 64)
    mined = mine_hard_negatives(images, model, per_image=1, spacing_mm=spacing)
    record = tmp_path / MINED_FILE
    atomic_write_json(record, mined_record(model, images, 1, mined))
    assert read_mined(record, model, images, 1) == mined and len(mined) == 2
    assert read_mined(record, model, images, 2) is None  # another count per image
    assert read_mined(record, model, images[:1], 1) is None  # other images
    other = copy.copy(model)
    other.card = dataclasses.replace(model.card, weights_sha256="b" * 64)
    assert read_mined(record, other, images, 1) is None  # another starting model
    other.card = dataclasses.replace(model.card, weights_sha256=None)
    assert read_mined(record, other, images, 1) is None  # a model not loaded from a file: nothing to match
    record.write_text("{not json")
    assert read_mined(record, model, images, 1) is None
    assert read_mined(tmp_path / "missing.json", model, images, 1) is None


def test_a_resumed_run_reads_its_hard_negatives_back_rather_than_mining_again(tmp_path, demo_root, disc_model):
    start = save_model(disc_model.net, {**disc_model.card.to_json(), "preprocess": {"working_spacing_mm": 0.2},
                                        "tile_size": 64}, tmp_path / "start.safetensors")
    config = TrainConfig(**TINY, max_epochs=1, max_batches_per_epoch=1, early_stop_delta=0.0,
                         init_weights=str(start), hard_negatives_per_image=2)
    out = tmp_path / "run"
    first = []
    train(demo_root, out, config, callback=first.append, cache_dir=tmp_path / "cache")
    record = json.loads((out / MINED_FILE).read_text())
    (count,) = [e.metrics["hard_negatives"] for e in first if "hard_negatives" in e.metrics]
    assert len(record["samples"]) == count and record["per_image"] == 2
    assert any(e.message == "finding the starting model's false positives" for e in first)
    config_two = dataclasses.replace(config, max_epochs=2)
    (out / "config.json").write_text(json.dumps(config_two.to_json()))  # resume goes on to a second epoch
    again = []
    train(demo_root, out, config_two, resume=True, callback=again.append, cache_dir=tmp_path / "cache")
    assert not any(e.message == "finding the starting model's false positives" for e in again)
    assert any(e.message.endswith(f"as mined before ({MINED_FILE})") for e in again)
    assert [e.metrics["hard_negatives"] for e in again if "hard_negatives" in e.metrics] == [count]
    assert json.loads((out / "history.json").read_text())[-1]["epoch"] == 2
