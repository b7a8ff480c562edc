"""TrainConfig: importable without torch, and every setting checked when the config is built."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from model.errors import BcirError, ConfigError
from model.nn.limits import NETWORK_DEPTH, tile_multiple
from model.train.config import BOUNDS, TrainConfig


def test_importing_the_config_does_not_import_torch():
    code = ("import sys; import model.train.config as c; c.TrainConfig(tile=64); "
            "print(json.dumps(sorted(m for m in ('torch', 'numpy', 'cv2') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize("settings", [
    {},  # the paper's
    # the demo model's (Makefile demo-weights)
    dict(views=("CC", "MLO"), working_spacing_mm=0.4, tile=256, micro_batch=16, batch_size=16, lr=1e-3,
         augment_factor=10, bf16=True, max_epochs=6, device="cpu", seed=0),
    # the tests'
    dict(working_spacing_mm=0.2, tile=64, augment_factor=2, micro_batch=4, batch_size=8, device="cpu", normal_ratio=0.5,
         max_epochs=1, max_batches_per_epoch=2, early_stop_delta=0.0),
    dict(working_spacing_mm=0.2, tile=64, augment_factor=6, micro_batch=2, batch_size=4, lr=2e-3, max_minutes=0.0),
    dict(views=["cc", "mlo"], micro_batch=8, batch_size=4, device="cuda:1", max_minutes=12.5),
])
def test_the_papers_the_demos_and_the_tests_settings_are_accepted(settings):
    config = TrainConfig(**settings)
    assert TrainConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    assert isinstance(config.views, tuple)


@pytest.mark.parametrize("settings, line", [
    (dict(tile=100), "tile 100 is not a multiple of 16 (the network pools 4 times by 2)"),
    (dict(tile=1000), "tile 1000 is not a multiple of 16"),
    (dict(tile=16), "tile 16 is out of range (32 to 2048)"),
    (dict(tile=4096), "tile 4096 is out of range (32 to 2048)"),
    (dict(tile="64"), "tile '64' is not a whole number"),
    (dict(tile=64.5), "tile 64.5 is not a whole number"),
    (dict(working_spacing_mm=0.0005), "working_spacing_mm 0.0005 is out of range (0.05 to 2)"),
    (dict(working_spacing_mm=float("nan")), "working_spacing_mm nan is out of range"),
    (dict(val_fraction=0.0), "val_fraction 0.0 is out of range (above 0 and below 1)"),
    (dict(val_fraction=1), "val_fraction 1 is out of range (above 0 and below 1)"),
    (dict(lr=0), "lr 0 is out of range (above 0 and at most 1)"),
    (dict(beta2=1.0), "beta2 1.0 is out of range (at least 0 and below 1)"),
    (dict(batch_size=0), "batch_size 0 is out of range (1 to 4096)"),
    (dict(micro_batch=-2), "micro_batch -2 is out of range (1 to 4096)"),
    (dict(max_epochs=0), "max_epochs 0 is out of range"),
    (dict(max_epochs=True), "max_epochs True is not a whole number"),
    (dict(augment_factor=0), "augment_factor 0 is out of range"),
    (dict(normal_ratio=-0.1), "normal_ratio -0.1 is out of range"),
    (dict(dropout=0.95), "dropout 0.95 is out of range (0 to 0.9)"),
    (dict(seed=-1), "seed -1 is out of range (0 to 4294967295)"),
    (dict(max_batches_per_epoch=0), "max_batches_per_epoch 0 is out of range (at least 1)"),
    (dict(max_minutes=-5), "max_minutes -5 is out of range (at least 0)"),
    (dict(views=("CC", "LAT")), "views has 'LAT', not a view training knows (CC, MLO)"),
    (dict(views=()), "views is empty"),
    (dict(views="CC"), "views 'CC' is not a list of views"),
    (dict(device="tpu"), "device 'tpu' is unknown (auto, cpu, cuda or cuda:N)"),
    (dict(bf16="yes"), "bf16 'yes' is not true or false"),
    (dict(init_weights=""), "init_weights '' is not a model file"),
])
def test_a_bad_setting_is_one_typed_line_that_names_it(settings, line):
    with pytest.raises(ConfigError) as caught:
        TrainConfig(**settings)
    assert str(caught.value).startswith(line) and "\n" not in str(caught.value)
    assert caught.value.option == next(iter(settings)) and isinstance(caught.value, BcirError)
    assert caught.value.naming("--x").startswith("--x ")
    with pytest.raises(ConfigError):  # a config read back from a file is checked the same way
        TrainConfig.from_json({**TrainConfig().to_json(), **settings})


def test_the_tile_rule_and_ranges_are_the_model_cards():
    """What TrainConfig accepts, a model card accepts: the depth train() builds, the card's tile and spacing ranges."""
    from model.nn.network import BCirUNet
    from model.nn.card import NETWORK_RANGES, PREPROCESS_RANGES, TILE_RANGE

    assert NETWORK_DEPTH == BCirUNet.__init__.__kwdefaults__["depth"]
    assert tile_multiple() == 2 ** (NETWORK_DEPTH - 1) == 16 and tile_multiple(6) == 32
    assert (int, BOUNDS["tile"].low, BOUNDS["tile"].high) == TILE_RANGE
    spacing = PREPROCESS_RANGES["working_spacing_mm"]
    assert (float, BOUNDS["working_spacing_mm"].low, BOUNDS["working_spacing_mm"].high) == spacing
    assert (float, BOUNDS["dropout"].low, BOUNDS["dropout"].high) == NETWORK_RANGES["dropout"]
