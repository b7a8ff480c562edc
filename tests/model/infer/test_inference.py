"""Inference: the fast path equals the plain one, tiles blend, lesions are measured, bf16 matches fp32, cache."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from model.data.dicom_io import read_image
from model.infer.predictor import InferenceConfig, Predictor, ResultCache, TiledSegmenter
from model.nn.runtime import Runner, fold_batchnorm
from model.data.study_index import build_index
from model.nn.weights import save_model
from tests.conftest import make_dicom


def _disc_image(shape=(600, 400), discs=((300, 150, 14),)) -> tuple[np.ndarray, np.ndarray]:
    """A breast-like half-ellipse (chest wall left) with bright discs; returns (uint16 image, truth mask)."""
    rows, cols = shape
    yy, xx = np.mgrid[:rows, :cols]
    rng = np.random.default_rng(1)
    breast = (yy - rows / 2) ** 2 / (rows * 0.45) ** 2 + xx**2 / (cols * 0.9) ** 2 <= 1
    img = np.where(breast, 18000 + rng.normal(0, 1500, shape), 500)
    truth = np.zeros(shape, bool)
    for cy, cx, r in discs:
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        img[disc] += 15000
        truth |= disc
    return np.clip(img, 0, 65535).astype(np.uint16), truth


def test_folded_batchnorm_equals_the_plain_network(disc_model):
    torch.manual_seed(0)
    for m in disc_model.net.modules():  # non-trivial running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.running_var.abs().sum() > 0
    x = torch.rand(1, 1, 64, 96)
    with torch.no_grad():
        plain = disc_model.net(x)
        folded = fold_batchnorm(disc_model.net)(x)
    assert torch.allclose(plain[0], folded[0], atol=1e-4) and torch.allclose(plain[1], folded[1], atol=1e-4)
    bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in fold_batchnorm(disc_model.net).modules())
    assert bn == 0


def test_tiles_blend_to_the_whole_image_result(disc_model):
    runner = Runner.create(disc_model.net, "cpu", bf16=False)
    img, _ = _disc_image((200, 160), discs=((60, 50, 8), (140, 110, 10)))
    working = (img.astype(np.float32) / 65535)
    breast = np.ones(working.shape, bool)
    whole = TiledSegmenter(runner, InferenceConfig(tile=1024))(working, breast)
    tiled = TiledSegmenter(runner, InferenceConfig(tile=96, overlap=32))(working, breast)
    (th, tw), tiles = TiledSegmenter(runner, InferenceConfig(tile=96, overlap=32)).tile_grid(breast)
    assert len(tiles) > 4
    assert np.abs(whole - tiled).mean() < 0.03
    assert ((whole > 0.5) == (tiled > 0.5)).mean() > 0.98


def test_tiles_without_breast_are_skipped(disc_model):
    runner = Runner.create(disc_model.net, "cpu", bf16=False)
    breast = np.zeros((400, 400), bool)
    breast[:, :150] = True
    segmenter = TiledSegmenter(runner, InferenceConfig(tile=128, overlap=32))
    _, tiles = segmenter.tile_grid(breast)
    _, all_tiles = segmenter.tile_grid(np.ones_like(breast))
    assert 0 < len(tiles) < len(all_tiles)
    assert all(x < 150 for _, x in tiles)


def test_lesions_are_found_and_measured(tmp_path, disc_model):
    img, truth = _disc_image()
    path = make_dicom(tmp_path / "disc.dcm", img, PixelSpacing=[0.1, 0.1], ImageLaterality="L", ViewPosition="CC")
    predictor = Predictor(disc_model, "cpu", bf16=False)
    result = predictor.predict(path)
    assert result.lesions, "the disc was not found"
    lesion = result.lesions[0]
    x0, y0, x1, y1 = lesion.bbox
    assert x0 <= 150 <= x1 and y0 <= 300 <= y1
    assert lesion.area_mm2 == pytest.approx(lesion.area_px * 0.01, rel=1e-6)
    assert 15 < lesion.longest_diameter_px < 45  # a disc of diameter 28
    assert 0 <= lesion.p_malignant <= 1 and lesion.label in ("benign", "malignant")
    assert result.case_score == max(l.p_malignant for l in result.lesions)
    mask = result.mask(disc_model.threshold)
    assert mask.shape == img.shape
    assert 2 * (mask & truth).sum() / (mask.sum() + truth.sum()) > 0.5


def test_roi_mode_runs_one_tile_at_the_point(tmp_path, disc_model):
    img, _ = _disc_image()
    path = make_dicom(tmp_path / "disc.dcm", img, PixelSpacing=[0.1, 0.1])  # a 2.8 mm disc, above the 4 mm2 floor
    result = Predictor(disc_model, "cpu", bf16=False).predict_roi(path, 150, 300)
    assert result.mode == "roi"
    assert any(l.bbox[0] <= 150 <= l.bbox[2] and l.bbox[1] <= 300 <= l.bbox[3] for l in result.lesions)


def test_bf16_masks_match_fp32_on_demo_studies(demo_root, disc_model):
    """bf16 autocast is kept on the CPU only if its masks match fp32 (Dice >= 0.99)."""
    fp32 = Predictor(disc_model, "cpu", bf16=False)
    bf16 = Predictor(disc_model, "cpu", bf16=True)
    assert bf16.runner.autocast_dtype == torch.bfloat16
    images = [i for i in build_index(demo_root, workers=1).images if i.view == "CC"][:6]
    inter = total = 0
    for image in images:
        m = read_image(image.path)
        a = fp32.predict(m).mask(disc_model.threshold)
        b = bf16.predict(m).mask(disc_model.threshold)
        inter += (a & b).sum()
        total += a.sum() + b.sum()
    assert total > 1000, "the masks are empty: the comparison would prove nothing"
    assert 2 * inter / total >= 0.99


def test_results_are_cached_per_image_and_model(tmp_path, disc_model):
    img, _ = _disc_image()
    path = make_dicom(tmp_path / "disc.dcm", img, PixelSpacing=[0.1, 0.1])
    predictor = Predictor(disc_model, "cpu", bf16=False, cache_dir=tmp_path / "cache")
    first = predictor.predict(path)
    again = predictor.predict(path)
    assert not first.from_cache and again.from_cache
    assert [l.bbox for l in again.lesions] == [l.bbox for l in first.lesions]
    np.testing.assert_array_equal(again.probability, first.probability)
    key_a = ResultCache.key(path, "model-a", "whole", {})
    assert key_a != ResultCache.key(path, "model-b", "whole", {})
    (tmp_path / "cache" / f"{ResultCache.key(path, disc_model.version, 'whole', __import__('dataclasses').asdict(predictor.config))}.npz").write_bytes(b"damaged")
    assert predictor.predict(path).from_cache is False  # a damaged entry is recomputed


def test_infer_cli_json_with_a_corrupt_file(tmp_path, demo_root, disc_model):
    import shutil

    root = tmp_path / "studies"
    shutil.copytree(demo_root, root)
    (root / "CBIS-DDSM" / "corrupt.dcm").write_bytes(b"DICM" * 10)
    weights = save_model(disc_model.net, disc_model.card, tmp_path / "disc.safetensors")
    out = tmp_path / "out"
    env = {**__import__("os").environ, "BCIR_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "model.cli", "infer", str(root), "--weights", str(weights),
                             "--out", str(out), "--device", "cpu", "--json"], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout)
    assert [e["path"].endswith("corrupt.dcm") for e in data["errors"]] == [True]
    cc = [i for i in build_index(root, workers=1).images if i.view == "CC"]
    assert len(data["results"]) == len(cc)
    for item in data["results"]:
        assert {"path", "laterality", "view", "rows", "columns", "mask_path", "case_score", "lesions", "device", "seconds"} <= set(item)
        mask = cv2.imread(item["mask_path"], cv2.IMREAD_GRAYSCALE)
        assert mask.shape == (item["rows"], item["columns"])
        assert Path(item["overlay_path"]).is_file()
        for lesion in item["lesions"]:
            assert {"bbox", "area_px", "p_malignant", "label"} <= set(lesion) and len(lesion["bbox"]) == 4


def test_a_card_asking_for_test_time_flips_averages_each_tile_with_its_mirror(tmp_path, disc_model):
    """Test-time flips (issue 15, item 2) are the card's choice: its mask and malignancy are the mean of the tile's
    and of the mirrored tile's; a card without it runs each tile once."""
    import dataclasses

    from model.infer.predictor import malignancy_probability, segment_probability

    runner = Runner.create(disc_model.net, "cpu", bf16=False)
    img, _ = _disc_image((128, 96), discs=((40, 30, 8),))  # a disc off the mirror axis
    batch = torch.from_numpy((img.astype(np.float32) / 65535)[None, None])
    plain, mirrored = segment_probability(runner, batch), segment_probability(runner, torch.flip(batch, dims=[-1]))
    both = segment_probability(runner, batch, flips=True)
    np.testing.assert_allclose(both, (plain + mirrored[..., ::-1]) / 2, atol=1e-6)
    assert np.abs(plain - mirrored[..., ::-1]).max() > 1e-3  # the network is not symmetric: the mean is a change
    head = malignancy_probability(runner, batch, flips=True)
    np.testing.assert_allclose(head, (malignancy_probability(runner, batch)
                                      + malignancy_probability(runner, torch.flip(batch, dims=[-1]))) / 2, atol=1e-6)
    card = dataclasses.replace(disc_model.card, data={**disc_model.card.data, "inference": {"test_time_flips": True}})
    flipping = Predictor(dataclasses.replace(disc_model, card=card), "cpu", runtime="torch")
    assert flipping.segmenter.flips and not Predictor(disc_model, "cpu", runtime="torch").segmenter.flips
    path = make_dicom(tmp_path / "disc.dcm", *_disc_image()[:1], PixelSpacing=[0.1, 0.1])
    assert flipping.predict(path).lesions  # the disc is still found
