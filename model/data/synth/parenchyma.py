"""Fibroglandular tissue: per-breast tissue parameters, the parenchymal envelope and the glandular fraction."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from model.data.synth.raster import sigmoid, smoothstep
from model.data.synth.seeding import rng
from model.data.synth.specs import BreastSpec
from model.data.synth.tissue_texture import TextureFields

# BI-RADS density 1..4 -> threshold bias of the glandular texture
_DENSITY_BIAS = (-1.55, -0.75, 0.35, 1.45)


@dataclass(frozen=True)
class TissueParams:
    """Per-breast tissue draws (the same for both views of a breast)."""

    bias: float        # threshold bias of the glandular texture (from the density)
    fat1: float        # subcutaneous fat thickness (mm) before the envelope starts
    fat_w: float       # width (mm) of the envelope's ramp
    streak_w: float    # weight of the nipple-converging streaks against isotropic texture
    lobule_w: float    # depth of the fat lobules
    gain: float        # steepness of the glandular threshold
    cone0: float       # half-width (mm) of the retroareolar cone at the nipple
    cone1: float       # its widening per mm towards the chest wall
    strands: int       # number of trabecular strands
    env_mod: float     # how much the low-frequency field modulates the envelope
    vessels: int
    pect_a: float      # attenuation of the pectoral muscle
    skin_mu: float     # attenuation of the skin per unit path
    density: int       # BI-RADS density 1..4


def tissue_params(breast: BreastSpec, lat: str) -> TissueParams:
    """Draw the tissue parameters of one breast (deterministic for its seed and laterality)."""
    r = rng("breast-tissue", breast.seed, lat)
    dens = int(np.clip(breast.density, 1, 4))
    return TissueParams(
        bias=_DENSITY_BIAS[dens - 1] + r.normal(0.0, 0.12),
        fat1=r.uniform(4.0, 8.0) * (1.25 - 0.12 * dens),
        fat_w=r.uniform(12.0, 22.0),
        streak_w=r.uniform(0.45, 0.75),
        lobule_w=r.uniform(0.15, 0.3),
        gain=r.uniform(1.4, 1.9),
        cone0=r.uniform(25.0, 40.0),
        cone1=r.uniform(0.7, 1.1),
        strands=int(r.integers(120, 220)),
        env_mod=r.uniform(0.35, 0.55),
        vessels=int(r.integers(2, 6)),
        pect_a=r.uniform(1.35, 1.8),
        skin_mu=r.uniform(2.2, 2.8),
        density=dens,
    )


def parenchymal_envelope(P: TissueParams, fields: TextureFields, X: np.ndarray, breast_depth: float,
                         dist: np.ndarray, dn2: np.ndarray, pect_sd: np.ndarray | None) -> np.ndarray:
    """Where glandular tissue may be (0..1): away from the subcutaneous fat, lighter at the chest wall,
    in a cone behind the nipple, out of the pectoral muscle.

    ``dist`` is the distance to the skin (mm), ``dn2`` the squared distance to the nipple (mm^2),
    ``pect_sd`` the wavy signed distance into the pectoral muscle (None on CC).
    """
    env = smoothstep(dist, P.fat1, P.fat1 + P.fat_w)
    env *= np.float32(0.7) + np.float32(0.3) * smoothstep(X, 0.0, 0.18 * breast_depth)
    cf = 0.25 + 0.1 * P.density
    env *= np.float32(cf) + np.float32(1.0 - cf) * fields.cone
    nip = np.exp(-dn2 * np.float32(1.0 / (2 * (0.22 * breast_depth) ** 2)))
    env = np.maximum(env, np.float32(0.7) * nip * smoothstep(dist, 1.5, 8.0))
    env *= np.clip(np.float32(1.0) + np.float32(P.env_mod) * fields.env, 0.2, 1.6)
    env = np.clip(env, 0.0, 1.0)
    if pect_sd is not None:
        env *= (np.float32(1.0) - smoothstep(pect_sd, -12.0, 0.0) * np.float32(0.85))
    return env


def glandular_fraction(P: TissueParams, fields: TextureFields, env: np.ndarray) -> np.ndarray:
    """Fibroglandular fraction inside the envelope: a soft threshold of the power-law texture, with fat lobules."""
    q = fields.iso + np.float32(P.streak_w) * fields.streak
    q *= np.float32(1.0 / math.sqrt(1.0 + P.streak_w ** 2))
    t = q + np.float32(P.bias) + np.float32(1.8) * (env - np.float32(0.5))
    dense = sigmoid(t * np.float32(P.gain))
    g = env * dense
    g *= np.clip(np.float32(1.0) + np.float32(0.1) * fields.mid, 0.3, 1.7)
    lob = smoothstep(fields.lob, 0.9, 2.6) * smoothstep(fields.env, -0.6, 0.9)  # fat lobules, in patches
    g *= np.float32(1.0) - np.float32(P.lobule_w) * lob
    return g
