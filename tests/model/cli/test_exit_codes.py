"""The one error-to-exit map (model.cli.exit_codes): bad input and refused requests exit 2; a broken model file, a
broken review log and a stop request exit 1; the reason is always the error's own line."""

from __future__ import annotations

import pytest

from model.cli.exit_codes import EXIT_FAILED, EXIT_REFUSED, reason_and_code
from model.cli.main import main
from model.errors import (Cancelled, ConfigError, DataError, JobError, ModelFileError, NotAnImageError,
                          RegistryError, ReviewLogError, ReviewRefused)

CODES = [
    (DataError("no image to evaluate in /data/x"), EXIT_REFUSED),
    (NotAnImageError("/data/x/a.dcm", "not a DICOM file"), EXIT_REFUSED),  # was 1: an unreadable image is bad input
    (ConfigError("tile", "100 is not a multiple of 16"), EXIT_REFUSED),
    (RegistryError("m-1 is the active model: choose another one first"), EXIT_REFUSED),
    (JobError("retrain job 1 is still running: cancel it instead"), EXIT_REFUSED),
    (ReviewRefused("a backup must go to another file than the review log itself (x)"), EXIT_REFUSED),
    (ValueError("Expecting value: line 1 column 1 (char 0)"), EXIT_REFUSED),  # a library's word on bad input
    (FileNotFoundError("training folder /x does not exist"), EXIT_REFUSED),
    (ModelFileError("m.safetensors has no model card"), EXIT_FAILED),
    (ReviewLogError("the review log x could not switch to WAL mode"), EXIT_FAILED),
    (Cancelled("evaluation cancelled"), EXIT_FAILED),
]


@pytest.mark.parametrize("exc,code", CODES, ids=[f"{type(e).__name__}-{c}" for e, c in CODES])
def test_each_kind_of_error_has_its_exit_code_and_its_own_line(exc, code):
    assert reason_and_code(exc) == (str(exc), code)


def test_an_image_that_cannot_be_read_is_bad_input_exit_2(tmp_path, capsys):
    bad = tmp_path / "scan.dcm"
    bad.write_text("not a mammogram\n")
    assert main(["bench", "--image", str(bad), "--device", "cpu", "--repeats", "1"]) == EXIT_REFUSED
    assert capsys.readouterr().err.splitlines()[-1] == "bcir bench: scan.dcm: not a DICOM file"


@pytest.mark.parametrize("device,line", [
    ("tpu", "device 'tpu' is unknown: use auto, cpu or cuda"),
    pytest.param("cuda", "device 'cuda' asks for CUDA, but this PyTorch build or machine has no CUDA GPU",
                 marks=pytest.mark.skipif("__import__('torch').cuda.is_available()", reason="this machine has CUDA")),
])
def test_a_device_this_machine_cannot_run_is_a_setting_refused(tmp_path, capsys, device, line):
    (tmp_path / "empty").mkdir()
    assert main(["infer", str(tmp_path / "empty"), "--device", device, "--out", str(tmp_path / "out")]) == EXIT_REFUSED
    assert capsys.readouterr().err == f"bcir infer: {line}\n"
