"""Which image goes in which pane, and which way round (no Qt here).

The screening hanging: right breast on the screen's left, left breast on the
right, CC on top and MLO below in the 4-up. Each image is turned so that its
chest wall faces the middle of the screen and the nipple points outward.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.data.study_index import IndexedImage


@dataclass(frozen=True)
class Slot:
    row: int  # 0 = CC row, 1 = MLO row
    col: int  # 0 = screen left (right breast), 1 = screen right (left breast)
    side: str  # "R" | "L"
    view: str  # "CC" | "MLO"

    @property
    def name(self) -> str:
        return f"{self.side} {self.view}"

    @property
    def chest_wall_on_screen(self) -> str:
        """Where the chest wall must appear inside this pane: toward the middle of the screen."""
        return "right" if self.col == 0 else "left"


SLOTS_2UP = (Slot(0, 0, "R", "CC"), Slot(0, 1, "L", "CC"))
SLOTS_4UP = (*SLOTS_2UP, Slot(1, 0, "R", "MLO"), Slot(1, 1, "L", "MLO"))


def slots(four_up: bool) -> tuple[Slot, ...]:
    return SLOTS_4UP if four_up else SLOTS_2UP


def _view_group(view: str | None) -> str | None:
    if view in ("CC", "XCCL", "XCCM", "FB"):
        return "CC"
    if view in ("MLO", "ML", "LM", "LMO", "SIO"):
        return "MLO"
    return None


def hang(images: list[IndexedImage]) -> dict[Slot, IndexedImage]:
    """Place a patient's images in the 4-up slots (the 2-up uses the CC row).

    An exact side and view match wins (a true CC over an XCCL); images whose
    side or view is unknown fill the slots still empty, CC row first, so a
    single file or an unlabelled folder still shows.
    """
    placed: dict[Slot, IndexedImage] = {}
    used: set[int] = set()
    for exact in (True, False):
        for slot in SLOTS_4UP:
            if slot in placed:
                continue
            for i, image in enumerate(images):
                if i in used or image.laterality != slot.side:
                    continue
                if (image.view == slot.view) if exact else (_view_group(image.view) == slot.view):
                    placed[slot] = image
                    used.add(i)
                    break
    unplaced = [image for i, image in enumerate(images) if i not in used and (image.laterality is None or _view_group(image.view) is None)]
    for slot in SLOTS_4UP:
        if not unplaced:
            break
        if slot not in placed:
            placed[slot] = unplaced.pop(0)
    return placed


def cc_row(images: list[IndexedImage]) -> list[IndexedImage]:
    """The images hung in the CC row (what the network runs on), right breast first."""
    placed = hang(images)
    return [placed[s] for s in SLOTS_2UP if s in placed]


def needs_mirror(chest_wall_in_file: str, slot: Slot) -> bool:
    """True when the stored image must be mirrored so that its chest wall faces the screen's middle."""
    return chest_wall_in_file != slot.chest_wall_on_screen
