"""The CUDA path against the CPU: tiles, CUDA-graph replay, several whole views, batching, and a training run.

Marked ``gpu``: they need a CUDA GPU, so on a machine without one they are skipped with that reason (tests/conftest.py),
and ``make gpu-check`` runs them where one is lent (model/cli/gpu_check.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from model.data.study_index import build_index
from model.evaluate.bench import _GraphRunner, bench_tile, mask_agreement
from model.infer.compare import dice
from model.infer.predictor import InferenceConfig, Predictor
from model.nn.runtime import Runner
from model.nn.weights import load_model
from model.registry.resolve import resolve_model
from model.train.config import TrainConfig
from model.train.loop import train

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def bundled():
    return load_model(resolve_model(None))


@pytest.fixture(scope="module")
def cc_views(demo_root) -> list[str]:
    index = build_index(demo_root, workers=1)
    views = [str(image.path) for image in index.images if image.view == "CC"]
    assert len(views) >= 4
    return views[:4]


def test_shipped_cuda_path_draws_the_cpu_fp32_mask_on_real_tissue(bundled, cc_views):
    for view in cc_views[:2]:
        tile = bench_tile(view, bundled, 512)
        reference = Runner.create(bundled.net, "cpu", fast=False).segment(tile)[0]
        # fp32 (TF32 convolutions) must draw the same mask; bf16 moves a few edge pixels of small lesions
        for bf16, least in ((False, 0.99), (None, 0.95)):
            logits = Runner.create(bundled.net, "cuda", bf16=bf16).segment(tile)[0]
            agreement = mask_agreement(reference, logits)
            assert agreement["reference_pixels"] > 0, "the tile holds no lesion: the comparison would prove nothing"
            assert agreement["dice"] >= least, (view, bf16, agreement)


def test_cuda_graph_replays_each_new_tile_not_the_captured_one(bundled, cc_views):
    tiles = [bench_tile(view, bundled, 512) for view in cc_views[:3]]
    shipped = Runner.create(bundled.net, "cuda")
    graph = _GraphRunner(shipped, tiles[0])
    outputs = []
    for tile in tiles:
        expected, replayed = shipped.segment(tile)[0], graph.segment(tile)[0]
        assert mask_agreement(expected, replayed)["dice"] >= 0.999
        outputs.append(replayed)
    assert not torch.equal(outputs[0], outputs[1])  # the static input buffer was refilled


def test_whole_views_on_cuda_list_the_lesions_the_cpu_lists(bundled, cc_views):
    cpu = Predictor(bundled, "cpu", bf16=False, cache_dir=None)
    gpu = Predictor(bundled, "cuda", bf16=False, cache_dir=None)
    shipped = Predictor(bundled, "cuda", cache_dir=None)
    found = 0
    for view in cc_views:  # case after case through one predictor, as the reader's worklist does
        expected = cpu.predict(view, use_cache=False)
        result = gpu.predict(view, use_cache=False)
        fast = shipped.predict(view, use_cache=False)
        found += len(expected.lesions)
        assert len(result.lesions) == len(expected.lesions)
        assert dice(result.mask(bundled.threshold), expected.mask(bundled.threshold)) >= 0.99
        assert dice(fast.mask(bundled.threshold), expected.mask(bundled.threshold)) >= 0.95
        for a, b in zip(expected.lesions, result.lesions):  # fp32 without TF32 on both: the same arithmetic
            assert abs(a.p_malignant - b.p_malignant) < 0.005
    assert found > 0


def test_batched_tiles_on_cuda_give_the_one_at_a_time_map(bundled, cc_views):
    one = Predictor(bundled, "cuda", bf16=False, cache_dir=None)
    many = Predictor(bundled, "cuda", bf16=False, config=InferenceConfig(batch=16), cache_dir=None)
    for view in cc_views[:2]:
        a, b = one.predict(view, use_cache=False), many.predict(view, use_cache=False)
        assert many.segmenter.last_tile_count == one.segmenter.last_tile_count
        assert np.abs(a.probability.astype(int) - b.probability.astype(int)).max() <= 3  # of 255


def test_a_training_run_on_cuda_learns_and_its_model_loads_on_the_cpu(demo_root, tmp_path):
    config = TrainConfig(working_spacing_mm=0.2, tile=64, augment_factor=2, micro_batch=8, batch_size=8,
                         device="cuda", normal_ratio=0.5, max_epochs=4, lr=2e-3, early_stop_delta=0.0, bf16=True)
    result = train(demo_root, tmp_path / "run", config, cache_dir=tmp_path / "cache")
    losses = [h["train_loss"] for h in result.history]
    assert len(losses) == 4 and losses[-1] < losses[0]
    model = load_model(result.model_path)
    assert next(model.net.parameters()).device.type == "cpu"
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    assert card["tile_size"] == 64
