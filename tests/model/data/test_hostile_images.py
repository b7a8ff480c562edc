"""Hostile and broken images: a small file that claims a huge image, a deflate bomb, files that are not regular,
cut or incomplete DICOMs, pictures of no known view. Each gets a one-line typed reason with bounded memory.

The memory checks run the reader in a child process with an address-space limit (RLIMIT_AS), so a reader
that tried to allocate gigabytes fails there (MemoryError) instead of taking this machine's memory, and
report the child's peak RSS.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, RLELossless, SecondaryCaptureImageStorage

from model.data import image_limits, read_failures
from model.data.dicom_io import read_header, read_image
from model.data.image_limits import MAX_IMAGE_ENV
from model.errors import ImageReadError, NoPixelDataError, NotAnImageError, TruncatedFileError, UnsupportedImageError
from model.data.study_index import build_index, list_files
from tests.conftest import PYDICOM_TEST_FILES, make_dicom

ROOT = Path(__file__).resolve().parents[3]
BUDGET_MB = 2500  # no input may take a reader past this (issue 11)
CHILD_ADDRESS_SPACE = 3 << 30  # the child's RLIMIT_AS: python, numpy, pydicom, SimpleITK and OpenCV map ~0.8 GB


# ---------------------------------------------------------------------------
# crafted files (tiny on disk; each claims far more than it holds, or holds far more than it looks)


def _mg_dataset(rows: int, columns: int, syntax, bits: int = 16) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "MG", "HOSTILE"
    ds.ImageLaterality, ds.ViewPosition = "R", "CC"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit, ds.PixelRepresentation = bits - 1, 0
    return ds


def rle_segment_of_zeros(n: int) -> bytes:
    """A PackBits segment of n zero bytes (n a multiple of 128): 2 bytes for every 128 pixels."""
    assert n % 128 == 0
    return b"\x81\x00" * (n // 128)


def rle_dicom(path: Path, rows: int, columns: int, *, complete: bool) -> Path:
    """A 16-bit RLE Lossless DICOM of rows x columns. complete: a valid encoding of a black image (a 20000²
    one is 12.5 MB and decodes to 800 MB); otherwise only the RLE header and a few bytes (a few hundred bytes
    that claim the whole image)."""
    n = rows * columns
    if complete:
        segments = [rle_segment_of_zeros(n), rle_segment_of_zeros(n)]
    else:
        segments = [b"\x81\x00" * 8, b"\x81\x00" * 8]
    header = struct.pack("<16L", 2, 64, 64 + len(segments[0]), *[0] * 13)  # segment count and offsets
    ds = _mg_dataset(rows, columns, RLELossless)
    ds.PixelData = encapsulate([header + b"".join(segments)])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">L", len(data)) + kind + data + struct.pack(">L", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png(path: Path, width: int = 40000, height: int = 40000) -> Path:
    """A PNG whose header says width x height (8-bit grey) with a few bytes of image data: a 1.6 GB picture in
    under 100 bytes. Its pixels are never there; only a full decode would try to make them."""
    ihdr = struct.pack(">LLBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(bytes(64)))
                     + _png_chunk(b"IEND", b""))
    return path


def black_png(path: Path, width: int = 40000, height: int = 40000) -> Path:
    """A valid 8-bit grey PNG, all black: 40000² is 1.6 GB of pixels in about 2 MB. Made without making the
    image: after a full flush every row deflates the same, and the checksum is run row by row."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    row = bytes(width + 1)  # filter byte 0, then the row
    first = compressor.compress(row) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(row) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert again == compressor.compress(row) + compressor.flush(zlib.Z_FULL_FLUSH)
    checksum = 1
    for _ in range(height):
        checksum = zlib.adler32(row, checksum)
    data = b"\x78\xda" + first + again * (height - 1) + compressor.flush() + struct.pack(">L", checksum)
    ihdr = struct.pack(">LLBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b""))
    return path


def huge_jpeg(path: Path, width: int = 40000, height: int = 40000) -> Path:
    """A real 16x16 JPEG with its frame header (SOF0) saying width x height."""
    ok, data = cv2.imencode(".jpg", np.full((16, 16), 128, np.uint8))
    assert ok
    data = bytearray(data.tobytes())
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    path.write_bytes(bytes(data))
    return path


def deflate_bomb(path: Path, inflated_mb: int = 2048) -> Path:
    """A Deflated Explicit VR Little Endian DICOM of about 2 MB whose dataset inflates to inflated_mb MB."""
    buffer = pydicom.filebase.DicomBytesIO()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    pydicom.filewriter.write_file_meta_info(buffer, meta, enforce_standard=True)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    compressor.compress(zeros)
    block = compressor.flush(zlib.Z_FULL_FLUSH)  # after a full flush every further MB of zeros compresses the same
    again = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert again == compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    payload = block + again * (inflated_mb - 1) + compressor.flush()
    path.write_bytes(bytes(128) + b"DICM" + buffer.getvalue() + payload)
    return path


# ---------------------------------------------------------------------------
# the reader in a child with bounded address space


def read_in_child(path: Path, function: str = "read_image", env: dict | None = None, timeout: int = 120) -> dict:
    """Run model.data.dicom_io.<function>(path) in a child limited to CHILD_ADDRESS_SPACE; its outcome and peak RSS."""
    script = textwrap.dedent(
        f"""
        import json, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({CHILD_ADDRESS_SPACE}, {CHILD_ADDRESS_SPACE}))
        from model.data import dicom_io
        from model.errors import ImageReadError
        out = {{}}
        try:
            getattr(dicom_io, {function!r})(sys.argv[1])
            out["outcome"] = "read"
        except ImageReadError as exc:
            out.update(outcome="typed", type=type(exc).__name__, reason=exc.reason, text=str(exc))
        except BaseException as exc:
            out.update(outcome="escaped", type=type(exc).__name__, reason=str(exc)[:300])
        # VmHWM: the peak of this process since exec (ru_maxrss keeps the forking parent's peak across exec)
        status = open("/proc/self/status").read()
        out["peak_rss_mb"] = int(status.split("VmHWM:")[1].split()[0]) / 1024
        print(json.dumps(out))
        """
    )
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=timeout,
                            cwd=ROOT, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


HOSTILE = {
    "rle-claims-60000": lambda d: rle_dicom(d / "claims.dcm", 60000, 60000, complete=False),
    "rle-real-20000": lambda d: rle_dicom(d / "real.dcm", 20000, 20000, complete=True),
    "png-40000": lambda d: huge_png(d / "huge.png"),
    "png-40000-real": lambda d: black_png(d / "black.png"),
    "jpeg-40000": lambda d: huge_jpeg(d / "huge.jpg"),
}


@pytest.mark.parametrize("function", ["read_image", "read_header"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_huge_images_are_refused_from_their_header_with_bounded_memory(tmp_path, name, function):
    path = HOSTILE[name](tmp_path)
    assert path.stat().st_size < 13_000_000  # small files, all of them
    out = read_in_child(path, function)
    assert out["outcome"] == "typed", out
    assert out["type"] == "UnsupportedImageError" and "over the limit of 64 megapixels" in out["reason"] and MAX_IMAGE_ENV in out["reason"]
    assert "\n" not in out["text"]
    # refused before decoding: nowhere near the gigabytes a decode takes (the child alone is ~0.2 GB)
    assert out["peak_rss_mb"] < 600, out


def test_deflate_bomb_is_refused_before_it_inflates(tmp_path):
    path = deflate_bomb(tmp_path / "bomb.dcm")
    assert path.stat().st_size < 3_000_000
    for function in ("read_header", "read_image"):
        out = read_in_child(path, function)
        assert out["outcome"] == "typed" and out["type"] == "UnsupportedImageError", out
        assert "inflates to more than" in out["reason"]
        assert out["peak_rss_mb"] < 400, out  # inflated 16 MB at a time, counted, dropped


def test_the_size_limit_is_a_setting(tmp_path, monkeypatch):
    path = rle_dicom(tmp_path / "two-mp.dcm", 1024, 2048, complete=True)
    assert read_image(path).pixels.shape == (1024, 2048)  # 2 MP: well within the default of 64
    monkeypatch.setenv(MAX_IMAGE_ENV, "1.5")
    assert image_limits.max_image_pixels() == 1_500_000
    with pytest.raises(UnsupportedImageError, match=r"1024 x 2048 pixels .* limit of 1.5 megapixels"):
        read_header(path)
    with pytest.raises(UnsupportedImageError):
        read_image(huge_png(tmp_path / "two-mp.png", 2048, 1024))
    monkeypatch.setenv(MAX_IMAGE_ENV, "many")  # not a number: the documented default, and a warning
    assert image_limits.max_image_pixels() == image_limits.MAX_IMAGE_MEGAPIXELS * 1_000_000
    assert read_header(path).shape == (1024, 2048)


def test_index_lists_huge_and_incomplete_files_as_skipped(tmp_path, ramp16):
    folder = tmp_path / "site"
    folder.mkdir()
    good = make_dicom(folder / "good.dcm", ramp16, ImageLaterality="R", ViewPosition="CC")
    rle_dicom(folder / "claims.dcm", 60000, 60000, complete=False)
    index = build_index(folder, workers=1)
    assert [i.path for i in index.images] == [str(good)]
    (skipped,) = index.skipped
    assert skipped.path.endswith("claims.dcm") and "over the limit of 64 megapixels" in skipped.reason


# ---------------------------------------------------------------------------
# issue 10: truncated and non-image DICOM are not listed as images


def _cut(path: Path, keep: int) -> Path:
    data = path.read_bytes()
    out = path.with_name(f"cut-{keep}-{path.name}")
    out.write_bytes(data[:keep])
    return out


def test_a_partial_download_is_not_an_image_at_index_time(tmp_path, ramp16):
    """The NBIA retriever's common failure: a file cut inside its pixel data. Headers alone looked fine."""
    full = make_dicom(tmp_path / "whole.dcm", ramp16, ImageLaterality="R", ViewPosition="CC")
    size = full.stat().st_size
    cut = _cut(full, size - 1000)
    with pytest.raises(TruncatedFileError, match=r"pixel data ends early \(5144 of 6144 bytes"):
        read_header(cut)
    # compressed: the closing sequence delimiter is missing
    rle = rle_dicom(tmp_path / "rle.dcm", 256, 256, complete=True)
    assert read_header(rle).shape == (256, 256)
    with pytest.raises(TruncatedFileError, match="compressed pixel data"):
        read_header(_cut(rle, rle.stat().st_size - 20))
    with pytest.raises(TruncatedFileError, match="compressed pixel data"):
        read_header(_cut(rle, rle.stat().st_size - 8))  # only the delimiter lost


def test_the_index_shows_one_r_cc_when_a_second_copy_is_cut_or_an_sr(tmp_path, ramp16):
    folder = tmp_path / "patient"
    good = make_dicom(folder / "1-1.dcm", ramp16, PatientID="P1", ImageLaterality="R", ViewPosition="CC")
    partial = make_dicom(tmp_path / "partial.dcm", ramp16, PatientID="P1", ImageLaterality="R", ViewPosition="CC")
    (folder / "1-2.dcm").write_bytes(partial.read_bytes()[:-3000])
    # an SR that carries Rows/Columns (as some writers copy them) but no pixel data
    make_dicom(folder / "1-3.dcm", None, PatientID="P1", ImageLaterality="R", ViewPosition="CC", Modality="SR",
               SOPClassUID="1.2.840.10008.5.1.4.1.1.88.11", Rows=64, Columns=48)
    index = build_index(folder, workers=1)
    assert [(i.path, i.name) for i in index.images] == [(str(good), "RCC")]
    reasons = {Path(s.path).name: s.reason for s in index.skipped}
    assert "truncated" in reasons["1-2.dcm"]
    assert "SR" in reasons["1-3.dcm"] and "without an image" in reasons["1-3.dcm"]


def test_true_reasons_for_a_cut_header_and_a_link_loop(tmp_path, ramp16):
    """Issue 11, item 9: a header cut read as 'without an image', a symlink loop as 'truncated'."""
    full = make_dicom(tmp_path / "whole.dcm", ramp16)
    for keep in (300, 500):  # inside the header, before Rows
        with pytest.raises(TruncatedFileError, match="truncated"):
            read_header(_cut(full, keep))
        with pytest.raises(TruncatedFileError, match="truncated"):
            read_image(_cut(full, keep))
    # a real object without an image keeps its own reason
    with pytest.raises(NoPixelDataError, match="RTPLAN"):
        read_header(PYDICOM_TEST_FILES / "rtplan.dcm")
    os.symlink(tmp_path / "loop-b.dcm", tmp_path / "loop-a.dcm")
    os.symlink(tmp_path / "loop-a.dcm", tmp_path / "loop-b.dcm")
    for function in (read_header, read_image):
        with pytest.raises(ImageReadError) as info:
            function(tmp_path / "loop-a.dcm")
        assert info.value.reason == "symbolic link loop" and not isinstance(info.value, TruncatedFileError)
    index = build_index(tmp_path, workers=1)
    reasons = {Path(s.path).name: s.reason for s in index.skipped}
    assert reasons["loop-a.dcm"] == reasons["loop-b.dcm"] == "symbolic link loop"


def test_a_picture_of_no_known_view_is_skipped_not_run(tmp_path):
    """A PNG/JPEG has no header with side and view: without them in a CSV or its name, it is listed as skipped."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    picture = (np.arange(64 * 48).reshape(64, 48) % 251).astype(np.uint8)
    cv2.imwrite(str(folder / "holiday.png"), picture)
    cv2.imwrite(str(folder / "scan_0001.jpg"), picture)
    cv2.imwrite(str(folder / "Calc-Test_P_00038_LEFT_MLO.png"), picture)  # CBIS-DDSM name: side and view known
    index = build_index(folder, workers=1)
    assert [(Path(i.path).name, i.name) for i in index.images] == [("Calc-Test_P_00038_LEFT_MLO.png", "LMLO")]
    reasons = {Path(s.path).name: s.reason for s in index.skipped}
    assert set(reasons) == {"holiday.png", "scan_0001.jpg"}
    assert reasons["holiday.png"] == ("PNG image with no laterality and view from a CSV or its name: "
                                      "not a mammogram of a known view; left out")
    # opened on its own, the same
    single = build_index(folder / "holiday.png")
    assert single.images == [] and [s.reason for s in single.skipped] == [reasons["holiday.png"]]
    # a labelled folder's CSV that gives no side or view: the same reason, and its mask is no image either
    (folder / "masks").mkdir()
    cv2.imwrite(str(folder / "masks" / "m.png"), (picture > 100).astype(np.uint8) * 255)
    (folder / "labels.csv").write_text("image,mask,pathology,patient\nholiday.png,masks/m.png,BENIGN,X1\n")
    index = build_index(folder, workers=1)
    assert "holiday.png" not in [Path(i.path).name for i in index.images]
    assert not any(Path(s.path).name == "m.png" for s in index.skipped)
    assert "not a mammogram of a known view" in {Path(s.path).name: s.reason for s in index.skipped}["holiday.png"]


# ---------------------------------------------------------------------------
# issue 11, item 3: files that are not regular, folders that cannot be read


def test_a_named_pipe_does_not_hang_the_index(tmp_path, ramp16):
    """bcir index on a folder holding a FIFO: before, the reader opened it and waited for ever."""
    folder = tmp_path / "site"
    make_dicom(folder / "a.dcm", ramp16, ImageLaterality="L", ViewPosition="CC")
    os.mkfifo(folder / "pipe.dcm")
    os.mkfifo(folder / "labels.csv")  # a CSV reader would wait for ever too
    result = subprocess.run([sys.executable, "-m", "model.cli", "index", str(folder), "--json"], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    index = json.loads(result.stdout)
    assert [Path(i["path"]).name for i in index["images"]] == ["a.dcm"]
    reasons = {Path(s["path"]).name: s["reason"] for s in index["skipped"]}
    assert reasons["pipe.dcm"].startswith("named pipe (FIFO), not a regular file")
    assert reasons["labels.csv"].startswith("named pipe (FIFO), not a regular file")
    with pytest.raises(NotAnImageError, match="named pipe"):
        read_image(folder / "pipe.dcm")  # returns at once: the reader never opens it


def test_a_folder_that_cannot_be_read_is_listed_as_skipped(tmp_path, ramp16, monkeypatch):
    """Tests run as root here, where chmod 000 does not stop a read; the refusal is simulated at os.scandir."""
    root = tmp_path / "site"
    make_dicom(root / "a" / "one.dcm", ramp16, ImageLaterality="L", ViewPosition="CC")
    make_dicom(root / "b" / "two.dcm", ramp16, ImageLaterality="R", ViewPosition="CC")
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "b":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    skipped = []
    files, _ = list_files(root, skipped)
    assert [f.name for f in files] == ["one.dcm"]
    assert [(Path(s.path).name, s.reason) for s in skipped] == [
        ("b", "folder cannot be read (permission denied); its files are left out")]
    index = build_index(root, workers=1)
    assert [Path(i.path).name for i in index.images] == ["one.dcm"]
    assert any(Path(s.path).name == "b" and "permission denied" in s.reason for s in index.skipped)


def test_a_file_in_a_folder_that_cannot_be_read_gives_a_reason_not_a_traceback(tmp_path, ramp16, monkeypatch):
    """path.exists()/is_file() raise PermissionError (not False) for a file inside a folder without search
    permission; simulated at os.stat, for the same reason as above."""
    locked = make_dicom(tmp_path / "locked" / "x.dcm", ramp16)
    free = make_dicom(tmp_path / "free.dcm", ramp16, ImageLaterality="R", ViewPosition="CC")
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if "locked" in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    with pytest.raises(ImageReadError, match="permission denied"):
        read_image(locked)
    index = build_index([free, locked])
    assert [Path(i.path).name for i in index.images] == ["free.dcm"]
    assert [(s.path, s.reason) for s in index.skipped] == [(str(locked), "permission denied")]


# ---------------------------------------------------------------------------
# issue 11, item 9: pydicom's tracebacks for errors we handle


def test_handled_decode_errors_print_no_traceback(tmp_path):
    """With logging configured as bcir and the app configure it, pydicom logged every failed decoder with a
    traceback on stderr, though the reader handles the error and gives its reason."""
    data = bytearray((PYDICOM_TEST_FILES / "MR_small_RLE.dcm").read_bytes())
    at = data.find(b"\xe0\x7f\x10\x00")
    for i in range(at + 40, at + 120):  # the RLE header inside the first fragment
        data[i] ^= 0x5A
    broken = tmp_path / "broken_rle.dcm"
    broken.write_bytes(bytes(data))
    script = textwrap.dedent(
        """
        import logging, sys
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        from model.data.dicom_io import read_image
        from model.errors import ImageReadError
        try:
            read_image(sys.argv[1])
        except ImageReadError as exc:
            print(type(exc).__name__, exc.reason)
        logging.getLogger("bcir.test").warning("our own message")
        """
    )
    result = subprocess.run([sys.executable, "-c", script, str(broken)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("DecodeError cannot decode pixel data (RLE Lossless)")
    assert "Traceback" not in result.stderr and "pydicom" not in result.stderr, result.stderr
    assert "WARNING bcir.test: our own message" in result.stderr  # our own log is untouched


def test_pydicom_records_outside_our_reads_still_flow(caplog):
    """The filter only drops pydicom's records while one of our reads runs in the same thread."""
    read_failures.filter_pydicom_loggers()
    with caplog.at_level(logging.WARNING):
        logging.getLogger("pydicom").warning("outside a read")
        with read_failures.quiet_pydicom() as messages:
            logging.getLogger("pydicom").warning("inside a read")
    assert "outside a read" in caplog.text and "inside a read" not in caplog.text
    assert messages == ["inside a read"]


# ---------------------------------------------------------------------------
# memory: the smallest dtype for every intermediate


def _traced_peak_bytes(function) -> tuple[object, int]:
    """(result, peak bytes allocated while it ran): numpy reports its arrays to tracemalloc."""
    import tracemalloc

    tracemalloc.start()
    try:
        result = function()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_intermediates_stay_in_the_smallest_dtype(tmp_path):
    """No float64 or int64 copies of a whole image: rescale, MONOCHROME1, display and breast finding each stay
    within a few bytes a pixel (before: 21, 8, 20 and 11 bytes a pixel)."""
    from model.data.display import render
    from model.data.preprocess import find_breast_region

    rng = np.random.default_rng(0)
    stored = rng.integers(1000, 60000, (1024, 1024)).astype(np.uint16)
    n = stored.size
    path = make_dicom(tmp_path / "m1.dcm", stored, PhotometricInterpretation="MONOCHROME1",
                      RescaleSlope=1, RescaleIntercept=-1024)
    image, peak = _traced_peak_bytes(lambda: read_image(path))
    assert image.pixels.dtype == np.int32 and peak < 8 * n  # file bytes 2 + decoded 2 + int32 4
    np.testing.assert_array_equal(image.pixels, stored.astype(np.int64) - 1024)
    flipped, peak = _traced_peak_bytes(image.monochrome2)
    assert peak <= 4 * n + 65536  # the result only (int32)
    lo, hi = int(image.pixels.min()), int(image.pixels.max())
    np.testing.assert_array_equal(flipped, lo + hi - image.pixels.astype(np.int64))

    plain = read_image(make_dicom(tmp_path / "m2.dcm", stored))
    picture, peak = _traced_peak_bytes(lambda: render(plain))
    assert picture.dtype == np.uint8 and peak < 12 * n  # index 2 + picture 1 + the auto window's fixed sample

    yy, xx = np.mgrid[:3000, :2000]
    breast = ((yy - 1500) ** 2 / 1400**2 + xx**2 / 1800**2) < 1
    film = np.where(breast, 30000, 500).astype(np.uint16)
    region, peak = _traced_peak_bytes(lambda: find_breast_region(film))
    assert peak < 3 * film.size  # before: a float32 copy and int64 indexes of every breast pixel
    assert region.mask.dtype == bool and abs(int(region.mask.sum()) - int(breast.sum())) < 0.02 * breast.sum()


def test_a_damaged_png_is_refused_with_one_reason_that_names_no_file(tmp_path):
    """SimpleITK's messages carry the file's path (a name can hold a patient ID) and object addresses; the reason a
    batch reports and counts must be the same for every file and name neither."""
    ok, encoded = cv2.imencode(".png", (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64))
    assert ok
    data = encoded.tobytes()
    for cut, call in ((40, read_header), (len(data) // 2, read_image)):
        reasons = []
        for patient in ("P_00042", "P_00077"):
            path = tmp_path / f"{patient} {cut}.png"
            path.write_bytes(data[:cut])
            with pytest.raises(ImageReadError) as info:
                call(path)
            reasons.append(info.value.reason)
            assert patient not in info.value.reason and str(tmp_path) not in info.value.reason
            assert "0x" not in info.value.reason and "\n" not in info.value.reason
            assert path.name in str(info.value)  # the error itself still says which file, for the reader
        assert reasons[0] == reasons[1], reasons
