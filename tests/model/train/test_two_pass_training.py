"""Training a two-pass model (issue 15, item 1): both parts trained into one run and written as one pair, each at its
own resolution; fine-tuning a pair starts each part from its own weights; a run stopped in its fine part resumes there
without training the coarse part again; ``bcir train --two-pass``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import torch

from model.cli.main import main
from model.data.preprocess import PreprocessConfig
from model.errors import ConfigError
from model.nn.weights import load_model, random_model, save_model, save_pair
from model.train.config import TrainConfig, TrainEvent
from model.train.two_pass import (FINE_SPACING_MM, FINE_TILE, is_two_pass, part_configs, run_checkpoint,
                                  train_pair)

# as in test_training: 0.2 mm working spacing gives ~144 x 90 px views of the small demo studies; one batch an epoch
TINY = dict(working_spacing_mm=0.2, tile=64, augment_factor=2, micro_batch=2, batch_size=2, device="cpu",
            normal_ratio=0.5, max_epochs=1, max_batches_per_epoch=1, early_stop_delta=0.0)


def _init_pair(folder: Path) -> Path:
    """A two-pass model of two differently initialised networks: coarse 0.2 mm, fine 0.1 mm, both 64 px tiles."""
    coarse = random_model(1, version="init-coarse", preprocess=PreprocessConfig(working_spacing_mm=0.2), tile_size=64)
    fine = random_model(2, version="init-fine", preprocess=PreprocessConfig(working_spacing_mm=0.1), tile_size=64)
    return save_pair(coarse, fine, folder / "init.safetensors", version="init-pair-v1")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _conv(net) -> torch.Tensor:
    """The network's first convolution's weights (unlike BatchNorm statistics, moved only by the optimiser)."""
    return next(v for v in net.state_dict().values() if v.ndim == 4).clone()


def test_part_configs_give_each_part_its_resolution_and_start(tmp_path):
    pair = _init_pair(tmp_path)
    config = TrainConfig(**TINY, lr=1e-3, init_weights=str(pair))
    coarse, fine = part_configs(dataclasses.replace(config, working_spacing_mm=0.4, tile=256))
    assert (coarse.init_weights, coarse.working_spacing_mm, coarse.tile) == (str(pair), 0.2, 64)  # the cards' own
    assert (fine.init_weights, fine.working_spacing_mm, fine.tile) == (str(tmp_path / "init.fine.safetensors"), 0.1, 64)
    assert coarse.lr == fine.lr == 1e-3 and coarse.views == fine.views and coarse.split_seed == fine.split_seed
    with pytest.raises(ConfigError, match="fine_tile 128 px differs from the fine part's 64 px"):
        part_configs(config, fine_tile=128)

    scratch = TrainConfig(**TINY)
    coarse, fine = part_configs(scratch)
    assert coarse == scratch and (fine.working_spacing_mm, fine.tile, fine.init_weights) == (FINE_SPACING_MM, FINE_TILE,
                                                                                          None)
    with pytest.raises(ConfigError, match="^fine_tile 100 is not a multiple of 16"):
        part_configs(scratch, fine_tile=100)
    single = random_model(3, preprocess=PreprocessConfig(working_spacing_mm=0.2), tile_size=64)
    save_model(single.net, single.card, tmp_path / "single.safetensors")
    assert not is_two_pass(tmp_path / "single.safetensors") and is_two_pass(pair)
    coarse, fine = part_configs(TrainConfig(**TINY, init_weights=str(tmp_path / "single.safetensors")), fine_tile=64)
    assert coarse.init_weights == str(tmp_path / "single.safetensors") and fine.init_weights is None  # fine: scratch

    with pytest.raises(ConfigError, match="val_fraction differs between the coarse and the fine part"):
        train_pair(tmp_path, tmp_path / "run", scratch, dataclasses.replace(fine, val_fraction=0.5))
    assert not (tmp_path / "run").exists()


def test_a_two_pass_run_stopped_in_its_fine_part_resumes_there(demo_root, tmp_path, capsys):
    out = tmp_path / "run"
    coarse = TrainConfig(**TINY)
    fine = dataclasses.replace(coarse, working_spacing_mm=0.1, max_epochs=2)
    events: list[TrainEvent] = []
    stop = {"now": False}

    def on_event(event: TrainEvent) -> None:
        events.append(event)
        if event.kind == "epoch_end" and event.part == "fine":
            stop["now"] = True  # stopped in the fine part's second epoch, as a kill there would

    first = train_pair(demo_root, out, coarse, fine, callback=on_event, should_stop=lambda: stop["now"])
    assert first.cancelled and first.model_path is None and not (out / "model.safetensors").exists()
    assert (out / "coarse" / "model.safetensors").is_file() and run_checkpoint(out) == out / "fine" / "checkpoint.safetensors"
    kinds = [(e.kind, e.part) for e in events if e.kind in ("part_done", "done", "cancelled")]
    assert kinds == [("part_done", "coarse"), ("cancelled", "fine")]
    assert all(e.part in ("coarse", "fine") for e in events)
    coarse_files = {p.name: (_sha(p), p.stat().st_mtime_ns) for p in (out / "coarse").glob("*.safetensors")}

    # resumed from the command line: the run folder says it is a two-pass run; the coarse part is not trained again
    capsys.readouterr()
    assert main(["train", str(demo_root), "--out", str(out), "--resume"]) == 0
    said = capsys.readouterr().out
    assert "the coarse part had finished (1 epochs), not trained again" in said and "resumed after epoch 1" in said
    assert "two-pass model (its fine part beside it)" in said
    assert {p.name: (_sha(p), p.stat().st_mtime_ns) for p in (out / "coarse").glob("*.safetensors")} == coarse_files
    history = json.loads((out / "history.json").read_text())
    assert [(h["part"], h["epoch"]) for h in history] == [("coarse", 1), ("fine", 1), ("fine", 2)]
    run = json.loads((out / "run.json").read_text())
    assert run["two_pass"] and run["skipped"] == ["coarse"] and run["parts"]["fine"]["epochs_done"] == 2

    # the pair: loadable as one model, each part at its own resolution, with its own training record
    for name in ("model", "best"):
        model = load_model(out / f"{name}.safetensors")
        assert model.two_pass and model.version == model.fine.version
        assert (model.preprocess.working_spacing_mm, model.tile_size) == (0.2, 64)
        assert (model.fine.preprocess.working_spacing_mm, model.fine.tile_size) == (0.1, 64)
        assert model.card.training.config["working_spacing_mm"] == 0.2
        assert model.fine.card.training.config["working_spacing_mm"] == 0.1
        if name == "model":  # the final epochs' (best: each part's best epoch by validation Dice)
            assert len(model.card.training.history) == 1 and len(model.fine.card.training.history) == 2
    assert model.fine.path.name == "best.fine.safetensors"
    split = json.loads((out / "split.json").read_text())
    assert split == json.loads((out / "coarse" / "split.json").read_text()) and split["val"]
    assert json.loads((out / "fine" / "split.json").read_text())["val"] == split["val"]  # the same held-out patients


def test_fine_tuning_a_pair_starts_each_part_from_its_own_weights(demo_root, tmp_path):
    pair = _init_pair(tmp_path)
    init = load_model(pair)
    # a learning rate so small that one step leaves every weight where it started
    coarse, fine = part_configs(TrainConfig(**TINY, lr=1e-9, init_weights=str(pair)))
    result = train_pair(demo_root, tmp_path / "run", coarse, fine)
    assert not result.cancelled and result.skipped == ()
    new = load_model(result.model_path)
    assert torch.allclose(_conv(new.net), _conv(init.net), atol=1e-6)
    assert torch.allclose(_conv(new.fine.net), _conv(init.fine.net), atol=1e-6)
    assert not torch.allclose(_conv(new.fine.net), _conv(init.net), atol=1e-3)  # the fine part is not the coarse one
    assert new.card.parent == new.fine.card.parent == "init-pair-v1" and new.version != "init-pair-v1"
    started = {part: json.loads((tmp_path / "run" / part / "config.json").read_text())["init_weights"]
               for part in ("coarse", "fine")}
    assert started == {"coarse": str(pair), "fine": str(tmp_path / "init.fine.safetensors")}


def test_bcir_train_takes_fine_part_options_only_with_two_pass(demo_root, tmp_path, capsys):
    assert main(["train", str(demo_root), "--out", str(tmp_path / "run"), "--fine-tile", "64"]) == 2
    assert "add --two-pass" in capsys.readouterr().err
    pair = _init_pair(tmp_path)
    assert main(["train", str(demo_root), "--out", str(tmp_path / "run"), "--two-pass", "--init-weights", str(pair),
                 "--tile", "128"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--tile 128 differs from the coarse part's 64" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()
