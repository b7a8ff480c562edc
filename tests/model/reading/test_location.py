"""A finding's location from its marks on synthetic breasts: landmarks, clock face on both breasts, depth, mm."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model.data.preprocess import find_breast_region
from model.errors import DataError
from model.reading.location import Landmarks, breast_landmarks, centroid, finding_with_location, locate
from model.reading.reads import Finding, Mark

HEIGHT, WIDTH, RADIUS, MIDDLE = 301, 150, 140, 150


def half_disc(chest_wall_side: str) -> np.ndarray:
    """A half-disc breast against the chest wall at the image's left or right edge, nipple at mid-height."""
    rows, columns = np.mgrid[:HEIGHT, :WIDTH]
    centre_x = 0 if chest_wall_side == "left" else WIDTH - 1
    return (columns - centre_x) ** 2 + (rows - MIDDLE) ** 2 <= RADIUS ** 2


LANDMARKS = {wall: breast_landmarks(half_disc(wall), wall) for wall in ("left", "right")}


def at(landmarks: Landmarks, behind: float, up: float) -> tuple[float, float]:
    """A point ``behind`` pixels from the nipple towards the chest wall and ``up`` pixels above it."""
    towards_wall = math.copysign(1.0, landmarks.chest_wall_x - landmarks.nipple[0])
    return landmarks.nipple[0] + towards_wall * behind, landmarks.nipple[1] - up


def point(view: str, landmarks: Landmarks, behind: float, up: float) -> Mark:
    return Mark(view, view, (at(landmarks, behind, up),))  # the image key is the view's name here


def located(marks, wall="left", spacing=None, side=None) -> dict:
    side = side or marks[0].view[0]
    images = {mark.image for mark in marks}
    return locate(tuple(marks), {image: LANDMARKS[wall] for image in images},
                  {image: spacing for image in images}, side)


# -- landmarks ------------------------------------------------------------------------------------------------------

def test_landmarks_of_a_breast_against_the_left_edge():
    assert LANDMARKS["left"] == Landmarks(nipple=(140.0, 150.0), chest_wall_x=0.0, chest_wall_top_y=10.0,
                                          chest_wall_bottom_y=290.0)


def test_landmarks_of_a_breast_against_the_right_edge():
    assert LANDMARKS["right"] == Landmarks(nipple=(9.0, 150.0), chest_wall_x=149.0, chest_wall_top_y=10.0,
                                           chest_wall_bottom_y=290.0)


def test_landmarks_from_the_preprocessing_breast_region():
    image = np.zeros((600, 400), np.float32)
    rows, columns = np.mgrid[:600, :400]
    image[(columns - 399) ** 2 + (rows - 250) ** 2 <= 300 ** 2] = 0.8  # chest wall on the right, nipple at row 250
    region = find_breast_region(image)
    assert region.chest_wall_side == "right"
    landmarks = breast_landmarks(region.mask, region.chest_wall_side)
    assert abs(landmarks.nipple[0] - 99) <= 6 and abs(landmarks.nipple[1] - 250) <= 6
    assert landmarks.chest_wall_x >= 390


def test_an_empty_mask_has_no_landmarks():
    with pytest.raises(DataError, match="holds no breast"):
        breast_landmarks(np.zeros((10, 10), bool), "left")


# -- clock face -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("wall", ["left", "right"])
@pytest.mark.parametrize("side, lateral, superior, hour", [
    # left breast: lateral is 3 o'clock (the viewer's right)
    ("L", 60, 35, 2), ("L", 60, -35, 4), ("L", -60, -35, 8), ("L", -60, 35, 10),
    # right breast: lateral is 9 o'clock
    ("R", 60, 35, 10), ("R", 60, -35, 8), ("R", -60, -35, 4), ("R", -60, 35, 2),
    # near the axes
    ("L", 5, 80, 12), ("R", 5, -80, 6), ("L", 80, 3, 3), ("R", 80, 3, 9),
])
def test_clock_hour_from_a_cc_and_an_mlo_mark(wall, side, lateral, superior, hour):
    # CC: the top of the image is lateral; MLO: the top is superior
    marks = [point(f"{side}CC", LANDMARKS[wall], 50, lateral), point(f"{side}MLO", LANDMARKS[wall], 50, superior)]
    assert located(marks, wall)["clock_hour"] == hour


@pytest.mark.parametrize("wall", ["left", "right"])
@pytest.mark.parametrize("view, up, hour", [
    ("LCC", 40, 3), ("LCC", -40, 9), ("RCC", 40, 9), ("RCC", -40, 3),
    ("LMLO", 40, 12), ("LMLO", -40, 6), ("RMLO", 40, 12), ("RMLO", -40, 6),
    ("LCC", 0, None), ("RMLO", 0, None),
])
def test_clock_hour_from_one_view_is_the_nearest_on_its_axis(wall, view, up, hour):
    assert located([point(view, LANDMARKS[wall], 50, up)], wall)["clock_hour"] == hour


def test_offsets_compare_in_mm_when_the_spacings_differ():
    lm = LANDMARKS["left"]
    cc, mlo = point("LCC", lm, 50, 60), point("LMLO", lm, 50, 35)
    # 60 px at 0.05 mm against 35 px at 0.2 mm: 3 mm lateral, 7 mm upper -> nearer 12 than 2
    hour = locate((cc, mlo), {"LCC": lm, "LMLO": lm}, {"LCC": 0.05, "LMLO": 0.2}, "L")["clock_hour"]
    assert hour == 1


# -- depth, distance, size -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("wall", ["left", "right"])
@pytest.mark.parametrize("behind, depth", [(20, "anterior"), (70, "middle"), (120, "posterior"),
                                           (-5, "anterior"), (139, "posterior")])
def test_depth_in_thirds_of_the_nipple_to_chest_wall_distance(wall, behind, depth):
    assert located([point("RCC", LANDMARKS[wall], behind, 10)], wall)["depth"] == depth


def test_depth_averages_the_views():
    lm = LANDMARKS["left"]  # 140 px from nipple to chest wall: thirds at 46.7 and 93.3
    assert located([point("LCC", lm, 40, 0), point("LMLO", lm, 60, 0)])["depth"] == "middle"


def test_nipple_distance_in_mm_and_none_without_spacing():
    lm = LANDMARKS["right"]
    marks = [point("LCC", lm, 30, 40), point("LMLO", lm, 60, 80)]  # 50 px and 100 px from the nipple
    assert located(marks, "right", spacing=0.1)["nipple_distance_mm"] == pytest.approx(7.5)
    assert located(marks, "right", spacing=None)["nipple_distance_mm"] is None
    assert locate(tuple(marks), {"LCC": lm, "LMLO": lm}, {}, "L")["nipple_distance_mm"] is None


def test_size_is_the_longest_extent_of_an_outline_in_mm():
    x, y = at(LANDMARKS["left"], 50, 0)
    square = Mark("LCC", "LCC", ((x, y), (x + 30, y), (x + 30, y + 30), (x, y + 30)))
    long_one = Mark("LMLO", "LMLO", ((x, y), (x + 50, y), (x + 50, y + 5)))
    assert located([square], spacing=0.2)["size_mm"] == pytest.approx(30 * math.sqrt(2) * 0.2)
    assert located([square, long_one], spacing=0.2)["size_mm"] == pytest.approx(math.hypot(50, 5) * 0.2)
    assert located([square], spacing=None)["size_mm"] is None
    assert located([point("LCC", LANDMARKS["left"], 50, 0)], spacing=0.2)["size_mm"] is None


def test_an_outline_is_placed_at_its_area_centroid():
    assert centroid(((0.0, 0.0), (6.0, 0.0), (0.0, 3.0))) == pytest.approx((2.0, 1.0))
    # many vertices on one side do not pull an outline's centre there
    crowded = ((0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (3.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0))
    assert centroid(crowded) == pytest.approx((2.0, 2.0))
    assert centroid(((3.0, 4.0),)) == (3.0, 4.0)


def test_marks_on_images_without_landmarks_are_left_out():
    mark = point("LCC", LANDMARKS["left"], 50, 40)
    assert locate((mark,), {}, {"LCC": 0.1}, "L") == {"clock_hour": None, "depth": None,
                                                       "nipple_distance_mm": None, "size_mm": None}


def test_a_mark_of_the_other_breast_is_a_programming_error():
    with pytest.raises(ValueError, match="RCC"):
        located([point("RCC", LANDMARKS["left"], 50, 40)], side="L")


def test_finding_with_location_fills_the_derived_fields():
    lm = LANDMARKS["left"]
    x, y = at(lm, 70, 60)
    cc = Mark("img-cc", "LCC", ((x - 5, y - 5), (x + 5, y - 5), (x + 5, y + 5), (x - 5, y + 5)))
    mlo = Mark("img-mlo", "LMLO", (at(lm, 70, 35),))
    finding = Finding("ill-defined mass", ("LCC", "LMLO"), (cc, mlo), {"mass_margin": "spiculated"})
    placed = finding_with_location(finding, {"img-cc": lm, "img-mlo": lm}, {"img-cc": 0.1, "img-mlo": 0.1}, "L")
    assert (placed.clock_hour, placed.depth) == (2, "middle")
    assert placed.nipple_distance_mm == pytest.approx((math.hypot(70, 60) + math.hypot(70, 35)) / 2 * 0.1)
    assert placed.size_mm == pytest.approx(math.hypot(10, 10) * 0.1)
    assert (placed.abnormality, placed.marks, placed.descriptors) == (finding.abnormality, finding.marks,
                                                                       finding.descriptors)
    assert finding.clock_hour is None  # the original is unchanged
