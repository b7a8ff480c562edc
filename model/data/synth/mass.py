"""Masses: projected ellipsoid-like bodies with shape harmonics, margin blur, mottling and spicules."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from model.data.synth.lesion_patch import Patch, local_noise, sample_local, tokens
from model.data.synth.raster import blur, smoothstep
from model.data.synth.seeding import rng
from model.data.synth.specs import LesionSpec

# visibility per CBIS subtlety 1..5 (attenuation units; fat of full thickness is 1.0)
_MASS_CONTRAST = (0.24, 0.44, 0.68, 0.98, 1.30)
_MASS_SHAPES = ("ROUND", "OVAL", "LOBULATED", "IRREGULAR", "ARCHITECTURAL_DISTORTION")
_MASS_MARGINS = ("CIRCUMSCRIBED", "OBSCURED", "MICROLOBULATED", "ILL_DEFINED", "SPICULATED")
_NPHI = 720              # samples of the radial outline
_SPICULE_SEGMENTS = 16


@dataclass(frozen=True)
class _Spicule:
    """One spicule: direction (rad, lesion frame), length and base width (mm), amplitude, curvature, heading jitter."""

    angle: float
    length: float
    w0: float
    amp: float
    curv: float
    jit: np.ndarray


def _style(les: LesionSpec, r: np.random.Generator) -> tuple[str, list[str]]:
    """The shape and margins asked for, or drawn from typical ones for the pathology (always drawing both)."""
    shapes = [t for t in tokens(les.shape) if t in _MASS_SHAPES]
    margins = [t for t in tokens(les.margins) if t in _MASS_MARGINS]
    default_shape_ = ("IRREGULAR", "IRREGULAR", "LOBULATED") if les.malignant else ("ROUND", "OVAL", "OVAL")
    default_margin = ("SPICULATED", "ILL_DEFINED", "SPICULATED") if les.malignant else ("CIRCUMSCRIBED", "CIRCUMSCRIBED", "OBSCURED")
    pick_s = default_shape_[int(r.integers(3))]
    pick_m = default_margin[int(r.integers(3))]
    shape = shapes[0] if shapes else pick_s
    if not margins:
        margins = [pick_m]
    return shape, margins


def _harmonic_amplitudes(shape: str, margins: list[str], r: np.random.Generator) -> np.ndarray:
    """Amplitudes of the outline's harmonics 0..39: gentle for round/oval, strong for irregular and distortion."""
    amps = np.zeros(40)
    if shape == "ROUND" or shape == "OVAL":
        amps[2:6] = r.normal(0, 0.015, 4)
    elif shape == "IRREGULAR":
        kk = np.arange(2, 16)
        amps[2:16] = r.normal(0, 1, 14) * 0.2 / kk ** 0.9
    elif shape == "ARCHITECTURAL_DISTORTION":
        kk = np.arange(2, 12)
        amps[2:12] = r.normal(0, 1, 10) * 0.25 / kk ** 0.8
    else:
        amps[2:6] = r.normal(0, 0.02, 4)
    if "ILL_DEFINED" in margins:
        kk = np.arange(6, 16)
        amps[6:16] += r.normal(0, 1, 10) * 0.025 / (kk / 6.0)
    return amps


def _outline(shape: str, margins: list[str], r: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Radial outline r(phi) in units of the radius (max 1) at ``_NPHI`` angles; returns (phi, rad)."""
    phi = np.linspace(0, 2 * math.pi, _NPHI, endpoint=False)
    if shape == "OVAL":
        aspect = r.uniform(0.55, 0.78)
    elif shape == "ROUND":
        aspect = r.uniform(0.88, 1.0)
    else:
        aspect = r.uniform(0.65, 0.95)
    rad = 1.0 / np.sqrt(np.cos(phi) ** 2 + (np.sin(phi) / aspect) ** 2)
    amps = _harmonic_amplitudes(shape, margins, r)
    phases = r.uniform(0, 2 * math.pi, 40)
    for kidx in range(2, 40):
        if amps[kidx] != 0:
            rad *= 1.0 + amps[kidx] * np.cos(kidx * phi + phases[kidx])
    # lobules: rounded bumps with cusps between them (|sin| scallops)
    if shape == "LOBULATED":
        nl = int(r.integers(3, 6))
        depth_l = r.uniform(0.12, 0.2)
        warp = phi + 0.25 * np.sin(phi + r.uniform(0, 6.3))
        rad *= 1.0 + depth_l * (np.abs(np.sin(0.5 * nl * warp + r.uniform(0, 6.3))) ** 0.6 - 0.75)
    if "MICROLOBULATED" in margins:
        nm = int(r.integers(14, 24))
        rad *= 1.0 + r.uniform(0.025, 0.045) * (np.abs(np.sin(0.5 * nm * phi + r.uniform(0, 6.3))) ** 0.5 - 0.66)
    rad = np.clip(rad, 0.3, None)
    rad /= rad.max()
    return phi, rad


def _edge_sigma(margins: list[str], R: float, subtlety: int, distortion: bool) -> float:
    """Edge blur (mm) from the margins and the subtlety."""
    sig = 0.12
    if "OBSCURED" in margins:
        sig = max(sig, 0.5)
    if "MICROLOBULATED" in margins:
        sig = max(sig, 0.2)
    if "ILL_DEFINED" in margins:
        sig = max(sig, 1.2 + 0.04 * R)
    if "SPICULATED" in margins:
        sig = max(sig, 0.35)
    if distortion:
        sig = max(sig, 1.0)
    return sig + (5 - subtlety) * 0.18


def _amplitude(les: LesionSpec, subtlety: int, density: int, distortion: bool) -> float:
    """Peak extra attenuation: from the subtlety, less in dense breasts, a little more for large masses."""
    amp = _MASS_CONTRAST[subtlety - 1] * (1.0 - 0.07 * (density - 1)) * float(np.clip((les.size_mm / 12.0) ** 0.25, 0.75, 1.25))
    if distortion:
        amp *= 0.45
    return amp


def _plan_spicules(r: np.random.Generator, R: float, amp: float, distortion: bool) -> list[_Spicule]:
    """Spicules of a spiculated mass or a distortion, sorted by direction (more and longer for a distortion)."""
    ns = int(round(r.uniform(12, 24) * (R / 7.5) ** 0.4)) + (10 if distortion else 0)
    base_angles = np.sort(r.uniform(0, 2 * math.pi, ns))
    spic = []
    for a_s in base_angles:
        length = R * r.uniform(0.9, 2.6) * (1.3 if distortion else 1.0)
        w0 = r.uniform(0.12, 0.4) * (R / 8.0) ** 0.3
        a_amp = amp * r.uniform(0.25, 0.5) * (1.6 if distortion else 1.0)
        curv = r.normal(0.0, 0.1)
        jit = r.normal(0.0, 0.07, _SPICULE_SEGMENTS)
        spic.append(_Spicule(a_s, length, w0, a_amp, curv, jit))
    return spic


def _body(pb: Patch, cx: float, cy: float, ang: float, rad: np.ndarray, R: float, body_R: float, distortion: bool,
          margins: list[str], sig: float, amp: float, noise_half: float, r: np.random.Generator):
    """Attenuation of the mass body (output pixels) and its mask: a flat-topped dome with mottling, blurred edge."""
    u, v = pb.local(cx, cy, ang)
    phi_px = np.arctan2(v, u)
    r_px = np.sqrt(u * u + v * v)
    idx = ((phi_px % np.float32(2 * math.pi)) * np.float32(_NPHI / (2 * math.pi))).astype(np.float32)
    rad32 = np.concatenate([rad, rad[:1]]).astype(np.float32)[None, :]
    rb = cv2.remap(rad32, idx, np.zeros_like(idx), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    qn = r_px / (rb * np.float32(body_R))
    body_mask_f = (qn <= 1.0).astype(np.float32)
    dome = np.sqrt(np.clip(1.0 - qn * qn, 0.0, 1.0))
    dome = np.float32(0.35) * body_mask_f + np.float32(0.65) * dome  # projected body: flat-ish top, steep edge
    noise, org, cell = local_noise(r, noise_half, 0.35, 2.0)
    mott = sample_local(noise, org, cell, u, v)
    dome *= np.float32(1.0) + np.float32(0.07) * mott
    if "OBSCURED" in margins:
        # parts of the margin fade into the surrounding tissue
        fade = 0.5 + 0.5 * np.cos(phi_px - np.float32(r.uniform(0, 2 * math.pi)))
        dome *= np.float32(1.0) - np.float32(0.35) * fade * smoothstep(qn, 0.6, 1.0)
    body = pb.down((blur(dome.astype(np.float32), sig / pb.fine) * np.float32(amp)).astype(np.float32))
    mask_f = body_mask_f if not distortion else (r_px <= np.float32(R * 0.6)).astype(np.float32)
    return body, pb.down(mask_f) >= 0.5


def _spicule_path(sp: _Spicule, rb0: float) -> tuple[np.ndarray, np.ndarray]:
    """Lesion-frame points (u, v) of a spicule starting inside the body edge at radius ``rb0``, curving as it goes."""
    nseg = _SPICULE_SEGMENTS
    ts = np.linspace(0.0, 1.0, nseg + 1)
    hd = sp.angle + sp.curv * ts * 3 + np.concatenate([[0.0], np.cumsum(sp.jit)])[: nseg + 1]
    step = sp.length / nseg
    pu_ = [rb0 * 0.85 * math.cos(sp.angle)]
    pv_ = [rb0 * 0.85 * math.sin(sp.angle)]
    for i in range(nseg):
        pu_.append(pu_[-1] + step * math.cos(hd[i]) + (rb0 * 0.15 / nseg) * math.cos(sp.angle))
        pv_.append(pv_[-1] + step * math.sin(hd[i]) + (rb0 * 0.15 / nseg) * math.sin(sp.angle))
    return np.array(pu_), np.array(pv_)


def _spicule_layer(pt: Patch, spic: list[_Spicule], phi: np.ndarray, rad: np.ndarray, body_R: float,
                   cx: float, cy: float, ang: float) -> np.ndarray:
    """Tapered, fading spicules drawn on the fine grid, blurred and brought down to output pixels."""
    sl = np.zeros((pt.fh, pt.fw), np.float32)
    c, s_ = math.cos(ang), math.sin(ang)
    nseg = _SPICULE_SEGMENTS
    for sp in spic:
        rb0 = float(np.interp(sp.angle % (2 * math.pi), phi, rad)) * body_R
        pu_, pv_ = _spicule_path(sp, rb0)
        gx = cx + pu_ * c - pv_ * s_
        gy = cy + pu_ * s_ + pv_ * c
        pts = pt.to_px(gx, gy)
        for i in range(nseg):
            f = i / nseg
            w = max(0.05, sp.w0 * (1.0 - 0.8 * f))
            val = sp.amp * (1.0 - 0.9 * f) ** 1.3
            th_px = max(1, int(round(w / pt.fine)))
            cv2.line(sl, tuple(int(z) for z in pts[i]), tuple(int(z) for z in pts[i + 1]), float(val),
                     th_px, cv2.LINE_8, shift=4)
    sl = blur(sl, max(0.6, 0.1 / pt.fine))
    return pt.down(sl)


def render_mass(les: LesionSpec, cx: float, cy: float, axis_ang: float, density: int, pixel_mm: float,
                rows: int, cols: int):
    """Attenuation patch (output resolution) and body mask of one mass; returns (patch, mask, r0, c0)."""
    r = rng("lesion", les.seed, "mass")
    R = max(1.0, 0.5 * float(les.size_mm))
    shape, margins = _style(les, r)
    spiculated = "SPICULATED" in margins or shape == "ARCHITECTURAL_DISTORTION"
    ang = axis_ang + r.uniform(-math.pi, math.pi)
    phi, rad = _outline(shape, margins, r)
    ad = shape == "ARCHITECTURAL_DISTORTION"
    body_R = R * (0.35 if ad else 1.0)
    sub = int(np.clip(les.subtlety, 1, 5))
    sig = _edge_sigma(margins, R, sub, ad)
    amp = _amplitude(les, sub, density, ad)
    spic = _plan_spicules(r, R, amp, ad) if spiculated else []
    max_len = max([sp.length for sp in spic], default=0.0)
    half = max(R * (1.0 + 0.25), body_R + max_len) + 4 * sig + 1.0
    fine_target = 0.1 if pixel_mm > 0.1 else pixel_mm
    pt = Patch(cx, cy, half, pixel_mm, rows, cols, fine_target)
    # the body (and its mask) on a smaller window than the spicules
    hb = min(half, max(body_R * 1.05, 0.6 * R if ad else 0.0) + 4 * sig + 1.0)
    pb = Patch(cx, cy, hb, pixel_mm, rows, cols, fine_target)
    body, body_mask = _body(pb, cx, cy, ang, rad, R, body_R, ad, margins, sig, amp, half, r)
    patch = np.zeros((pt.h, pt.w), np.float32)
    mask = np.zeros((pt.h, pt.w), bool)
    oy, ox = pb.r0 - pt.r0, pb.c0 - pt.c0
    patch[oy:oy + pb.h, ox:ox + pb.w] = body
    mask[oy:oy + pb.h, ox:ox + pb.w] = body_mask
    if spic:
        patch += _spicule_layer(pt, spic, phi, rad, body_R, cx, cy, ang)
    if not mask.any():
        mask[min(mask.shape[0] - 1, int((cy / pixel_mm) - pt.r0)), min(mask.shape[1] - 1, int((cx / pixel_mm) - pt.c0))] = True
    return patch, mask, pt.r0, pt.c0
