"""Fuzzing the image reader: real small DICOMs (and a PNG and a JPEG), mutated byte by byte with a fixed seed.

Every mutant goes through read_header and read_image in a child process with a bounded address space. It
asserts that nothing but the typed errors (model.errors.ImageReadError) escapes, that no mutant hangs, and
that the peak memory stays under the 2.5 GB budget.

A few seconds in the normal suite; longer on request: BCIR_FUZZ_SECONDS=600 (and BCIR_FUZZ_SEED=N for another
sequence). A failure names the case number; BCIR_FUZZ_CASE=N replays that one case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np

from tests.conftest import PYDICOM_TEST_FILES, make_dicom
from tests.model.data.test_hostile_images import BUDGET_MB, CHILD_ADDRESS_SPACE, rle_dicom

ROOT = Path(__file__).resolve().parents[3]
SECONDS = float(os.environ.get("BCIR_FUZZ_SECONDS", "4"))
SEED = int(os.environ.get("BCIR_FUZZ_SEED", "11"))

# Small real files of every kind the reader meets: native explicit/implicit/big-endian, RLE, JPEG-LS,
# JPEG 2000, JPEG baseline, deflated, an object without an image, and two non-DICOM pictures.
PYDICOM_SEEDS = ("MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_RLE.dcm",
                 "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "SC_jpeg_no_color_transform.dcm",
                 "image_dfl.dcm", "rtplan.dcm")

CHILD = textwrap.dedent(
    r"""
    import json, os, resource, sys, time
    import numpy as np
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    from model.data.dicom_io import read_header, read_image
    from model.errors import ImageReadError

    seeds_dir, work, seconds, seed, only = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    seeds = [(name, open(os.path.join(seeds_dir, name), "rb").read()) for name in sorted(os.listdir(seeds_dir))]
    INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF, 60000, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000]

    def mutate(case):
        rng = np.random.default_rng([seed, case])
        name, data = seeds[case % len(seeds)]
        data = bytearray(data)
        kind = int(rng.integers(6))
        # half the mutations aim at the header (where lengths, Rows and Columns live)
        def where():
            end = len(data) if rng.random() < 0.5 else min(len(data), 1200)
            return int(rng.integers(max(1, end)))
        if kind == 0:  # flip bits
            for _ in range(int(rng.integers(1, 9))):
                data[where()] ^= 1 << int(rng.integers(8))
        elif kind == 1:  # interesting bytes
            for _ in range(int(rng.integers(1, 5))):
                data[where()] = int(rng.choice([0x00, 0xFF, 0x7F, 0x80]))
        elif kind == 2:  # an interesting 16- or 32-bit integer over a length, Rows, Columns, ...
            size = int(rng.choice([2, 4]))
            value = int(rng.choice(INTERESTING)) & (0xFFFF if size == 2 else 0xFFFFFFFF)
            at = where()
            data[at:at + size] = value.to_bytes(size, "little" if rng.random() < 0.8 else "big")
        elif kind == 3:  # truncate
            del data[int(rng.integers(len(data))):]
        elif kind == 4:  # delete a chunk
            at = where()
            del data[at:at + int(rng.integers(1, 64))]
        else:  # duplicate a chunk
            at = where()
            chunk = data[at:at + int(rng.integers(1, 256))]
            data[at:at] = chunk
        return name, kind, bytes(data)

    progress = open(os.path.join(work, "progress"), "w")
    out = {"cases": 0, "outcomes": {}, "escaped": []}
    start = time.monotonic()
    cases = [int(only)] if only else None
    case = 0
    while (cases is None and time.monotonic() - start < seconds) or (cases is not None and case < 1):
        number = cases[0] if cases else case
        name, kind, data = mutate(number)
        path = os.path.join(work, "case" + os.path.splitext(name)[1])
        with open(path, "wb") as f:
            f.write(data)
        progress.seek(0); progress.write(f"{number} {name} mutation {kind}\n"); progress.flush()
        for function in (read_header, read_image):
            try:
                function(path)
                outcome = "read"
            except ImageReadError as exc:
                outcome = type(exc).__name__
                if "\n" in str(exc) or not exc.reason:
                    out["escaped"].append([number, name, kind, function.__name__, "reason not one line", str(exc)[:300]])
            except BaseException as exc:
                outcome = "escaped"
                out["escaped"].append([number, name, kind, function.__name__, type(exc).__name__, str(exc)[:300]])
            out["outcomes"][outcome] = out["outcomes"].get(outcome, 0) + 1
        out["cases"] += 1
        case += 1
    # VmHWM: the peak of this process since exec (ru_maxrss keeps the forking parent's peak across exec)
    status = open("/proc/self/status").read()
    out["peak_rss_mb"] = int(status.split("VmHWM:")[1].split()[0]) / 1024
    print(json.dumps(out))
    """
).replace("ADDRESS_SPACE", str(CHILD_ADDRESS_SPACE))


def _seeds(folder: Path) -> Path:
    folder.mkdir()
    for name in PYDICOM_SEEDS:
        (folder / name).write_bytes((PYDICOM_TEST_FILES / name).read_bytes())
    ramp = (np.arange(32 * 24, dtype=np.uint32).reshape(32, 24) * 77 % 60000).astype(np.uint16)
    make_dicom(folder / "mg_native.dcm", ramp, PhotometricInterpretation="MONOCHROME1", RescaleSlope=1,
               RescaleIntercept=-1024, WindowCenter=[30000], WindowWidth=[20000], ImageLaterality="L", ViewPosition="CC")
    rle_dicom(folder / "mg_rle.dcm", 32, 64, complete=True)
    cv2.imwrite(str(folder / "picture.png"), (ramp // 256).astype(np.uint8))
    cv2.imwrite(str(folder / "picture.jpg"), (ramp // 256).astype(np.uint8))
    return folder


def test_mutated_files_give_typed_errors_within_the_memory_budget(tmp_path):
    seeds = _seeds(tmp_path / "seeds")
    work = tmp_path / "work"
    work.mkdir()
    only = os.environ.get("BCIR_FUZZ_CASE", "")
    try:
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(seeds), str(work), str(SECONDS), str(SEED), only],
            capture_output=True, text=True, timeout=SECONDS + 180, cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"a mutant hung the reader: {(work / 'progress').read_text().strip()} (seed {SEED})") from None
    last = (work / "progress").read_text().strip() if (work / "progress").exists() else "?"
    assert result.returncode == 0, f"the child died at case {last} (seed {SEED}): {result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"fuzz seed {SEED}: {out['cases']} mutants in {SECONDS:g} s, outcomes {out['outcomes']}, "
          f"peak RSS {out['peak_rss_mb']:.0f} MB")
    assert out["escaped"] == [], f"seed {SEED}: {out['escaped'][:5]}"
    assert out["peak_rss_mb"] < BUDGET_MB, out
    assert out["cases"] >= (1 if only else 20), out  # it really ran
    # the mutants exercised both sides: some still read, most were refused with a reason
    assert only or (out["outcomes"].get("read", 0) > 0 and sum(v for k, v in out["outcomes"].items() if k != "read") > 0), out
