"""Fuzzing the CSV readers, kept (issue 11): the demo's real CSVs and a site's labels CSV, mutated byte by byte with a
fixed seed. No exception escapes the typed errors, no label is guessed, and memory stays under a budget.

A few seconds in the normal suite; ``BCIR_FUZZ_SECONDS=600`` runs longer (the same cases first, then more).
A failing input is kept next to the test's temporary folder and named in the failure.
"""

from __future__ import annotations

import os
import random
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest

from model.data import cbis_ddsm
from model.data import labelled_folder
from model.data.csv_kinds import csv_kind
from model.data.folder_csvs import read_folder_csvs
from model.errors import BcirError
from model.data.study_index import build_index
from model.data.synth.cbis_writer import write_demo_dataset
from tests.conftest import make_dicom
from tests.model.data.test_cbis_index import _image, _mask

SEED = 1101
MIN_CASES = 100  # always run at least these (the same ones on every machine), however slow
SECONDS = float(os.environ.get("BCIR_FUZZ_SECONDS", "3"))
INDEX_EVERY = 5  # one case in this many also indexes the whole folder with the mutated CSV in place
MEMORY_BUDGET = 32 * 1024 * 1024  # Python memory the readers may take for one CSV of at most a few hundred KB
NOISE = [b'"', b",", b";", b"\t", b"\n", b"\r", b"\r\n", b"\0", b"\xff\xfe", b"\xef\xbb\xbf", b"..", b"/", b"../" * 6,
         b"\\", b"NA", b"MALIGNANT", b"BENIGN", b"NORMAL", b" ", b"'", b"\x85", "\u2028".encode()]


@dataclass
class Source:
    path: Path
    data: bytes
    folder: Path


def _mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 5, 8))):
        op = rng.random()
        at = rng.randrange(len(out) + 1)
        if op < 0.25 and out:  # one byte changed
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif op < 0.5:  # a meaningful byte sequence inserted
            out[at:at] = rng.choice(NOISE)
        elif op < 0.65 and out:  # bytes deleted
            del out[at:at + rng.choice((1, 1, 2, 10, 100))]
        elif op < 0.75:  # a line repeated (duplicate rows)
            lines = bytes(out).split(b"\n")
            k = rng.randrange(len(lines))
            lines.insert(k, lines[k])
            out = bytearray(b"\n".join(lines))
        elif op < 0.82:  # lines swapped (the header moves)
            lines = bytes(out).split(b"\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            out = bytearray(b"\n".join(lines))
        elif op < 0.9:  # cut short
            del out[at:]
        elif op < 0.95:  # a delimiter or quote replaced everywhere
            a, b = rng.sample([b",", b";", b"\t", b'"', b"|"], 2)
            out = bytearray(bytes(out).replace(a, b))
        else:  # a long field, sometimes over the csv module's 131,072 characters
            out[at:at] = b"X" * rng.choice((1_000, 140_000))
    return bytes(out)


def _one_line(text: str) -> bool:
    return bool(text) and "\n" not in text and "\r" not in text


def _check_readers(path: Path, root: Path) -> None:
    """Each reader: rows, or a typed error with a one-line reason; never a guessed pathology."""
    csv_kind(path)
    readers = (cbis_ddsm.read_description_csv, cbis_ddsm.read_metadata_csv, cbis_ddsm.read_dicom_info_csv,
               lambda p: labelled_folder.read_labels_csv(p, root=root))
    for reader in readers:
        try:
            rows = reader(path)
        except BcirError as exc:
            assert _one_line(str(exc)), repr(str(exc))
            continue
        for row in rows:
            if isinstance(row, cbis_ddsm.DescriptionRow):
                assert row.problem or row.pathology in cbis_ddsm.PATHOLOGIES, row
            if isinstance(row, labelled_folder.LabelRow):
                assert row.problem or row.pathology in labelled_folder.PATHOLOGIES, row
                assert row.image is None or row.image.is_relative_to(root), row
                assert row.problem is None or _one_line(row.problem), row
    found = read_folder_csvs([path], root)
    assert all(_one_line(reason) for _, reason in found.skipped), found.skipped


def _check_index(folder: Path) -> None:
    index = build_index(folder, workers=1)
    known = set(labelled_folder.PATHOLOGIES)
    for image in index.images:
        assert Path(image.path).is_relative_to(folder)
        for a in image.abnormalities:
            assert a.problem or a.pathology in known, a  # a label is read or its row is a problem, never guessed
            assert a.problem is None or _one_line(a.problem), a
            assert a.mask_path is None or Path(a.mask_path).is_relative_to(folder), a
    assert all(_one_line(s.reason) for s in index.skipped), index.skipped


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[Source]:
    demo = tmp_path_factory.mktemp("fuzz") / "demo"
    write_demo_dataset(demo, patients=2, seed=SEED, size="small", workers=1)
    site = demo.parent / "site"
    (site / "images").mkdir(parents=True)
    make_dicom(site / "images" / "a.dcm", _image(1), PatientID="S1", ImageLaterality="L", ViewPosition="CC")
    cv2.imwrite(str(site / "images" / "b.png"), _image(2))
    cv2.imwrite(str(site / "images" / "a_mask.png"), _mask())
    cv2.imwrite(str(site / "images" / "b_mask.png"), _mask(box=(5, 15, 5, 15)))
    (site / "labels.csv").write_text(
        "image,mask,pathology,patient,laterality,view,type\n"
        "images/a.dcm,images/a_mask.png,MALIGNANT,S1,L,CC,mass\n"
        "images/b.png,images/b_mask.png,BENIGN_WITHOUT_CALLBACK,S2,R,MLO,calcification\n"
        "images/b.png,images/a_mask.png,BENIGN,S2,R,MLO,mass\n"
        "images/a.dcm,,NORMAL,S1,L,CC,\n"
    )
    (site / "dicom_info.csv").write_text(  # the shape of Kaggle's file (the demo writes none)
        "file_path,image_path,PatientID,SeriesInstanceUID,SeriesDescription,Laterality,Rows,Columns\n"
        "CBIS-DDSM/dicom/1.dcm,CBIS-DDSM/jpeg/1.2.3/1-1.jpg,Mass-Training_P_00001_LEFT_CC,1.2.3,full mammogram images,L,64,48\n"
    )
    csvs = sorted(demo.glob("*.csv")) + [site / "labels.csv", site / "dicom_info.csv"]
    assert len(csvs) == 7 and all(p.stat().st_size for p in csvs)
    return [Source(p, p.read_bytes(), p.parent) for p in csvs]


def _traced(check, *args) -> int:
    """Run ``check``; the most Python memory it held above what was held before."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        check(*args)
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_fuzz_csv_readers(sources, tmp_path):
    rng = random.Random(SEED)
    deadline = time.monotonic() + SECONDS
    cases = indexed = most = 0
    while cases < MIN_CASES or time.monotonic() < deadline:
        source = rng.choice(sources)
        data = _mutate(rng, source.data)
        source.path.write_bytes(data)
        try:
            held = _traced(_check_readers, source.path, source.folder)
            assert held < MEMORY_BUDGET, f"{held / 1e6:.0f} MB held while reading a {len(data)}-byte CSV"
            most = max(most, held)
            if cases % INDEX_EVERY == 0:
                _check_index(source.folder)
                indexed += 1
        except Exception as exc:  # noqa: BLE001 - any escape is the failure this test looks for
            kept = tmp_path / f"case-{cases}-{source.path.name}"
            kept.write_bytes(data)
            raise AssertionError(f"case {cases} (seed {SEED}, from {source.path.name}): {type(exc).__name__}: "
                                 f"{exc}; the input is kept at {kept}") from exc
        finally:
            source.path.write_bytes(source.data)
        cases += 1
    assert cases >= MIN_CASES and indexed >= MIN_CASES // INDEX_EVERY and 0 < most < MEMORY_BUDGET
