"""The paper's augmentation, as one affine warp per sample: crop factor, flip, translation, rotation, noise.

The paper expands its data 40 times with cropping at several factors,
horizontal flipping, translation, rotation at 9 angles in (0, 180] degrees and
additive Gaussian noise. Here that expansion is virtual: a dataset index is
(case, transform id), and :func:`transform_for` turns a transform id into fixed
parameters, so nothing is ever written to disk and every epoch sees the same
40 variants of each case, as in the paper.

Image and mask go through the same affine matrix (bilinear for the image,
nearest-neighbour for the mask), sampled straight from the working image, so
they stay aligned by construction; noise touches the image only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

ROTATIONS = tuple(20.0 * k for k in range(1, 10))  # 9 angles in (0, 180]
CROP_FACTORS = (0.8, 0.9, 1.1, 1.25)  # field of view relative to the tile: <1 zooms in, >1 out
NOISE_SIGMAS = (0.02, 0.04, 0.06, 0.08)


@dataclass(frozen=True)
class Transform:
    angle: float = 0.0  # degrees, counter-clockwise
    crop: float = 1.0
    flip: bool = False
    shift: tuple[float, float] = (0.0, 0.0)  # fraction of the tile, (dx, dy)
    noise: float = 0.0  # sigma of additive Gaussian noise, image in [0, 1]
    noise_seed: int = 0


def _table() -> list[Transform]:
    t = [Transform()]
    t += [Transform(angle=a) for a in ROTATIONS]
    t += [Transform(crop=c) for c in CROP_FACTORS]
    t += [Transform(flip=True)]
    t += [Transform(shift=(dx * 0.125, dy * 0.125)) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1))]
    t += [Transform(noise=s, noise_seed=i) for i, s in enumerate(NOISE_SIGMAS)]
    rng = np.random.default_rng(40)
    while len(t) < 40:  # combinations, fixed once
        t.append(Transform(
            angle=float(rng.choice(ROTATIONS)), crop=float(rng.choice((1.0,) + CROP_FACTORS)), flip=bool(rng.random() < 0.5),
            shift=(float(rng.uniform(-0.125, 0.125)), float(rng.uniform(-0.125, 0.125))),
            noise=float(rng.choice((0.0,) + NOISE_SIGMAS)), noise_seed=len(t),
        ))
    return t


TRANSFORMS = tuple(_table())


def transform_for(transform_id: int) -> Transform:
    """Transform ``id`` of the fixed list (0 is the identity); ids past the list wrap around."""
    return TRANSFORMS[transform_id % len(TRANSFORMS)]


def affine_matrix(center: tuple[float, float], tile: int, t: Transform) -> np.ndarray:
    """2x3 matrix mapping tile pixel (u, v) to source pixel (x, y), for ``cv2.warpAffine(..., WARP_INVERSE_MAP)``."""
    cx, cy = center
    half = (tile - 1) / 2.0
    scale = t.crop  # source pixels per tile pixel
    theta = np.deg2rad(t.angle)
    c, s = np.cos(theta) * scale, np.sin(theta) * scale
    fx = -1.0 if t.flip else 1.0
    # tile coords centred, flipped, rotated, scaled, then moved to the (shifted) centre in the source
    m = np.array([[c * fx, -s], [s * fx, c]], dtype=np.float64)
    offset = np.array([cx + t.shift[0] * tile, cy + t.shift[1] * tile]) - m @ np.array([half, half])
    return np.hstack([m, offset[:, None]]).astype(np.float32)


def sample_roi(image: np.ndarray, mask: np.ndarray, center: tuple[float, float], tile: int,
               t: Transform = Transform(), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A (tile, tile) ROI of ``image`` and ``mask`` around ``center`` (x, y), transformed by ``t``; zero outside.

    ``seed`` varies the noise pattern between cases (same case and transform: same noise)."""
    matrix = affine_matrix(center, tile, t)
    flags = cv2.WARP_INVERSE_MAP
    img = cv2.warpAffine(np.ascontiguousarray(image, dtype=np.float32), matrix, (tile, tile),
                         flags=cv2.INTER_LINEAR | flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    msk = cv2.warpAffine(np.ascontiguousarray(mask, dtype=np.uint8), matrix, (tile, tile),
                         flags=cv2.INTER_NEAREST | flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if t.noise > 0:
        rng = np.random.default_rng([t.noise_seed, seed])
        img = np.clip(img + rng.normal(0, t.noise, img.shape).astype(np.float32), 0, 1)
    return img, msk
