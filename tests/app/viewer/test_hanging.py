"""Which image hangs where, and which way round (pure logic, no Qt)."""

from model.data.study_index import Abnormality, IndexedImage

from app.case_text import image_label, image_truth, patient_truth, position_text, short_truth
from app.viewer.hanging import SLOTS_2UP, SLOTS_4UP, hang, needs_mirror


def image(side, view, name=None, **kw) -> IndexedImage:
    return IndexedImage(path=name or f"/x/{side}{view}.dcm", patient_id="P", laterality=side, view=view, rows=10, columns=8, **kw)


def test_four_views_hang_right_breast_on_screen_left_cc_on_top():
    images = [image("L", "MLO"), image("R", "CC"), image("L", "CC"), image("R", "MLO")]
    placed = hang(images)
    assert {slot.name: placed[slot].name for slot in SLOTS_4UP} == {"R CC": "RCC", "L CC": "LCC", "R MLO": "RMLO", "L MLO": "LMLO"}
    assert [(s.row, s.col) for s in SLOTS_2UP] == [(0, 0), (0, 1)]
    assert SLOTS_4UP[0].side == "R" and SLOTS_4UP[0].col == 0


def test_exact_view_beats_a_similar_one_and_unknowns_fill_empty_slots():
    xccl, cc = image("R", "XCCL", "/x/xccl.dcm"), image("R", "CC", "/x/cc.dcm")
    unknown = image(None, None, "/x/unknown.dcm")
    placed = hang([xccl, cc, unknown])
    by_name = {slot.name: placed.get(slot) for slot in SLOTS_4UP}
    assert by_name["R CC"] is cc
    assert by_name["L CC"] is unknown  # the first empty slot takes the unlabelled image
    assert xccl not in placed.values()  # a second R CC-like view has no slot in the screening hanging


def test_missing_views_leave_slots_empty():
    placed = hang([image("R", "CC")])
    assert list(placed) == [SLOTS_4UP[0]]


def test_mirror_so_chest_walls_face_the_middle():
    r_cc, l_cc = SLOTS_2UP
    assert r_cc.chest_wall_on_screen == "right" and l_cc.chest_wall_on_screen == "left"
    assert needs_mirror("left", r_cc) and not needs_mirror("right", r_cc)
    assert needs_mirror("right", l_cc) and not needs_mirror("left", l_cc)


def test_truth_words():
    malignant = Abnormality(id=1, type="mass", pathology="MALIGNANT", malignant=True, mask_path=None)
    benign = Abnormality(id=2, type="calcification", pathology="BENIGN_WITHOUT_CALLBACK", malignant=False, mask_path=None)
    with_lesions = image("R", "CC", abnormalities=[malignant, benign], gt_known=True)
    assert image_truth(with_lesions) == "MALIGNANT mass, BENIGN_WITHOUT_CALLBACK calcification"
    assert image_truth(image("L", "CC", gt_known=True)) == "no lesion"
    assert image_truth(image("L", "CC")) == "no ground truth"
    assert image_label(image(None, "MLO")) == "? MLO"
    assert patient_truth([with_lesions, image("L", "CC", gt_known=True)]) == "MALIGNANT"
    assert patient_truth([image("L", "CC")]) == "no ground truth"


def test_an_unknown_pathology_is_never_called_benign():
    """A problem row (empty or unreadable pathology) keeps its lesion; the words must not guess its class."""
    benign = Abnormality(id=1, type="mass", pathology="BENIGN", malignant=False, mask_path=None)
    for written in ("", "maybe cancer"):
        unknown = Abnormality(id=2, type="mass", pathology=written, malignant=False, mask_path=None,
                              problem="pathology is not one of MALIGNANT, BENIGN, BENIGN_WITHOUT_CALLBACK")
        only_unknown = image("R", "CC", abnormalities=[unknown], gt_known=True)
        assert "BENIGN" not in image_truth(only_unknown) and "unknown" in image_truth(only_unknown)
        assert patient_truth([only_unknown]) == "pathology unknown"
        assert patient_truth([image("L", "CC", abnormalities=[benign], gt_known=True), only_unknown]) == "pathology unknown"
        assert short_truth(unknown) == "unknown mass"
    assert patient_truth([image("L", "CC", abnormalities=[benign], gt_known=True)]) == "benign"


def test_position_in_mm_only_when_spacing_is_known():
    assert position_text(10, 20, None).endswith("(spacing unknown)")
    assert "(1.0, 4.0 mm)" in position_text(10, 20, (0.2, 0.1))
