"""DICOM and image reading: greyscale, header fields, compressed syntaxes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit

from model.data import display
from model.data.dicom_io import read_header, read_image
from model.data.mammogram import WindowPreset
from model.errors import (
    ImageReadError,
    NoPixelDataError,
    NotAnImageError,
    TruncatedFileError,
    UnsupportedImageError,
)
from tests.conftest import PYDICOM_TEST_FILES, make_dicom


def test_sixteen_bit_stays_sixteen_bit(tmp_path, ramp16):
    image = read_image(make_dicom(tmp_path / "a.dcm", ramp16))
    assert image.pixels.dtype == np.uint16
    np.testing.assert_array_equal(image.pixels, ramp16)
    assert image.header.shape == ramp16.shape


def test_modality_lut_rescale_applied(tmp_path, ramp16):
    image = read_image(make_dicom(tmp_path / "a.dcm", ramp16, RescaleSlope=2, RescaleIntercept=-100))
    np.testing.assert_array_equal(image.pixels, ramp16.astype(np.int64) * 2 - 100)


def test_monochrome1_is_shown_inverted(tmp_path):
    pixels = np.zeros((8, 8), np.uint16)
    pixels[:, 4:] = 4000  # stored bright = X-ray transparent in MONOCHROME1: must look dark
    image = read_image(make_dicom(tmp_path / "m1.dcm", pixels, PhotometricInterpretation="MONOCHROME1"))
    assert image.inverted
    shown = display.render(image, WindowPreset(2000, 4000))
    assert shown[0, 0] > 200 and shown[0, 7] < 50
    m2 = image.monochrome2()
    assert m2[0, 0] > m2[0, 7]


def test_monochrome2_not_inverted(tmp_path):
    pixels = np.zeros((8, 8), np.uint16)
    pixels[:, 4:] = 4000
    shown = display.render(read_image(make_dicom(tmp_path / "m2.dcm", pixels)), WindowPreset(2000, 4000))
    assert shown[0, 0] < 50 and shown[0, 7] > 200


def test_window_presets_and_sigmoid_voi(tmp_path, ramp16):
    path = make_dicom(
        tmp_path / "w.dcm", ramp16, WindowCenter=[30000, 20000], WindowWidth=[20000, 8000],
        WindowCenterWidthExplanation=["NORMAL", "HARDER"], VOILUTFunction="SIGMOID",
    )
    header = read_header(path)
    assert [(w.center, w.width, w.function, w.name) for w in header.windows] == [
        (30000, 20000, "SIGMOID", "NORMAL"), (20000, 8000, "SIGMOID", "HARDER"),
    ]
    lut = display.window_lut((0, 60000), header.windows[0])
    x = np.array([10000, 30000, 50000])
    expected = 255 / (1 + np.exp(-4 * (x - 30000) / 20000))  # PS3.3 C.11.2.1.3.1
    np.testing.assert_allclose(lut[x], expected, atol=1)
    linear = display.window_lut((0, 60000), WindowPreset(30000, 20000, "LINEAR"))
    assert linear[18000] == 0 and lut[18000] > 15  # sigmoid does not clip at the window edge


def test_voi_lut_table(tmp_path, ramp16):
    path = make_dicom(tmp_path / "t.dcm", ramp16)
    ds = pydicom.dcmread(path)
    item = Dataset()
    item.LUTDescriptor = [4, 100, 8]  # 4 entries, first mapped value 100, 8 bits
    item.add_new(0x00283006, "US", [0, 85, 170, 255])  # LUTData
    ds.VOILUTSequence = [item]
    ds.save_as(path)
    image = read_image(path)
    lut = display.voi_table_lut(image)
    lo = display.value_domain(image)[0]
    assert lut[100 - lo] == 0 and lut[102 - lo] == 170 and lut[5000 - lo] == 255


@pytest.mark.parametrize(
    ("tags", "side", "view"),
    [
        ({"ImageLaterality": "L", "Laterality": "R", "ViewPosition": "MLO", "PatientOrientation": "CC"}, "L", "MLO"),
        ({"Laterality": "R", "PatientOrientation": "CC"}, "R", "CC"),  # CBIS-DDSM
        ({"PatientID": "Calc-Test_P_00038_LEFT_MLO"}, "L", "MLO"),  # name only
    ],
)
def test_laterality_and_view_fallbacks(tmp_path, ramp16, tags, side, view):
    header = read_header(make_dicom(tmp_path / "x.dcm", ramp16, **tags))
    assert (header.laterality, header.view) == (side, view)


def test_view_code_sequence(tmp_path, ramp16):
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "399368009", "SCT"
    header = read_header(make_dicom(tmp_path / "v.dcm", ramp16, ViewCodeSequence=[code]))
    assert header.view == "MLO"


def test_pixel_spacing_sources(tmp_path, ramp16):
    assert read_header(make_dicom(tmp_path / "a.dcm", ramp16, PixelSpacing=[0.07, 0.07])).pixel_spacing_mm == (0.07, 0.07)
    assert read_header(make_dicom(tmp_path / "b.dcm", ramp16, ImagerPixelSpacing=[0.1, 0.1])).pixel_spacing_mm == (0.1, 0.1)
    assert read_header(make_dicom(tmp_path / "c.dcm", ramp16)).pixel_spacing_mm is None


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"])
def test_compressed_syntaxes_decode_losslessly(name):
    reference = read_image(PYDICOM_TEST_FILES / "MR_small.dcm").pixels
    np.testing.assert_array_equal(read_image(PYDICOM_TEST_FILES / name).pixels, reference)


def test_jpeg_baseline_decodes(tmp_path):
    grey = (np.add.outer(np.arange(64), np.arange(64)) * 2).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    path = make_dicom(tmp_path / "j.dcm", grey)
    ds = pydicom.dcmread(path)
    ds.PixelData = encapsulate([jpeg.tobytes()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.save_as(path, enforce_file_format=True)
    decoded = read_image(path).pixels
    assert decoded.shape == grey.shape
    assert np.abs(decoded.astype(int) - grey).mean() < 3


def test_truncated_file(tmp_path, ramp16):
    path = make_dicom(tmp_path / "t.dcm", ramp16)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(TruncatedFileError) as info:
        read_image(path)
    assert "truncated" in str(info.value)
    path.write_bytes(data[:300])  # cut inside the header
    with pytest.raises(ImageReadError):
        read_image(path)


def test_objects_without_pixels():
    with pytest.raises(NoPixelDataError, match="RTPLAN"):
        read_header(PYDICOM_TEST_FILES / "rtplan.dcm")


def test_not_dicom(tmp_path):
    path = tmp_path / "notes.dat"
    path.write_text("patient said hello\n")
    with pytest.raises(NotAnImageError, match="not a DICOM file"):
        read_image(path)


def test_multiframe_and_colour_are_refused(tmp_path, ramp16):
    frames = np.stack([ramp16, ramp16])
    path = make_dicom(tmp_path / "mf.dcm", ramp16, NumberOfFrames=2)
    ds = pydicom.dcmread(path)
    ds.PixelData = frames.tobytes()
    ds.save_as(path)
    with pytest.raises(UnsupportedImageError, match="multi-frame"):
        read_header(path)
    rgb = np.zeros((8, 8, 3), np.uint8)
    path = make_dicom(tmp_path / "rgb.dcm", rgb[..., 0], SamplesPerPixel=3, PhotometricInterpretation="RGB", PlanarConfiguration=0)
    with pytest.raises(UnsupportedImageError, match="colour"):
        read_header(path)


def test_itk_formats(tmp_path):
    grey16 = (np.arange(40 * 30).reshape(40, 30) * 50).astype(np.uint16)
    png = tmp_path / "Mass-Training_P_00001_LEFT_CC.png"
    cv2.imwrite(str(png), grey16)
    image = read_image(png)
    np.testing.assert_array_equal(image.pixels, grey16)
    assert (image.header.laterality, image.header.view, image.header.patient_id) == ("L", "CC", "P_00001")
    assert image.header.pixel_spacing_mm is None  # PNG knows no spacing

    import SimpleITK as sitk

    itk = sitk.GetImageFromArray(grey16)
    itk.SetSpacing((0.07, 0.05))
    nrrd = tmp_path / "m.nrrd"
    sitk.WriteImage(itk, str(nrrd))
    assert read_header(nrrd).pixel_spacing_mm == pytest.approx((0.05, 0.07))

    colour = np.dstack([grey16.astype(np.uint8), np.zeros_like(grey16, np.uint8), grey16.astype(np.uint8)])
    cv2.imwrite(str(tmp_path / "c.png"), colour)
    with pytest.raises(UnsupportedImageError, match="colour"):
        read_image(tmp_path / "c.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    with pytest.raises(ImageReadError):
        read_image(tmp_path / "broken.jpg")


def test_every_pydicom_test_file_loads_or_is_skipped_with_a_reason():
    """The whole sweep runs in a child process with a time limit: no crash, no hang."""
    script = textwrap.dedent(
        f"""
        import json, os, sys
        from model.data.dicom_io import read_image
        from model.errors import ImageReadError
        root = {str(PYDICOM_TEST_FILES)!r}
        out = {{"loaded": 0, "skipped": [], "crashed": []}}
        for folder, _, files in os.walk(root):
            for name in sorted(files):
                path = os.path.join(folder, name)
                try:
                    read_image(path)
                    out["loaded"] += 1
                except ImageReadError as exc:
                    out["skipped"].append([name, exc.reason])
                except BaseException as exc:
                    out["crashed"].append([name, repr(exc)])
        print(json.dumps(out))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["crashed"] == []
    total = sum(len(files) for _, _, files in __import__("os").walk(PYDICOM_TEST_FILES))
    assert out["loaded"] + len(out["skipped"]) == total
    assert out["loaded"] >= 40  # the greyscale images among them really load
    for name, reason in out["skipped"]:
        assert reason and "\n" not in reason and len(reason) <= 200, name
