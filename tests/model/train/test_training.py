"""Training: split without leaks, aligned augmentation, a tiny run that learns, resume after SIGKILL, cancel, DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from model.train.augment import ROTATIONS, TRANSFORMS, Transform, sample_roi
from model.data.split import split_patients
from model.data.study_index import build_index
from model.train.config import TrainConfig, TrainEvent
from model.train.loop import train

# Small demo studies carry no spacing, so 0.05 mm is assumed: 0.2 mm working spacing gives ~144 x 90 px views.
TINY = dict(working_spacing_mm=0.2, tile=64, augment_factor=2, micro_batch=4, batch_size=8, device="cpu", normal_ratio=0.5)


def test_split_has_no_patient_in_both_parts(demo_root):
    index = build_index(demo_root, workers=1)
    labels = {}
    for image in index.images:
        labels[image.patient_id] = labels.get(image.patient_id, False) or any(a.malignant for a in image.abnormalities)
    split = split_patients(labels, val_fraction=0.3, seed=1)
    assert not set(split.train) & set(split.val)
    assert set(split.train) | set(split.val) == set(labels)
    assert split == split_patients(labels, val_fraction=0.3, seed=1)  # seeded
    # a patient listed in two CSVs (two subsets) is still one patient on one side
    subsets = {}
    for image in index.images:
        for a in image.abnormalities:
            subsets.setdefault(image.patient_id, set()).add(a.source.split(" row")[0])
    assert any(len(s) > 1 for s in subsets.values())


def test_split_is_stratified_and_seeded():
    labels = {f"P{i:03d}": i % 3 == 0 for i in range(100)}
    split = split_patients(labels, val_fraction=0.3, seed=0)
    val_malignant = sum(labels[p] for p in split.val)
    assert len(split.val) == 30 and 9 <= val_malignant <= 11  # 34 malignant x 0.3
    assert split_patients(labels, seed=1).val != split.val


def test_augmentation_keeps_image_and_mask_aligned():
    mask = np.zeros((200, 200), np.uint8)
    mask[70:110, 90:150] = 1
    mask[120:135, 60:80] = 1
    image = mask.astype(np.float32)
    assert len(TRANSFORMS) == 40 and len(set(TRANSFORMS)) == 40
    assert ROTATIONS == tuple(20.0 * k for k in range(1, 10)) and all(0 < a <= 180 for a in ROTATIONS)
    for t in TRANSFORMS:
        quiet = Transform(t.angle, t.crop, t.flip, t.shift, 0.0)
        img, msk = sample_roi(image, mask, (110.0, 100.0), 96, quiet)
        assert msk.dtype == np.uint8 and set(np.unique(msk)) <= {0, 1}  # nearest-neighbour: still binary
        both = ((img > 0.5) & (msk > 0)).sum()
        either = ((img > 0.5) | (msk > 0)).sum()
        assert either > 0 and both / either > 0.9, t
    noisy = next(t for t in TRANSFORMS if t.noise > 0 and t.angle == 0 and not t.flip)
    img, msk = sample_roi(image, mask, (110.0, 100.0), 96, noisy)
    clean, same_mask = sample_roi(image, mask, (110.0, 100.0), 96, Transform(noisy.angle, noisy.crop, noisy.flip, noisy.shift))
    assert np.array_equal(msk, same_mask) and not np.array_equal(img, clean)  # noise on the image only


def test_rotation_and_flip_move_the_mask_as_expected():
    mask = np.zeros((101, 101), np.uint8)
    mask[50, 70:80] = 1  # a bar to the right of the centre
    _, flipped = sample_roi(mask.astype(np.float32), mask, (50.0, 50.0), 101, Transform(flip=True))
    assert flipped[50, 21:31].all() and not flipped[50, 70:80].any()  # x -> 100 - x
    _, rotated = sample_roi(mask.astype(np.float32), mask, (50.0, 50.0), 101, Transform(angle=180.0))
    assert rotated[50, 21:31].all()


def test_tiny_training_run_lowers_the_loss(demo_root, tmp_path):
    events: list[TrainEvent] = []
    config = TrainConfig(**TINY, max_epochs=4, lr=2e-3, early_stop_delta=0.0)
    result = train(demo_root, tmp_path / "run", config, callback=events.append, cache_dir=tmp_path / "cache")
    losses = [h["train_loss"] for h in result.history]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert result.model_path and result.model_path.is_file() and (tmp_path / "run" / "model.json").is_file()
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    patients = card["training"]["patients"]
    assert patients["train"] and patients["train_count"] == len(patients["train"])
    assert card["preprocess"]["working_spacing_mm"] == 0.2 and card["tile_size"] == 64
    saved = json.loads((tmp_path / "run" / "split.json").read_text())
    assert saved["train"] and not set(saved["train"]) & set(saved["val"])
    assert (saved["train"], saved["val"]) == (patients["train"], patients["val"])  # the same hashes as the card
    kinds = [e.kind for e in events]
    assert kinds.count("epoch_end") == 4 and "batch" in kinds and kinds[-1] == "done"
    assert all(e.eta_s is not None and e.eta_s >= 0 for e in events if e.kind == "batch")
    assert TrainConfig.from_json(json.loads((tmp_path / "run" / "config.json").read_text())) == config


def test_cancel_leaves_no_half_written_model(demo_root, tmp_path):
    calls = {"n": 0}

    def stop_in_second_epoch() -> bool:
        calls["n"] += 1
        return calls["n"] > 5

    config = TrainConfig(**TINY, max_epochs=5, max_batches_per_epoch=4)
    out = tmp_path / "run"
    result = train(demo_root, out, config, should_stop=stop_in_second_epoch, cache_dir=tmp_path / "cache")
    assert result.cancelled and result.model_path is None
    assert not (out / "model.safetensors").exists()
    assert (out / "checkpoint.safetensors").is_file()  # epoch 1 completed before the cancel
    assert not list(out.glob("*.part")) and not list(out.glob(".*.part"))
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1]


def _train_cmd(root: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "model.cli", "train", str(root), "--out", str(out), "--epochs", str(epochs),
            "--working-spacing", "0.2", "--tile", "64", "--augment-factor", "6", "--micro-batch", "2", "--batch-size", "4",
            "--device", "cpu", *extra]


def test_resume_after_sigkill(demo_root, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "BCIR_CACHE_DIR": str(tmp_path / "cache")}
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"early_stop_delta": 0.0}))
    proc = subprocess.Popen(_train_cmd(demo_root, out, 6, "--config", str(config_file)), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    history = out / "history.json"
    while time.time() < deadline:  # wait until epoch 1 is checkpointed, then kill mid-epoch 2
        if history.is_file() and json.loads(history.read_text()):
            break
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done_before = [h["epoch"] for h in json.loads(history.read_text())]
    assert done_before and not (out / "model.safetensors").exists()
    resumed = subprocess.run(_train_cmd(demo_root, out, 6, "--resume"), env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert f"resumed after epoch {done_before[-1]}" in resumed.stdout
    epochs = [h["epoch"] for h in json.loads(history.read_text())]
    assert epochs == list(range(1, 7))
    assert (out / "model.safetensors").is_file()


def test_two_process_ddp_keeps_weights_equal(demo_root, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "BCIR_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", "2"]
    cmd = torchrun + _train_cmd(demo_root, out, 2)[1:]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["world_size"] == 2
    digests = run["rank_weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert (out / "model.safetensors").is_file()


def test_two_process_ddp_trains_a_two_pass_pair(demo_root, tmp_path):
    """bcir train --two-pass under torchrun: both parts train on both ranks, stay equal, and one pair is written."""
    out = tmp_path / "pair"
    env = {**os.environ, "BCIR_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", "2"]
    cmd = torchrun + _train_cmd(demo_root, out, 1, "--two-pass", "--fine-spacing", "0.1", "--fine-tile", "64")[1:]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for part in ("coarse", "fine"):
        run = json.loads((out / part / "run.json").read_text())
        assert run["world_size"] == 2 and len(set(run["rank_weight_digests"])) == 1, part
    from model.nn.weights import load_model

    pair = load_model(out / "model.safetensors")
    assert pair.two_pass and pair.preprocess.working_spacing_mm == 0.2 and pair.fine.preprocess.working_spacing_mm == 0.1


def test_under_ddp_the_ranks_share_the_mining_and_find_what_one_process_finds(demo_root, tmp_path, disc_model):
    from model.nn.weights import save_model

    start = save_model(disc_model.net, {**disc_model.card.to_json(), "preprocess": {"working_spacing_mm": 0.2},
                                        "tile_size": 64}, tmp_path / "start.safetensors")
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"max_batches_per_epoch": 1, "early_stop_delta": 0.0}))
    extra = ("--init-weights", str(start), "--hard-negatives", "2", "--config", str(config_file))
    env = {**os.environ, "BCIR_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    one = subprocess.run(_train_cmd(demo_root, tmp_path / "one", 1, *extra), env=env, capture_output=True, text=True,
                         timeout=600)
    assert one.returncode == 0, one.stdout[-3000:] + one.stderr[-3000:]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", "2"]
    two = subprocess.run(torchrun + _train_cmd(demo_root, tmp_path / "two", 1, *extra)[1:], env=env,
                         capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    mined_one = json.loads((tmp_path / "one" / "hard_negatives.json").read_text())
    mined_two = json.loads((tmp_path / "two" / "hard_negatives.json").read_text())
    assert mined_one["samples"] and mined_two == mined_one
    run = json.loads((tmp_path / "two" / "run.json").read_text())
    assert run["world_size"] == 2 and len(set(run["rank_weight_digests"])) == 1
