"""What a network takes and a training run may ask for: the tile rule and the tile and spacing ranges (torch-free)."""

from __future__ import annotations

# The U-Net train() builds (model.nn.network.BCirUNet with its defaults, Table 1): 5 levels; a test holds the two equal.
NETWORK_DEPTH = 5
TILE_PX = (32, 2048)  # a tile side, and a multiple of tile_multiple(depth)
WORKING_SPACING_MM = (0.05, 2.0)  # 0.05 mm: the finest mammography pixel; finer only inflates a view


def tile_multiple(depth: int = NETWORK_DEPTH) -> int:
    """A tile side a U-Net of ``depth`` levels takes is a multiple of this: it pools depth - 1 times by 2."""
    return 2 ** (depth - 1)


def tile_problem(tile: int, depth: int = NETWORK_DEPTH) -> str | None:
    """None when a U-Net of ``depth`` levels takes tiles of side ``tile``; else why not, as the end of a line that
    begins with the setting's name ("tile 100 is not a multiple of 16 ...")."""
    multiple = tile_multiple(depth)
    if tile % multiple:
        return f"{tile} is not a multiple of {multiple} (the network pools {depth - 1} times by 2)"
    return None
