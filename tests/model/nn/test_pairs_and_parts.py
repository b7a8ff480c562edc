"""Half-written files of a killed writer (issue 11, item 9): a model's weights and card are written as a pair a reader
never sees mismatched, and the temp files a killed run leaves are cleaned up at the next run, but never one that a
live process is writing."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from model.errors import ModelFileError
from model import fileio
from model.nn import weights as mweights  # names used as mweights.X: the file runs against older code too
from model.train.config import TrainConfig
from model.train.loop import train
from model.nn.weights import load_model, random_model, read_card, save_model

ROOT = Path(__file__).resolve().parents[3]
HOUR_AGO = time.time() - 3600


def _child(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


KILLED_AFTER_THE_WEIGHTS = """
import dataclasses, os, sys
from model.nn.weights import random_model, save_model
real = os.replace
def replace(src, dst):
    real(src, dst)
    if str(dst).endswith(".safetensors"):
        os._exit(9)  # killed the moment the new weights are in place
os.replace = replace
model = random_model(2)
save_model(model.net, dataclasses.replace(model.card, version="second"), sys.argv[1])
"""


def test_a_kill_between_the_weights_and_the_card_leaves_a_pair_that_loads(tmp_path):
    first = random_model(1)
    path = save_model(first.net, dataclasses.replace(first.card, version="first"), tmp_path / "best.safetensors")
    proc = _child(KILLED_AFTER_THE_WEIGHTS, str(path))
    assert proc.wait(timeout=120) == 9, proc.stderr.read()
    assert json.loads(path.with_suffix(".json").read_text())["model_version"] == "first"  # the old card is still there
    loaded = load_model(path)  # the weights are the second model's: the reader takes the card made for them
    assert loaded.version == "second" and read_card(path).version == "second"
    second = random_model(2).net.state_dict()
    assert all((loaded.net.state_dict()[k] == v).all() for k, v in second.items())
    # the next run in that folder settles the pair: the card is renamed into place
    assert mweights.settle_pending_cards(tmp_path, older_than=0) == [mweights.pending_card_path(path)]
    assert json.loads(path.with_suffix(".json").read_text())["model_version"] == "second"
    assert not mweights.pending_card_path(path).exists() and load_model(path).version == "second"


def test_incomplete_pair_and_mixed_up_files_are_told_apart(tmp_path):
    a, b, c = (random_model(seed) for seed in (1, 2, 3))
    path = save_model(a.net, dataclasses.replace(a.card, version="a"), tmp_path / "a.safetensors")
    save_model(b.net, dataclasses.replace(b.card, version="b"), tmp_path / "b.safetensors")
    save_model(c.net, dataclasses.replace(c.card, version="c"), tmp_path / "c.safetensors")
    path.with_suffix(".json").write_text((tmp_path / "b.json").read_text())
    with pytest.raises(ModelFileError, match="does not match its model card .* mixed up"):
        load_model(path)
    mweights.pending_card_path(path).write_text((tmp_path / "c.json").read_text())  # a writer under way with other weights
    with pytest.raises(ModelFileError, match=r"incomplete pair \(being written or interrupted\)"):
        load_model(path)
    # a pending card older than a minute whose weights never came is dropped; the mismatch is then said as it is
    os.utime(mweights.pending_card_path(path), (HOUR_AGO, HOUR_AGO))
    assert mweights.settle_pending_cards(tmp_path) == [mweights.pending_card_path(path)] and not mweights.pending_card_path(path).exists()
    with pytest.raises(ModelFileError, match="mixed up"):
        load_model(path)


SAVES_AGAIN_AND_AGAIN = """
import dataclasses, sys
from model.nn.weights import random_model, save_model
models = [random_model(seed) for seed in (1, 2)]
for i in range(1, 41):
    save_model(models[i % 2].net, dataclasses.replace(models[i % 2].card, version=f"v{i}"), sys.argv[1])
"""


def test_a_reader_never_sees_a_mismatched_pair_while_a_writer_saves(tmp_path):
    models = [random_model(seed) for seed in (1, 2)]
    path = save_model(models[0].net, dataclasses.replace(models[0].card, version="v0"), tmp_path / "best.safetensors")
    writer = _child(SAVES_AGAIN_AND_AGAIN, str(path))  # another process: truly at the same time as the reader
    errors: list[str] = []
    versions = set()
    while writer.poll() is None or not versions:
        try:
            loaded = load_model(path)
        except ModelFileError as exc:
            errors.append(str(exc))
            continue
        versions.add(loaded.version)
        expected = models[int(loaded.version[1:]) % 2].net.state_dict()  # the weights its card was made for
        assert all((loaded.net.state_dict()[k] == v).all() for k, v in expected.items()), loaded.version
    assert writer.returncode == 0, writer.stderr.read()
    assert not errors and len(versions) > 1, (errors, sorted(versions))


HOLDS_A_PART_OPEN = """
import sys, time
from model.fileio import _atomic_file
with _atomic_file(sys.argv[1]) as f:
    f.write(b"x" * 1000)
    f.flush()
    print("writing", flush=True)
    time.sleep(600)
"""


def _writer_in_the_middle(target: Path) -> tuple[subprocess.Popen, Path]:
    proc = _child(HOLDS_A_PART_OPEN, str(target))
    assert proc.stdout.readline().strip() == "writing", proc.stderr.read()
    (part,) = [p for p in target.parent.glob(f".{target.name}.*.part")]
    return proc, part


def test_a_killed_runs_part_file_goes_at_the_next_run_but_a_live_one_stays(demo_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    killed, stale = _writer_in_the_middle(out / "checkpoint.safetensors")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    live, busy = _writer_in_the_middle(out / "history.json")
    try:
        for part in (stale, busy):  # both untouched for an hour: only the writer's life tells them apart
            os.utime(part, (HOUR_AGO, HOUR_AGO))
        config = TrainConfig(working_spacing_mm=0.2, tile=64, augment_factor=2, micro_batch=4, batch_size=8, device="cpu",
                             normal_ratio=0.5, max_epochs=1, max_batches_per_epoch=1)
        train(demo_root, out, config, cache_dir=tmp_path / "cache", resume=True)
        assert not stale.exists()  # the killed writer's
        assert busy.exists()  # the live writer's: never taken from under it
    finally:
        live.kill()
        live.wait(timeout=30)
    assert fileio.clean_stale_parts(out) == [busy]  # its writer gone, it goes too
    assert not list(out.glob(".*.part"))


def test_clean_stale_parts_leaves_young_files_and_other_names(tmp_path):
    young = tmp_path / ".x.json.123-abc.part"
    young.write_text("being written")
    other = tmp_path / "notes.part"
    other.write_text("not ours")
    os.utime(other, (HOUR_AGO, HOUR_AGO))
    old = tmp_path / ".y.json.abcdefgh.part"  # the name an older version gave its temp files (no pid)
    old.write_text("left by a kill")
    os.utime(old, (HOUR_AGO, HOUR_AGO))
    assert fileio.clean_stale_parts(tmp_path) == [old]
    assert young.exists() and other.exists()
