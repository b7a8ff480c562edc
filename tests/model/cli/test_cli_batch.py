"""``bcir`` at its one entry point: one bad file never stops an ``infer`` batch, a closed pipe ends a command quietly,
an unexpected OS error is one line."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from model.cli import main as cli
from model.cli import model_info
from model.nn.weights import save_model
from tests.conftest import make_dicom

OOM_SHAPE = (210, 150)  # the image whose preprocessing runs out of memory in the test below


def _pixels(shape=(200, 150), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full(shape, 500, np.uint16)
    img[:, : shape[1] // 2] = 18000 + rng.integers(0, 1500, (shape[0], shape[1] // 2))
    return img


@pytest.fixture
def batch(tmp_path, disc_model, monkeypatch):
    """A folder of small MG DICOMs, weights, an output folder, and the cache out of the home folder."""
    monkeypatch.setenv("BCIR_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "in"
    first = make_dicom(folder / "first_LEFT_CC.dcm", _pixels(seed=1), ImageLaterality="L", ViewPosition="CC")
    last = make_dicom(folder / "last_RIGHT_CC.dcm", _pixels(seed=2), ImageLaterality="R", ViewPosition="CC")
    weights = save_model(disc_model.net, disc_model.card, tmp_path / "disc.safetensors")
    return {"first": first, "last": last, "folder": folder, "weights": weights, "out": tmp_path / "out"}


def _infer(batch, paths, capsys) -> tuple[int, dict]:
    argv = ["infer", *map(str, paths), "--weights", str(batch["weights"]), "--out", str(batch["out"]),
            "--device", "cpu", "--no-cache", "--json"]
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, (json.loads(captured.out) if captured.out.strip() else {})


def _bad_transfer_syntax(batch) -> Path:
    path = make_dicom(batch["folder"] / "bad_syntax_RIGHT_MLO.dcm", _pixels(seed=3), ImageLaterality="R", ViewPosition="MLO")
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.3.4"  # a UID, but not a transfer syntax: pydicom's is_compressed raises
    ds.save_as(path)
    return path


def _reader_raises(batch, monkeypatch) -> Path:
    """A file on which the reader fails with an exception it does not type (what pydicom's is_compressed did for a
    UID that is not a transfer syntax, before the reader checked it): the batch must not depend on the reader
    typing every failure."""
    import model.data.dicom_io

    path = make_dicom(batch["folder"] / "odd_RIGHT_MLO.dcm", _pixels(seed=7), ImageLaterality="R", ViewPosition="MLO")
    real_read = model.data.dicom_io.read_image

    def read_image(source, *args, **kwargs):
        if Path(source).name == path.name:
            raise ValueError("UID is not a transfer syntax.")
        return real_read(source, *args, **kwargs)

    monkeypatch.setattr(model.data.dicom_io, "read_image", read_image)
    return path


def _in_unreadable_folder(batch, monkeypatch) -> Path:
    """A file in a folder the user may not search: stat() is EACCES (simulated; the tests run as root)."""
    locked = batch["folder"] / "locked"
    path = make_dicom(locked / "hidden_LEFT_MLO.dcm", _pixels(seed=4), ImageLaterality="L", ViewPosition="MLO")
    real_stat = pathlib.Path.stat

    def stat(self, *args, **kwargs):
        if locked in Path(os.path.abspath(self)).parents:
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "stat", stat)
    return path


def _out_of_memory(batch, monkeypatch) -> Path:
    """An image whose preprocessing raises MemoryError (simulated in the preprocessing the predictor calls)."""
    import model.infer.predictor

    path = make_dicom(batch["folder"] / "huge_LEFT_MLO.dcm", _pixels(OOM_SHAPE, seed=5), ImageLaterality="L", ViewPosition="MLO")
    real_prepare = model.infer.predictor.prepare

    def prepare(image, *args, **kwargs):
        if image.shape == OOM_SHAPE:
            raise MemoryError()
        return real_prepare(image, *args, **kwargs)

    monkeypatch.setattr(model.infer.predictor, "prepare", prepare)
    return path


@pytest.mark.parametrize("kind, reason", [
    ("transfer syntax", None),  # whatever the reader says, as long as it is one line
    ("reader raises", "UID is not a transfer syntax. (ValueError)"),
    ("unreadable folder", "permission denied"),
    ("out of memory", "out of memory"),
])
def test_one_bad_file_goes_to_errors_and_the_batch_goes_on(batch, capsys, monkeypatch, kind, reason):
    bad = {"transfer syntax": lambda: _bad_transfer_syntax(batch),
           "reader raises": lambda: _reader_raises(batch, monkeypatch),
           "unreadable folder": lambda: _in_unreadable_folder(batch, monkeypatch),
           "out of memory": lambda: _out_of_memory(batch, monkeypatch)}[kind]()
    code, data = _infer(batch, [batch["first"], bad, batch["last"]], capsys)
    assert code == 0
    assert [Path(r["path"]).name for r in data["results"]] == ["first_LEFT_CC.dcm", "last_RIGHT_CC.dcm"]
    assert [Path(e["path"]).name for e in data["errors"]] == [bad.name]
    got = data["errors"][0]["reason"]
    assert got and "\n" not in got and str(bad) not in got
    if reason:
        assert got == reason
    for item in data["results"]:
        assert Path(item["mask_path"]).is_file() and Path(item["overlay_path"]).is_file()


def test_a_file_name_that_is_not_utf8_is_processed(batch, capsys):
    raw = os.fsencode(batch["folder"]) + b"/caf\xe9_LEFT_MLO.dcm"  # Latin-1 bytes, as an old archive writes them
    os.rename(make_dicom(batch["folder"] / "tmp.dcm", _pixels(seed=6), ImageLaterality="L", ViewPosition="MLO"), raw)
    name = os.fsdecode(raw)  # how Python hands such a name over in sys.argv
    code, data = _infer(batch, [name, batch["last"]], capsys)
    assert code == 0 and data["errors"] == []
    assert [r["path"] for r in data["results"]] == [name, str(batch["last"])]
    masks = [Path(r["mask_path"]) for r in data["results"]]
    assert all(m.is_file() for m in masks) and len(set(masks)) == 2
    # the text output names it too, readable, instead of failing on the terminal's encoding
    assert cli.main(["infer", name, "--weights", str(batch["weights"]), "--out", str(batch["out"]), "--device", "cpu",
                     "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "caf\ufffd_LEFT_MLO.dcm: case score" in out and "1 images, 0 errors" in out


def test_a_folder_with_a_bad_file_keeps_every_other_image(batch, capsys):
    bad = _bad_transfer_syntax(batch)
    code, data = _infer(batch, [batch["folder"], "--views", "CC,MLO"], capsys)
    assert code == 0
    assert sorted(Path(r["path"]).name for r in data["results"]) == ["first_LEFT_CC.dcm", "last_RIGHT_CC.dcm"]
    assert [Path(e["path"]).name for e in data["errors"]] == [bad.name]


ROI_REFUSED = "bcir infer: --roi takes X,Y in pixels of the original image\n"


@pytest.mark.parametrize("roi", ["1,2,3", "5", "left,top"])
def test_a_roi_that_is_not_two_numbers_is_refused_in_one_line(batch, capsys, roi):
    argv = ["infer", str(batch["first"]), "--weights", str(batch["weights"]), "--out", str(batch["out"]),
            "--device", "cpu", "--no-cache", "--roi", roi]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == ROI_REFUSED
    assert not batch["out"].exists()


def test_a_roi_of_three_numbers_is_refused_under_python_O_too(batch, tmp_path):
    """The check is not an assert, which ``python -O`` strips: there three numbers reached the predictor."""
    env = {**os.environ, "BCIR_DATA_DIR": str(tmp_path / "data"), "BCIR_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-O", "-m", "model.cli", "infer", str(batch["first"]), "--weights",
                           str(batch["weights"]), "--out", str(batch["out"]), "--device", "cpu", "--no-cache",
                           "--roi", "1,2,3"], capture_output=True, text=True, env=env, timeout=300)
    assert (proc.returncode, proc.stderr) == (2, ROI_REFUSED)


def test_an_os_error_outside_a_batch_is_one_line(monkeypatch, capsys):
    def boom(args):
        raise PermissionError(13, "Permission denied", "/srv/site/models")

    monkeypatch.setattr(model_info, "_cmd_model_info", boom)
    assert cli.main(["model-info"]) == 2
    err = capsys.readouterr().err
    assert err == "bcir model-info: Permission denied: /srv/site/models\n"


@pytest.mark.parametrize("argv", [["jobs", "list"], ["--help"], ["index", "{folder}", "--json"]])
def test_a_closed_pipe_ends_the_command_quietly(tmp_path, argv):
    """`bcir jobs list | head`: the reader stops reading; no 'Broken pipe' and no traceback on stderr."""
    folder = tmp_path / "in"
    make_dicom(folder / "a_LEFT_CC.dcm", _pixels(), ImageLaterality="L", ViewPosition="CC")
    env = {**os.environ, "BCIR_DATA_DIR": str(tmp_path / "data"), "BCIR_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "model.cli", *[a.format(folder=folder) for a in argv]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # nobody reads: the command's first write meets a closed pipe
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == cli.EXIT_BROKEN_PIPE
    assert "Broken pipe" not in err and "Traceback" not in err and "Exception ignored" not in err
