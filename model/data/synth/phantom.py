"""Synthetic scanned-film screening mammograms with lesion ground truth.

The renderer imitates CBIS-DDSM / DDSM full-field images: digitised screen-film
mammograms stored as 16-bit MONOCHROME2 (dark film background, fat darker grey,
fibroglandular tissue brighter, calcifications brightest), with the skin line, the
nipple in profile, the pectoral muscle on MLO views, a burned-in film label,
bright border strips and a little dust.

How an image is made (all deterministic for the inputs):

1. **Geometry** (``_Geometry``): the compressed breast outline is a superellipse
   around a point just behind the chest-wall edge, with a few low harmonics and a
   nipple bump; CC is a "D", MLO is taller, tilted, runs off the top edge (axilla)
   and has a convex pectoral triangle in the upper chest-wall corner. Everything is
   built in a canonical frame (chest wall on the left, x to the nipple, y down, mm)
   and mirrored at the end if the chest wall must be on the right.
2. **Anatomy** on a working grid (~0.1 mm): the projected thickness falls off
   towards the skin (semicircular compressed edge); the skin shell seen
   tangentially gives the slightly brighter rim. Fibroglandular tissue is a soft
   threshold of power-law noise (beta ~ 3) mixed with streaks that converge on the
   nipple (noise made in log-polar coordinates around the nipple), confined to a
   parenchymal envelope away from the subcutaneous and retromammary fat, with fat
   lobules, thin trabecular strands (Cooper's ligaments / ducts) and a few vessels.
   BI-RADS density moves the threshold. The noise lives in breast-normalised
   coordinates with coefficients fixed per integer frequency, so the CC and MLO of
   one breast share their anatomy and a coarse render is a blurred full render.
3. **Lesions** are added as extra attenuation, rendered at full resolution (with
   supersampling for coarse pixels): masses as projected ellipsoid-like bodies with
   shape harmonics, margin-dependent edge blur, internal mottling and, when
   spiculated, tapered curved spicules; calcifications as individual specks drawn
   at <= 0.03 mm and area-averaged.
4. **Film**: attenuation -> brightness through a saturating film curve, film fog,
   grain, then border strips, dust/scratches and the label (cv2.putText).

Only numpy, scipy.fft and cv2 are used; a full 4600 x 2900 view renders in about
1-2 s on two CPU cores.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import fft as _sfft

__all__ = ["LesionSpec", "BreastSpec", "RenderedView", "render_view", "default_shape"]


# ---------------------------------------------------------------------------
# public data types


@dataclass(frozen=True)
class LesionSpec:
    """One abnormality to draw.

    ``depth`` (0..1) is the position along the chest-wall -> nipple axis as a
    fraction of the breast depth; ``offset`` (-1..1) the position across it as a
    fraction of the local half width (negative = towards the top of the image, i.e.
    lateral on CC / superior on MLO). Both are breast-relative, so the same lesion
    appears in the CC and the MLO of its breast. ``seed`` fixes the lesion's own
    shape so both views show the same lesion.
    """

    kind: str                 # "mass" or "calcification"
    malignant: bool
    size_mm: float            # mass: longest diameter; calcification: cluster extent
    subtlety: int             # 1 (barely visible) .. 5 (obvious); CBIS-DDSM's scale
    depth: float              # 0..1 from chest wall toward the nipple
    offset: float             # -1..1 across the breast, fraction of local half-width
    shape: str = ""           # ROUND, OVAL, LOBULATED, IRREGULAR, ARCHITECTURAL_DISTORTION
    margins: str = ""         # CIRCUMSCRIBED, OBSCURED, MICROLOBULATED, ILL_DEFINED, SPICULATED
    calc_type: str = ""       # PLEOMORPHIC, FINE_LINEAR_BRANCHING, AMORPHOUS, PUNCTATE, COARSE, ...
    calc_distribution: str = ""  # CLUSTERED, LINEAR, SEGMENTAL, REGIONAL, DIFFUSELY_SCATTERED
    seed: int = 0


@dataclass(frozen=True)
class BreastSpec:
    """The breast being imaged: BI-RADS density 1..4, relative size 0.7..1.3 and an anatomy seed.

    The anatomy is derived from ``seed`` and the laterality, so one spec can serve
    both breasts of a patient (similar, not identical) and both views of a breast
    (identical anatomy).
    """

    density: int
    size: float
    seed: int


@dataclass
class RenderedView:
    """A rendered film: image (uint16 MONOCHROME2), one bool mask per lesion, chest-wall side, breast mask."""

    image: np.ndarray
    masks: list[np.ndarray]
    chest_wall_side: str
    breast_mask: np.ndarray


# ---------------------------------------------------------------------------
# constants

_DEFAULT_ROWS_AT_005 = 4600
_DEFAULT_COLS_AT_005 = 2900

_FILM_V = 0.95          # brightness reached at infinite attenuation (fraction of the scale)
_FILM_A0 = 2.34         # attenuation scale of the film curve (fat of full thickness == 1.0)
_SCALE = 61000.0        # 16-bit counts per unit brightness
_GLAND_GAIN = 1.5       # extra attenuation of pure fibroglandular tissue relative to fat
_NORM_D = 100.0         # breast-normalised coordinates: "mm" of a 100 mm deep breast

# visibility per CBIS subtlety 1..5 (attenuation units; fat of full thickness is 1.0)
_MASS_CONTRAST = (0.24, 0.44, 0.68, 0.98, 1.30)
_CALC_CONTRAST = (0.9, 1.5, 2.2, 3.0, 3.8)

_MASS_SHAPES = ("ROUND", "OVAL", "LOBULATED", "IRREGULAR", "ARCHITECTURAL_DISTORTION")
_MASS_MARGINS = ("CIRCUMSCRIBED", "OBSCURED", "MICROLOBULATED", "ILL_DEFINED", "SPICULATED")
_CALC_ALIASES = {
    "LUCENT_CENTERED": "LUCENT_CENTER", "LUCENT_CENTRED": "LUCENT_CENTER", "EGGSHELL": "LUCENT_CENTER",
    "SKIN": "LUCENT_CENTER", "DYSTROPHIC": "COARSE", "POPCORN": "COARSE", "MILK_OF_CALCIUM": "PUNCTATE",
    "ROUND": "ROUND_AND_REGULAR", "FINE_LINEAR": "FINE_LINEAR_BRANCHING", "LARGE_ROD_LIKE": "LARGE_RODLIKE",
}
_CALC_TYPES = ("PLEOMORPHIC", "FINE_LINEAR_BRANCHING", "AMORPHOUS", "PUNCTATE", "COARSE",
               "ROUND_AND_REGULAR", "LUCENT_CENTER", "VASCULAR", "LARGE_RODLIKE")
_CALC_DISTRIBUTIONS = ("CLUSTERED", "LINEAR", "SEGMENTAL", "REGIONAL", "DIFFUSELY_SCATTERED")


def default_shape(pixel_mm: float = 0.05) -> tuple[int, int]:
    """Default (rows, cols) of a view at ``pixel_mm``: about 4600 x 2900 at 0.05 mm, portrait."""
    f = 0.05 / float(pixel_mm)
    return max(32, int(round(_DEFAULT_ROWS_AT_005 * f))), max(24, int(round(_DEFAULT_COLS_AT_005 * f)))


# ---------------------------------------------------------------------------
# small helpers


def _seed_int(part) -> int:
    if isinstance(part, str):
        return zlib.crc32(part.encode("utf-8"))
    if isinstance(part, (bool, np.bool_)):
        return int(part)
    return int(part) & 0xFFFFFFFFFFFFFFFF


def _rng(*parts) -> np.random.Generator:
    """A generator seeded from strings and ints in a stable way (no Python ``hash``)."""
    return np.random.default_rng(np.random.SeedSequence([_seed_int(p) for p in parts]))


def _smoothstep(x: np.ndarray, e0: float, e1: float) -> np.ndarray:
    t = x - np.float32(e0)
    t *= np.float32(1.0 / (e1 - e0))
    np.clip(t, 0.0, 1.0, out=t)
    out = np.float32(3.0) - np.float32(2.0) * t
    out *= t
    out *= t
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.float32(0.5) + np.float32(0.5) * np.tanh(np.float32(0.5) * x)


def _blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur; large sigmas are done on a downsampled copy to stay fast."""
    if sigma_px < 0.3:
        return img
    h, w = img.shape
    if sigma_px <= 6.0 or min(h, w) < 16:
        return cv2.GaussianBlur(img, (0, 0), float(sigma_px), borderType=cv2.BORDER_REFLECT)
    k = max(2, int(sigma_px // 3))
    sw, sh = max(2, w // k), max(2, h // k)
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), float(sigma_px) / k, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


class _Spectrum:
    """An amplitude spectrum ``amp(fy, fx)`` (cycles per unit) with the highest useful frequency per axis."""

    def __init__(self, fn, fmax_y: float, fmax_x: float):
        self.fn = fn
        self.fmax_y = fmax_y
        self.fmax_x = fmax_x


def _powerlaw(beta: float, f0: float, fc: float, ax: float = 1.0, ay: float = 1.0) -> _Spectrum:
    """Amplitude ~ f^(-beta/2), flattened below f0 and rolled off above fc (anisotropic via ax, ay)."""
    def fn(fy, fx):
        f2 = (fx * ax) ** 2 + (fy * ay) ** 2
        return (f2 + f0 * f0) ** (-beta / 4.0) * np.exp(-f2 / (fc * fc))
    return _Spectrum(fn, 1.9 * fc / ay, 1.9 * fc / ax)


def _bandpass(fp: float, width: float, ax: float = 1.0, ay: float = 1.0) -> _Spectrum:
    """Log-normal band-pass amplitude around fp (cycles/unit)."""
    def fn(fy, fx):
        f = np.sqrt((fx * ax) ** 2 + (fy * ay) ** 2) + 1e-9
        return np.exp(-0.5 * (np.log(f / fp) / width) ** 2)
    hi = fp * math.exp(2.6 * width)
    return _Spectrum(fn, hi / ay, hi / ax)


def _gauss_field(seed_parts: tuple, n_rows: int, n_cols: int, ext_rows: float, ext_cols: float,
                 spec: _Spectrum) -> np.ndarray:
    """Periodic real Gaussian random field (float32, unit std) with amplitude spectrum ``spec``.

    The field covers ``ext_rows x ext_cols`` units with ``n_rows x n_cols`` samples.
    The random coefficient of frequency (ky, kx) depends only on the seed and (ky, kx)
    (one generator per ky row, drawn in kx order), so a coarser grid of the same
    extent holds exactly the low-frequency part of a finer one: renders at different
    pixel sizes show the same anatomy.
    """
    nc = n_cols // 2 + 1
    ky = np.fft.fftfreq(n_rows, 1.0 / n_rows).round().astype(np.int64)
    fy = (ky / float(ext_rows)).astype(np.float32)[:, None]
    fx = (np.arange(nc) / float(ext_cols)).astype(np.float32)[None, :]
    amp = spec.fn(fy, fx).astype(np.float32)
    amp[0, 0] = 0.0
    keep = amp > np.float32(1e-3) * amp.max()
    last = np.where(keep.any(1), nc - np.argmax(keep[:, ::-1], axis=1), 0)
    coef = np.zeros((n_rows, nc), np.complex64)
    ints = [_seed_int(p) for p in ("field",) + tuple(seed_parts)]
    for i in range(n_rows):
        m = int(last[i])
        if m == 0:
            continue
        r = np.random.default_rng(np.random.SeedSequence(ints + [int(ky[i]) & 0xFFFFFFFF]))
        z = r.standard_normal(2 * m, dtype=np.float32).view(np.complex64)
        coef[i, :m] = z * amp[i, :m]
    out = _sfft.irfft2(coef, s=(n_rows, n_cols), workers=2).astype(np.float32, copy=False)
    sd = float(out.std())
    if sd > 0:
        out *= np.float32(1.0 / sd)
    return out


# ---------------------------------------------------------------------------
# geometry of the compressed breast (canonical frame: chest wall at x = 0, nipple to +x, y down, mm)


class _Geometry:
    """Outline, nipple, pectoral muscle and lesion placement of one view."""

    def __init__(self, breast: BreastSpec, lat: str, view: str, rows_mm: float, cols_mm: float):
        self.view = view
        self.H = float(rows_mm)
        self.W = float(cols_mm)
        size = float(np.clip(breast.size, 0.5, 1.6))
        self.size = size
        # breast-level draws (same for CC and MLO of this breast)
        rb = _rng("breast-shape", breast.seed, lat)
        dj = rb.uniform(0.9, 1.1)
        hj_u, hj_l = rb.uniform(0.9, 1.08), rb.uniform(0.9, 1.08)
        harm_a = rb.normal(0.0, 0.012, 4)
        harm_p = rb.uniform(0, 2 * math.pi, 4)
        nip_h = rb.uniform(4.5, 7.5) * size ** 0.5
        nip_w = rb.uniform(7.0, 10.0) * size ** 0.5
        self.skin_mm = rb.uniform(1.4, 2.0)
        self.edge_r = rb.uniform(20.0, 27.0) * size ** 0.4
        # view-level draws
        rv = _rng("view-shape", breast.seed, lat, view)
        H, W = self.H, self.W
        nip_h = min(nip_h, 0.08 * W)
        nip_w = min(nip_w, 0.1 * H)
        D = max(min(92.0 * size * dj, 0.84 * W - nip_h), 0.3 * W)
        if view == "CC":
            xc = -rv.uniform(0.06, 0.14) * D
            yc = H * rv.uniform(0.47, 0.53)
            hu = max(min(80.0 * size * hj_u, yc - 0.03 * H), 0.2 * H)
            hl = max(min(80.0 * size * hj_l, 0.97 * H - yc), 0.2 * H)
            pu = pl = rv.uniform(2.0, 2.5)
            tau = rv.normal(0.0, 0.04)
        else:
            D = max(min(D * rv.uniform(1.0, 1.08), 0.84 * W - nip_h), 0.3 * W)
            xc = -rv.uniform(0.08, 0.15) * D
            yc = H * rv.uniform(0.56, 0.63)
            hu = yc * rv.uniform(1.1, 1.25)
            pu = rv.uniform(1.3, 1.6)
            hl = max(H * rv.uniform(0.92, 1.0) - yc, 0.2 * H)
            pl = rv.uniform(2.0, 2.5)
            tau = rv.uniform(0.06, 0.16)
        self.D = D
        self.xc, self.yc = float(xc), float(yc)
        A = D - xc
        # radial outline lookup table over theta in (-pi/2, pi/2)
        n = 4097
        self.th0 = -math.pi / 2
        self.dth = math.pi / (n - 1)
        th = self.th0 + self.dth * np.arange(n)
        ph = th - tau
        up = ph < 0
        b = np.where(up, hu, hl)
        p = np.where(up, pu, pl)
        r = (np.abs(np.cos(ph) / A) ** p + np.abs(np.sin(ph) / b) ** p) ** (-1.0 / p)
        for k in range(4):
            r *= 1.0 + harm_a[k] * np.cos((k + 2) * ph + harm_p[k])
        sig = nip_w / A
        r += nip_h * np.exp(-0.5 * ((th - tau) / sig) ** 2)
        self.lut = r.astype(np.float32)
        self.tau = tau
        self.nipple = (self.xc + self.lut_at(tau) * math.cos(tau), self.yc + self.lut_at(tau) * math.sin(tau))
        self.nip_h = nip_h
        # boundary polyline (for extents)
        self.bx = self.xc + r * np.cos(th)
        self.by = self.yc + r * np.sin(th)
        # pectoral muscle (MLO only): convex curve from (pt, 0) on the top edge to (0, pl) on the chest wall
        self.has_pect = view == "MLO"
        if self.has_pect:
            upper = (th < tau) & (self.by < 0)
            x_top = float(self.bx[upper].max()) if upper.any() else 0.5 * D
            self.pt = x_top * rv.uniform(0.7, 0.9)
            self.pl = min(H * rv.uniform(0.4, 0.58), self.yc - 0.03 * H)
            self.kappa = rv.uniform(0.04, 0.16)

    def lut_at(self, theta) -> np.ndarray:
        return np.interp(theta, self.th0 + self.dth * np.arange(self.lut.size), self.lut)

    def rho(self, x, y) -> np.ndarray:
        """Normalised radius: < 1 inside the breast outline."""
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        th = np.arctan2(y - self.yc, x - self.xc)
        return np.hypot(x - self.xc, y - self.yc) / self.lut_at(th)

    def pect_sd(self, x, y) -> np.ndarray:
        """Approximate signed distance (mm) into the pectoral muscle: > 0 inside, < 0 outside."""
        x = np.asarray(x, np.float32)
        y = np.asarray(y, np.float32)
        if not self.has_pect:
            return np.full(np.broadcast(x, y).shape, -1e3, np.float32)
        u = x * np.float32(1.0 / self.pt)
        v = y * np.float32(1.0 / self.pl)
        f = u + v - 1.0 - np.float32(4.0 * self.kappa) * np.clip(u, 0, 1) * np.clip(v, 0, 1)
        g = np.float32(1.0 / math.sqrt(self.pt ** -2 + self.pl ** -2))
        sd = -f * g
        return np.where(u + v > 1.6, np.minimum(sd, np.float32(-5.0)), sd).astype(np.float32)

    def place(self, depth: float, offset: float, radius: float, skin_dist) -> tuple[float, float]:
        """Canonical (x, y) in mm of a lesion, kept inside the breast, off the skin and out of the pectoral."""
        xn, yn = self.nipple
        depth = float(np.clip(depth, 0.0, 1.0))
        offset = float(np.clip(offset, -1.0, 1.0))
        x = max(depth * xn, 1.0)
        ys = np.arange(0.0, self.H, 0.5)
        inside = self.rho(np.full_like(ys, x), ys) < 1.0
        if self.has_pect:
            inside &= self.pect_sd(np.full_like(ys, x), ys) < 0
        yi = int(np.clip(round(yn / 0.5), 0, ys.size - 1))
        if inside.any():
            idx = np.nonzero(inside)[0]
            # keep the run containing (or nearest to) the nipple row
            j = idx[np.argmin(np.abs(idx - yi))]
            lo = j
            while lo - 1 >= 0 and inside[lo - 1]:
                lo -= 1
            hi = j
            while hi + 1 < inside.size and inside[hi + 1]:
                hi += 1
            y_top, y_bot = ys[lo], ys[hi]
            y_mid = min(max(yn, y_top), y_bot)
            y = y_mid + offset * 0.85 * ((y_mid - y_top) if offset < 0 else (y_bot - y_mid))
        else:
            y = yn
        # anchor: central breast, below the pectoral
        ax, ay = 0.5 * xn, yn + (0.04 * self.H if self.has_pect else 0.0)
        need = radius + 3.0
        best, best_score = (x, y), -1e9
        for t in np.linspace(0.0, 1.0, 41):
            px, py = x + t * (ax - x), y + t * (ay - y)
            sd = float(skin_dist(px, py))
            ps = -float(self.pect_sd(px, py))
            xmargin = min(px, self.W - px, py, self.H - py)
            score = min(sd - need, ps - (radius + 2.0), xmargin - radius)
            if score >= 0:
                return px, py
            if score > best_score:
                best, best_score = (px, py), score
        return best


# ---------------------------------------------------------------------------
# anatomy


def _breast_params(breast: BreastSpec, lat: str) -> dict:
    r = _rng("breast-tissue", breast.seed, lat)
    dens = int(np.clip(breast.density, 1, 4))
    return {
        "bias": (-1.55, -0.75, 0.35, 1.45)[dens - 1] + r.normal(0.0, 0.12),
        "fat1": r.uniform(4.0, 8.0) * (1.25 - 0.12 * dens),
        "fat_w": r.uniform(12.0, 22.0),
        "streak_w": r.uniform(0.45, 0.75),
        "lobule_w": r.uniform(0.15, 0.3),
        "gain": r.uniform(1.4, 1.9),
        "cone0": r.uniform(25.0, 40.0),
        "cone1": r.uniform(0.7, 1.1),
        "strands": int(r.integers(120, 220)),
        "env_mod": r.uniform(0.35, 0.55),
        "vessels": int(r.integers(2, 6)),
        "pect_a": r.uniform(1.35, 1.8),
        "skin_mu": r.uniform(2.2, 2.8),
        "density": dens,
    }


def _wander(r: np.random.Generator, a: float, b: float, heading: float, *, length: float, step: float,
            turn: float) -> np.ndarray:
    """A random-walk polyline from (a, b): ``length / step`` steps, the heading drifting by N(0, turn) each."""
    pts = [(a, b)]
    for _ in range(int(length / step)):
        heading += r.normal(0.0, turn)
        a += step * math.cos(heading)
        b += step * math.sin(heading)
        pts.append((a, b))
    return np.array(pts)


def _line_paths(breast: BreastSpec, lat: str, P: dict) -> list[tuple[np.ndarray, float, float]]:
    """Centre lines of trabecular strands and vessels in breast-normalised coordinates.

    ``a`` runs from the nipple back towards the chest wall, ``b`` down, in mm of a
    100 mm deep breast. Strands run roughly towards the nipple (ducts, trabeculae,
    Cooper's ligaments); vessels are longer, wider and tortuous.
    """
    r = _rng("lines", breast.seed, lat)
    paths = []
    for _ in range(P["strands"]):
        a = r.uniform(3.0, 120.0)
        b = r.uniform(-110.0, 110.0)
        heading = math.atan2(-b, -a) + r.normal(0, 0.45)
        if r.random() < 0.5:
            heading += math.pi
        pts = _wander(r, a, b, heading, length=r.uniform(6.0, 40.0), step=1.0, turn=0.07)
        paths.append((pts, r.uniform(0.1, 0.35), r.uniform(0.05, 0.16)))
    for _ in range(P["vessels"]):
        a = r.uniform(70.0, 110.0)
        b = r.uniform(-55.0, 55.0)
        heading = math.atan2(-b * r.uniform(0.3, 0.8), -a) + r.normal(0, 0.25)
        pts = _wander(r, a, b, heading, length=r.uniform(50.0, 100.0), step=2.0, turn=0.12)
        paths.append((pts, r.uniform(0.7, 1.6), r.uniform(0.08, 0.16)))
    return paths


def _pect_fibres(breast: BreastSpec, lat: str, geo: _Geometry, wr: int, wc: int, work_mm: float) -> np.ndarray:
    """Unit-std streaky noise running along the pectoral muscle (fixed 0.4 mm grid, rotated into the view)."""
    cell = 0.4
    n = int(math.ceil(math.hypot(geo.H, geo.W) / cell)) + 8
    r = _rng("pect-fibres", breast.seed, lat)
    z = r.standard_normal((n, n), dtype=np.float32)
    z = cv2.GaussianBlur(z, (0, 0), sigmaX=14.0, sigmaY=1.3, borderType=cv2.BORDER_REFLECT)
    z *= np.float32(1.0 / max(float(z.std()), 1e-6))
    th = math.atan2(geo.pl, -geo.pt)  # direction of the muscle border
    c, s_ = math.cos(th), math.sin(th)
    cx, cy = 0.5 * geo.W, 0.5 * geo.H
    sc = work_mm / cell
    M = np.array([[c * sc, s_ * sc, (c * (0.5 * work_mm - cx) + s_ * (0.5 * work_mm - cy)) / cell + n / 2],
                  [-s_ * sc, c * sc, (-s_ * (0.5 * work_mm - cx) + c * (0.5 * work_mm - cy)) / cell + n / 2]])
    return cv2.warpAffine(z, M, (wc, wr), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)


def _anatomy(breast: BreastSpec, lat: str, geo: _Geometry, wr: int, wc: int, work_mm: float):
    """Attenuation A (float32), normalised radius rho and skin distance (mm) on the working grid."""
    P = _breast_params(breast, lat)
    xs = ((np.arange(wc, dtype=np.float32) + 0.5) * work_mm)
    ys = ((np.arange(wr, dtype=np.float32) + 0.5) * work_mm)
    X = np.broadcast_to(xs[None, :], (wr, wc))
    Y = np.broadcast_to(ys[:, None], (wr, wc))
    dx = X - np.float32(geo.xc)
    dy = Y - np.float32(geo.yc)
    th = np.arctan2(dy, dx)
    r = np.sqrt(dx * dx + dy * dy)
    idx = ((th - np.float32(geo.th0)) * np.float32(1.0 / geo.dth)).astype(np.float32)
    rb = cv2.remap(geo.lut[None, :], idx, np.zeros_like(idx), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    rho = r / rb
    del dx, dy, th, r, idx, rb
    inside = rho < 1.0
    dist = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 5) * np.float32(work_mm)
    dist = cv2.GaussianBlur(dist, (0, 0), 0.7)  # de-facet the L2 chamfer

    # breast-normalised coordinates relative to the nipple
    xn, yn = geo.nipple
    k = _NORM_D / geo.D
    ext_a, ext_b = 230.0, 420.0
    a0, b0 = -40.0, -210.0
    seedp = (breast.seed, lat)

    def cart(name, spec: _Spectrum):
        sp_a = max(work_mm * k, 0.5 / spec.fmax_x)
        sp_b = max(work_mm * k, 0.5 / spec.fmax_y)
        nca, ncb = max(8, int(round(ext_a / sp_a))), max(8, int(round(ext_b / sp_b)))
        sa, sb = ext_a / nca, ext_b / ncb
        # affine from working pixel (j, i) to field (col, row)
        Mc = np.array([[-work_mm * k / sa, 0.0, (xn * k - 0.5 * work_mm * k - a0) / sa],
                       [0.0, work_mm * k / sb, ((0.5 * work_mm - yn) * k - b0) / sb]], np.float64)
        f = _gauss_field(seedp + (name,), ncb, nca, ext_b, ext_a, spec)
        return cv2.warpAffine(f, Mc, (wc, wr), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_WRAP)

    f_iso = cart("iso", _powerlaw(3.0, 1 / 50.0, 0.6))
    f_mid = cart("mid", _powerlaw(3.0, 1 / 10.0, 1.5))
    f_lob = cart("lob", _bandpass(1 / 6.0, 0.5))
    f_env = cart("env", _powerlaw(4.0, 1 / 60.0, 0.05))

    # log-polar coordinates around the nipple: streaks converge on the nipple
    half = 2 if wr * wc > 1_500_000 else 1
    hr, hc = (wr + half - 1) // half, (wc + half - 1) // half
    an = (np.float32(xn) - ((np.arange(hc, dtype=np.float32) + 0.5) * work_mm * half))[None, :] * np.float32(k)
    bn = (((np.arange(hr, dtype=np.float32) + 0.5) * work_mm * half) - np.float32(yn))[:, None] * np.float32(k)
    s = np.sqrt(an * an + bn * bn)
    psi = np.arctan2(bn, an)
    s0 = 20.0
    ext_u = 3.4
    mx = ((psi + np.float32(math.pi)) * np.float32(1.0 / (2 * math.pi))).astype(np.float32)
    my = (np.log1p(s * np.float32(1.0 / s0)) * np.float32(1.0 / ext_u)).astype(np.float32)
    cone_w = np.float32(P["cone0"]) + np.float32(P["cone1"]) * np.maximum(an, 0.0)
    cone = np.exp(-(bn / cone_w) ** 2)
    if half > 1:
        mx = cv2.resize(mx, (wc, wr), interpolation=cv2.INTER_LINEAR)
        my = cv2.resize(my, (wc, wr), interpolation=cv2.INTER_LINEAR)
        cone = cv2.resize(cone, (wc, wr), interpolation=cv2.INTER_LINEAR)
    else:
        cone = np.broadcast_to(cone, (wr, wc))

    def logpolar(name, spec: _Spectrum):
        n_psi = 2 * int(math.ceil(2 * math.pi * spec.fmax_x))
        n_u = 2 * int(math.ceil(ext_u * spec.fmax_y))
        f = _gauss_field(seedp + (name,), n_u, n_psi, ext_u, 2 * math.pi, spec)
        return cv2.remap(f, mx * np.float32(n_psi), my * np.float32(n_u),
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)

    f_streak = logpolar("streak", _powerlaw(2.6, 0.5, 30.0, ax=1.0, ay=3.0))
    del mx, my, s, psi, an, bn

    # parenchymal envelope: away from the subcutaneous fat, lighter at the chest wall, in a cone behind the nipple
    d = dist
    env = _smoothstep(d, P["fat1"], P["fat1"] + P["fat_w"])
    env *= np.float32(0.7) + np.float32(0.3) * _smoothstep(X, 0.0, 0.18 * geo.D)
    cf = 0.25 + 0.1 * P["density"]
    env *= np.float32(cf) + np.float32(1.0 - cf) * cone
    dn2 = ((X - np.float32(xn)) ** 2 + (Y - np.float32(yn)) ** 2)
    nip = np.exp(-dn2 * np.float32(1.0 / (2 * (0.22 * geo.D) ** 2)))
    env = np.maximum(env, np.float32(0.7) * nip * _smoothstep(d, 1.5, 8.0))
    env *= np.clip(np.float32(1.0) + np.float32(P["env_mod"]) * f_env, 0.2, 1.6)
    env = np.clip(env, 0.0, 1.0)
    pect = None
    if geo.has_pect:
        psd = geo.pect_sd(X, Y) + np.float32(1.0) * f_env  # gently wavy anterior border
        pect = _smoothstep(psd, -1.5, 2.0)
        env *= (np.float32(1.0) - _smoothstep(psd, -12.0, 0.0) * np.float32(0.85))

    # fibroglandular fraction: soft threshold of the power-law texture
    q = f_iso + np.float32(P["streak_w"]) * f_streak
    q *= np.float32(1.0 / math.sqrt(1.0 + P["streak_w"] ** 2))
    t = q + np.float32(P["bias"]) + np.float32(1.8) * (env - np.float32(0.5))
    dense = _sigmoid(t * np.float32(P["gain"]))
    g = env * dense
    g *= np.clip(np.float32(1.0) + np.float32(0.1) * f_mid, 0.3, 1.7)
    lob = _smoothstep(f_lob, 0.9, 2.6) * _smoothstep(f_env, -0.6, 0.9)  # fat lobules, in patches
    g *= np.float32(1.0) - np.float32(P["lobule_w"]) * lob
    del q, t, dense, lob, f_lob, f_streak, cone
    env_wide = _smoothstep(d, 0.8, 5.0)
    g += np.float32(0.03) * f_mid * env_wide  # faint texture in the fat as well

    # trabecular strands / Cooper's ligaments and vessels (normalised coordinates, mapped into this view)
    lines = np.zeros((wr, wc), np.float32)
    for pts, width, amp in _line_paths(breast, lat, P):
        px = (xn - pts[:, 0] / k) / work_mm - 0.5
        py = (yn + pts[:, 1] / k) / work_mm - 0.5
        poly = np.round(np.stack([px, py], 1) * 16).astype(np.int32)
        w_px = width / work_mm
        th_px = max(1, int(round(w_px)))
        a_line = amp * min(1.0, w_px / th_px)
        n_pts = len(poly)
        if n_pts < 3:
            continue
        # fade in and out along the line (strands are not wires)
        prof = np.sin(np.linspace(0.0, math.pi, n_pts - 1)) ** 0.6
        for i in range(n_pts - 1):
            cv2.line(lines, (int(poly[i, 0]), int(poly[i, 1])), (int(poly[i + 1, 0]), int(poly[i + 1, 1])),
                     float(a_line * prof[i]), th_px, cv2.LINE_8, shift=4)
    lines = _blur(lines, max(0.5, 0.06 / work_mm))
    if pect is not None:
        lines *= np.float32(1.0) - pect
    g += lines * env_wide * (np.float32(1.0) - np.float32(0.35) * np.clip(g, 0.0, 1.0))

    # projected thickness: semicircular compressed edge; skin shell seen tangentially
    R = np.float32(geo.edge_r)
    sk = np.float32(geo.skin_mm) * (np.float32(1.0) + np.float32(0.6) * np.exp(-dn2 * np.float32(1.0 / (2 * 15.0 ** 2))))
    dc = np.minimum(d, R)
    outer = np.sqrt(np.maximum(np.float32(2.0) * R * dc - dc * dc, 0.0))
    di = np.clip(dc - sk, 0.0, None)
    inner = np.sqrt(np.maximum(np.float32(2.0) * R * di - di * di, 0.0))
    T_in = inner * np.float32(1.0 / R)
    L_skin = (outer - inner) * np.float32(1.0 / R)
    del outer, inner, di, dc
    A = T_in * (np.float32(1.0) + np.float32(_GLAND_GAIN) * g) + np.float32(P["skin_mu"]) * L_skin
    del T_in, L_skin, g, env, env_wide, lines
    # nipple soft tissue
    A += np.float32(0.25) * np.exp(-dn2 * np.float32(1.0 / (2 * 4.0 ** 2)))
    if pect is not None:
        grad = _smoothstep(psd, 0.0, 25.0)
        fib = _pect_fibres(breast, lat, geo, wr, wc, work_mm)
        A += pect * np.float32(P["pect_a"]) * (np.float32(0.5) + np.float32(0.5) * grad) * \
            (np.float32(1.0) + np.float32(0.05) * fib + np.float32(0.05) * f_iso)
    A *= inside
    return A.astype(np.float32, copy=False), rho.astype(np.float32, copy=False), dist


# ---------------------------------------------------------------------------
# lesions


def _tokens(text: str) -> list[str]:
    t = (text or "").upper().replace(" ", "_")
    return [p for p in t.replace("/", "-").split("-") if p and p not in ("NA", "N/A", "NONE")]


class _Patch:
    """A rectangle of the full-resolution canonical image with a supersampled drawing grid."""

    def __init__(self, cx: float, cy: float, half_mm: float, pixel_mm: float, rows: int, cols: int, fine_target: float):
        self.c0 = max(0, int(math.floor((cx - half_mm) / pixel_mm)))
        self.c1 = min(cols, int(math.ceil((cx + half_mm) / pixel_mm)))
        self.r0 = max(0, int(math.floor((cy - half_mm) / pixel_mm)))
        self.r1 = min(rows, int(math.ceil((cy + half_mm) / pixel_mm)))
        self.ss = max(1, int(math.ceil(pixel_mm / fine_target - 1e-6)))
        self.fine = pixel_mm / self.ss
        self.pixel_mm = pixel_mm
        self.h = max(1, self.r1 - self.r0)
        self.w = max(1, self.c1 - self.c0)
        self.fh, self.fw = self.h * self.ss, self.w * self.ss
        self.x0 = self.c0 * pixel_mm   # mm of the patch's left edge
        self.y0 = self.r0 * pixel_mm

    def local(self, cx: float, cy: float, ang: float):
        """Fine-grid coordinates (mm) rotated into the lesion frame (u along ang, v across)."""
        xs = (self.x0 + (np.arange(self.fw, dtype=np.float32) + 0.5) * self.fine - cx)[None, :]
        ys = (self.y0 + (np.arange(self.fh, dtype=np.float32) + 0.5) * self.fine - cy)[:, None]
        c, s = np.float32(math.cos(ang)), np.float32(math.sin(ang))
        u = xs * c + ys * s
        v = -xs * s + ys * c
        return u, v

    def to_px(self, x_mm: np.ndarray, y_mm: np.ndarray) -> np.ndarray:
        """Fixed-point (shift=4) fine-grid pixel coordinates for cv2 drawing."""
        px = (np.asarray(x_mm) - self.x0) / self.fine - 0.5
        py = (np.asarray(y_mm) - self.y0) / self.fine - 0.5
        return np.round(np.stack([px, py], -1) * 16).astype(np.int32)

    def down(self, fine_img: np.ndarray) -> np.ndarray:
        if self.ss == 1:
            return fine_img
        return cv2.resize(fine_img, (self.w, self.h), interpolation=cv2.INTER_AREA)


def _local_noise(rng: np.random.Generator, half_mm: float, cell_mm: float, sigma_cells: float = 1.5):
    """Smooth unit-std noise on a fixed mm grid (resolution independent); returns (grid, origin, cell)."""
    n = int(math.ceil(2 * half_mm / cell_mm)) + 4
    g = rng.standard_normal((n, n)).astype(np.float32)
    g = cv2.GaussianBlur(g, (0, 0), sigma_cells, borderType=cv2.BORDER_REFLECT)
    g /= max(float(g.std()), 1e-6)
    return g, -half_mm - 2 * cell_mm, cell_mm


def _sample_local(grid, origin: float, cell: float, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    mx = ((u - np.float32(origin)) / np.float32(cell) - 0.5).astype(np.float32)
    my = ((v - np.float32(origin)) / np.float32(cell) - 0.5).astype(np.float32)
    mx, my = np.broadcast_arrays(mx, my)
    return cv2.remap(grid, np.ascontiguousarray(mx), np.ascontiguousarray(my), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def _mass(les: LesionSpec, cx: float, cy: float, axis_ang: float, density: int, pixel_mm: float,
          rows: int, cols: int):
    """Attenuation patch (output resolution) and body mask of one mass; returns (patch, mask, r0, c0)."""
    r = _rng("lesion", les.seed, "mass")
    R = max(1.0, 0.5 * float(les.size_mm))
    shapes = [t for t in _tokens(les.shape) if t in _MASS_SHAPES]
    margins = [t for t in _tokens(les.margins) if t in _MASS_MARGINS]
    default_shape_ = ("IRREGULAR", "IRREGULAR", "LOBULATED") if les.malignant else ("ROUND", "OVAL", "OVAL")
    default_margin = ("SPICULATED", "ILL_DEFINED", "SPICULATED") if les.malignant else ("CIRCUMSCRIBED", "CIRCUMSCRIBED", "OBSCURED")
    pick_s = default_shape_[int(r.integers(3))]
    pick_m = default_margin[int(r.integers(3))]
    shape = shapes[0] if shapes else pick_s
    if not margins:
        margins = [pick_m]
    spiculated = "SPICULATED" in margins or shape == "ARCHITECTURAL_DISTORTION"
    ang = axis_ang + r.uniform(-math.pi, math.pi)
    # radial outline r(phi) in units of R
    nphi = 720
    phi = np.linspace(0, 2 * math.pi, nphi, endpoint=False)
    if shape == "OVAL":
        aspect = r.uniform(0.55, 0.78)
    elif shape == "ROUND":
        aspect = r.uniform(0.88, 1.0)
    else:
        aspect = r.uniform(0.65, 0.95)
    rad = 1.0 / np.sqrt(np.cos(phi) ** 2 + (np.sin(phi) / aspect) ** 2)
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
    ad = shape == "ARCHITECTURAL_DISTORTION"
    body_R = R * (0.35 if ad else 1.0)
    # edge blur (mm) from margins and subtlety
    sub = int(np.clip(les.subtlety, 1, 5))
    sig = 0.12
    if "OBSCURED" in margins:
        sig = max(sig, 0.5)
    if "MICROLOBULATED" in margins:
        sig = max(sig, 0.2)
    if "ILL_DEFINED" in margins:
        sig = max(sig, 1.2 + 0.04 * R)
    if "SPICULATED" in margins:
        sig = max(sig, 0.35)
    if ad:
        sig = max(sig, 1.0)
    sig += (5 - sub) * 0.18
    amp = _MASS_CONTRAST[sub - 1] * (1.0 - 0.07 * (density - 1)) * float(np.clip((les.size_mm / 12.0) ** 0.25, 0.75, 1.25))
    if ad:
        amp *= 0.45
    # spicules
    spic = []
    if spiculated:
        ns = int(round(r.uniform(12, 24) * (R / 7.5) ** 0.4)) + (10 if ad else 0)
        base_angles = np.sort(r.uniform(0, 2 * math.pi, ns))
        for a_s in base_angles:
            length = R * r.uniform(0.9, 2.6) * (1.3 if ad else 1.0)
            w0 = r.uniform(0.12, 0.4) * (R / 8.0) ** 0.3
            a_amp = amp * r.uniform(0.25, 0.5) * (1.6 if ad else 1.0)
            curv = r.normal(0.0, 0.1)
            jit = r.normal(0.0, 0.07, 16)
            spic.append((a_s, length, w0, a_amp, curv, jit))
    max_len = max([s_[1] for s_ in spic], default=0.0)
    half = max(R * (1.0 + 0.25), body_R + max_len) + 4 * sig + 1.0
    fine_target = 0.1 if pixel_mm > 0.1 else pixel_mm
    pt = _Patch(cx, cy, half, pixel_mm, rows, cols, fine_target)
    # the body (and its mask) on a smaller window than the spicules
    hb = min(half, max(body_R * 1.05, 0.6 * R if ad else 0.0) + 4 * sig + 1.0)
    pb = _Patch(cx, cy, hb, pixel_mm, rows, cols, fine_target)
    u, v = pb.local(cx, cy, ang)
    phi_px = np.arctan2(v, u)
    r_px = np.sqrt(u * u + v * v)
    idx = ((phi_px % np.float32(2 * math.pi)) * np.float32(nphi / (2 * math.pi))).astype(np.float32)
    rad32 = np.concatenate([rad, rad[:1]]).astype(np.float32)[None, :]
    rb = cv2.remap(rad32, idx, np.zeros_like(idx), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    qn = r_px / (rb * np.float32(body_R))
    body_mask_f = (qn <= 1.0).astype(np.float32)
    dome = np.sqrt(np.clip(1.0 - qn * qn, 0.0, 1.0))
    dome = np.float32(0.35) * body_mask_f + np.float32(0.65) * dome  # projected body: flat-ish top, steep edge
    noise, org, cell = _local_noise(r, half, 0.35, 2.0)
    mott = _sample_local(noise, org, cell, u, v)
    dome *= np.float32(1.0) + np.float32(0.07) * mott
    if "OBSCURED" in margins:
        # parts of the margin fade into the surrounding tissue
        fade = 0.5 + 0.5 * np.cos(phi_px - np.float32(r.uniform(0, 2 * math.pi)))
        dome *= np.float32(1.0) - np.float32(0.35) * fade * _smoothstep(qn, 0.6, 1.0)
    body = pb.down((_blur(dome.astype(np.float32), sig / pb.fine) * np.float32(amp)).astype(np.float32))
    mask_f = body_mask_f if not ad else (r_px <= np.float32(R * 0.6)).astype(np.float32)
    body_mask = pb.down(mask_f) >= 0.5
    del u, v, phi_px, r_px, idx, rb, qn, dome, mott, mask_f, body_mask_f
    patch = np.zeros((pt.h, pt.w), np.float32)
    mask = np.zeros((pt.h, pt.w), bool)
    oy, ox = pb.r0 - pt.r0, pb.c0 - pt.c0
    patch[oy:oy + pb.h, ox:ox + pb.w] = body
    mask[oy:oy + pb.h, ox:ox + pb.w] = body_mask
    if spic:
        sl = np.zeros((pt.fh, pt.fw), np.float32)
        c, s_ = math.cos(ang), math.sin(ang)
        for a_s, length, w0, a_amp, curv, jit in spic:
            rb0 = float(np.interp(a_s % (2 * math.pi), phi, rad)) * body_R
            nseg = 16
            ts = np.linspace(0.0, 1.0, nseg + 1)
            hd = a_s + curv * ts * 3 + np.concatenate([[0.0], np.cumsum(jit)])[: nseg + 1]
            step = length / nseg
            pu_ = [rb0 * 0.85 * math.cos(a_s)]
            pv_ = [rb0 * 0.85 * math.sin(a_s)]
            for i in range(nseg):
                pu_.append(pu_[-1] + step * math.cos(hd[i]) + (rb0 * 0.15 / nseg) * math.cos(a_s))
                pv_.append(pv_[-1] + step * math.sin(hd[i]) + (rb0 * 0.15 / nseg) * math.sin(a_s))
            pu_ = np.array(pu_)
            pv_ = np.array(pv_)
            gx = cx + pu_ * c - pv_ * s_
            gy = cy + pu_ * s_ + pv_ * c
            pts = pt.to_px(gx, gy)
            for i in range(nseg):
                f = i / nseg
                w = max(0.05, w0 * (1.0 - 0.8 * f))
                val = a_amp * (1.0 - 0.9 * f) ** 1.3
                th_px = max(1, int(round(w / pt.fine)))
                cv2.line(sl, tuple(int(z) for z in pts[i]), tuple(int(z) for z in pts[i + 1]), float(val),
                         th_px, cv2.LINE_8, shift=4)
        sl = _blur(sl, max(0.6, 0.1 / pt.fine))
        patch += pt.down(sl)
    if not mask.any():
        mask[min(mask.shape[0] - 1, int((cy / pixel_mm) - pt.r0)), min(mask.shape[1] - 1, int((cx / pixel_mm) - pt.c0))] = True
    return patch, mask, pt.r0, pt.c0


def _calc_types(les: LesionSpec, r: np.random.Generator) -> list[str]:
    out = []
    for t in _tokens(les.calc_type):
        t = _CALC_ALIASES.get(t, t)
        if t in _CALC_TYPES and t not in out:
            out.append(t)
    if not out:
        pool = ("PLEOMORPHIC", "PLEOMORPHIC", "FINE_LINEAR_BRANCHING", "AMORPHOUS") if les.malignant else \
            ("COARSE", "ROUND_AND_REGULAR", "PUNCTATE", "LUCENT_CENTER")
        out = [pool[int(r.integers(len(pool)))]]
    return out


def _thick(size_mm: float) -> float:
    """Relative attenuation of a speck of this size (thin specks are fainter)."""
    return float(np.clip(0.35 + 1.3 * size_mm, 0.4, 1.0))


def _spread(pts: np.ndarray, min_dist: float, n: int) -> np.ndarray:
    """Greedy subset of at most n points that are at least min_dist apart (deterministic)."""
    keep: list[np.ndarray] = []
    for p_ in pts:
        if all(float(np.hypot(*(p_ - q))) >= min_dist for q in keep):
            keep.append(p_)
            if len(keep) >= n:
                break
    return np.array(keep) if keep else pts[:1]


def _calc_positions(dist: str, n: int, ext: float, r: np.random.Generator) -> np.ndarray:
    """Speck centres (u along the duct direction towards the nipple, v across), mm."""
    half = 0.5 * ext
    if dist == "LINEAR":
        t = r.uniform(-half, half, n)
        bend = r.normal(0, 0.08) / max(half, 1.0)
        v = bend * t * t + r.normal(0, 0.35 + 0.02 * ext, n)
        return np.stack([t, v], 1)
    if dist == "SEGMENTAL":
        nb = int(r.integers(2, 5))
        spread = r.uniform(0.25, 0.45)
        br = r.uniform(-spread, spread, nb)
        which = r.integers(0, nb, n)
        t = r.uniform(0, 1, n) ** 0.8
        u = half - t * ext
        v = t * ext * np.tan(br[which]) + r.normal(0, 0.3, n)
        return np.stack([u, v], 1)
    if dist in ("REGIONAL", "DIFFUSELY_SCATTERED"):
        rr = half * np.sqrt(r.uniform(0, 1, n))
        a = r.uniform(0, 2 * math.pi, n)
        return np.stack([rr * np.cos(a), 0.75 * rr * np.sin(a)], 1)
    aspect = r.uniform(0.5, 0.95)
    p = r.normal(0, 0.42 * half, (n, 2))
    p[:, 1] *= aspect
    norm = np.hypot(p[:, 0], p[:, 1] / aspect)
    p[norm > half] *= (half / norm[norm > half])[:, None] * r.uniform(0.6, 1.0, int((norm > half).sum()))[:, None]
    return p


def _calcs(les: LesionSpec, cx: float, cy: float, axis_ang: float, density: int, pixel_mm: float,
           rows: int, cols: int):
    """Attenuation patch and smooth cluster-outline mask of a calcification group."""
    r = _rng("lesion", les.seed, "calc")
    ext = float(np.clip(les.size_mm, 2.0, 80.0))
    types = _calc_types(les, r)
    dists = [t for t in _tokens(les.calc_distribution) if t in _CALC_DISTRIBUTIONS]
    dist = dists[0] if dists else ("CLUSTERED" if r.random() < 0.75 or not les.malignant else "LINEAR")
    sub = int(np.clip(les.subtlety, 1, 5))
    amp0 = _CALC_CONTRAST[sub - 1] * (1.0 - 0.06 * (density - 1))
    ang = axis_ang + r.normal(0, 0.3)
    scale = (ext / 10.0) ** 0.7
    if dist in ("REGIONAL", "DIFFUSELY_SCATTERED"):
        scale *= 0.7
    prims: list[tuple] = []   # (kind, u, v, params...)
    per_type = max(1, len(types))
    for ctype in types:
        if ctype == "PLEOMORPHIC":
            n = int(r.integers(14, 30) * scale / per_type) + 5
            pos = _calc_positions(dist, n, ext, r)
            for (pu, pv) in pos:
                size = r.uniform(0.08, 0.45)
                nv = int(r.integers(4, 8))
                aa = np.sort(r.uniform(0, 2 * math.pi, nv))
                rr = size * 0.5 * r.uniform(0.45, 1.0, nv)
                el = r.uniform(1.0, 2.2)
                o = r.uniform(0, math.pi)
                qu = rr * np.cos(aa) * el
                qv = rr * np.sin(aa)
                pts = np.stack([pu + qu * math.cos(o) - qv * math.sin(o), pv + qu * math.sin(o) + qv * math.cos(o)], 1)
                prims.append(("poly", pts, amp0 * r.uniform(0.6, 1.05) * _thick(size)))
        elif ctype == "FINE_LINEAR_BRANCHING":
            n = int(r.integers(8, 18) * scale / per_type) + 4
            pos = _calc_positions(dist if dist != "CLUSTERED" else "LINEAR" if r.random() < 0.4 else dist, n, ext, r)
            for (pu, pv) in pos:
                L = r.uniform(0.4, 1.8)
                o = r.normal(0, 0.35)
                w = r.uniform(0.08, 0.18)
                pts = [(pu - 0.5 * L * math.cos(o), pv - 0.5 * L * math.sin(o))]
                ns = 4
                for i in range(ns):
                    o2 = o + r.normal(0, 0.3)
                    x0, y0 = pts[-1]
                    pts.append((x0 + L / ns * math.cos(o2), y0 + L / ns * math.sin(o2)))
                a_ = amp0 * r.uniform(0.7, 1.05) * _thick(w * 1.6)
                # broken into 1-3 pieces
                cut = sorted(set(int(c) for c in r.integers(1, ns, int(r.integers(0, 2)))))
                segs = np.split(np.array(pts), cut) if cut else [np.array(pts)]
                for seg in segs:  # np.split leaves a one-step gap between the pieces
                    if len(seg) >= 2:
                        prims.append(("line", seg, w, a_ * r.uniform(0.8, 1.0)))
                if r.random() < 0.35:  # a branch
                    j = int(r.integers(1, ns))
                    ob = o + r.choice([-1, 1]) * r.uniform(0.4, 0.9)
                    Lb = L * r.uniform(0.3, 0.6)
                    x0, y0 = pts[j]
                    prims.append(("line", np.array([(x0, y0), (x0 + Lb * math.cos(ob), y0 + Lb * math.sin(ob))]),
                                  w * 0.8, a_ * 0.85))
        elif ctype == "AMORPHOUS":
            n = int(r.integers(20, 45) * scale / per_type) + 6
            for (pu, pv) in _calc_positions(dist, n, ext, r):
                prims.append(("disk", pu, pv, r.uniform(0.05, 0.12), amp0 * r.uniform(0.25, 0.45), 1.0))
        elif ctype == "PUNCTATE":
            n = int(r.integers(8, 18) * scale / per_type) + 5
            for (pu, pv) in _calc_positions(dist, n, ext, r):
                rad_ = r.uniform(0.08, 0.24)
                prims.append(("disk", pu, pv, rad_, amp0 * r.uniform(0.7, 1.0) * _thick(2 * rad_), 0.0))
        elif ctype == "ROUND_AND_REGULAR":
            n = int(r.integers(5, 12) * scale / per_type) + 5
            for (pu, pv) in _spread(_calc_positions(dist, 3 * n, ext, r), 1.2, n):
                rad_ = r.uniform(0.2, 0.5)
                prims.append(("disk", pu, pv, rad_, amp0 * r.uniform(0.85, 1.1) * _thick(2 * rad_), 0.0))
        elif ctype == "LUCENT_CENTER":
            n = int(r.integers(2, 6) * scale / per_type) + 2
            for (pu, pv) in _spread(_calc_positions(dist, 4 * n, ext, r), 3.2, n):
                ro = r.uniform(0.45, 1.2)
                prims.append(("ring", pu, pv, ro, r.uniform(0.15, 0.3), amp0 * r.uniform(0.8, 1.05)))
        elif ctype == "COARSE":
            n = int(r.integers(3, 7) * scale / per_type) + 3
            for (pu, pv) in _spread(_calc_positions(dist, 3 * n, ext, r), 2.2, n):
                a_ = amp0 * r.uniform(1.0, 1.35)
                for _ in range(int(r.integers(3, 7))):
                    du, dv = r.normal(0, 0.4, 2)
                    prims.append(("ellipse", pu + du, pv + dv, r.uniform(0.2, 0.55), r.uniform(0.15, 0.4),
                                  r.uniform(0, 180.0), a_ * r.uniform(0.8, 1.0)))
        elif ctype == "LARGE_RODLIKE":
            n = int(r.integers(3, 6) * scale / per_type) + 2
            for (pu, pv) in _spread(_calc_positions(dist, 4 * n, ext, r), 2.5, n):
                L = min(ext * 0.5, r.uniform(2.5, 7.0))
                o = r.normal(0, 0.2)
                w = r.uniform(0.3, 0.65)
                seg = np.array([(pu - 0.5 * L * math.cos(o), pv - 0.5 * L * math.sin(o)),
                                (pu, pv + r.normal(0, 0.15)),
                                (pu + 0.5 * L * math.cos(o), pv + 0.5 * L * math.sin(o))])
                prims.append(("line", seg, w, amp0 * r.uniform(0.9, 1.2)))
        elif ctype == "VASCULAR":
            nv_ = 1 + int(r.random() < 0.4)
            for k_ in range(nv_):
                vv = r.uniform(-0.25, 0.25) * ext
                t = np.linspace(-0.5 * ext, 0.5 * ext, 40)
                hd = np.cumsum(r.normal(0, 0.12, t.size))
                hd -= hd.mean()
                cen = np.stack([t, vv + np.cumsum(np.sin(hd)) * (t[1] - t[0])], 1)
                tang = np.gradient(cen, axis=0)
                nrm = np.stack([-tang[:, 1], tang[:, 0]], 1) / np.linalg.norm(tang, axis=1)[:, None]
                sep = r.uniform(0.8, 1.4)
                prims.append(("tube", cen, sep + 0.4, amp0 * 0.08))  # the vessel itself
                for side in (-1, 1):
                    line = cen + nrm * (side * sep * 0.5)
                    i0 = int(r.integers(0, 3))
                    while i0 < len(t) - 2:  # dashed, interrupted track
                        i1 = min(len(t) - 1, i0 + int(r.integers(2, 6)))
                        if r.random() < 0.7:
                            w = r.uniform(0.1, 0.22)
                            prims.append(("line", line[i0:i1 + 1], w, amp0 * r.uniform(0.7, 1.0) * _thick(1.6 * w)))
                        i0 = i1 + int(r.integers(1, 3))
    # drawing
    centres = []
    for p_ in prims:
        if p_[0] in ("disk", "ring", "ellipse"):
            centres.append((p_[1], p_[2]))
        elif p_[0] == "poly":
            centres.extend(p_[1].tolist())
        else:
            centres.extend(p_[1].tolist())
    cu = np.array(centres, float)
    half = float(np.abs(cu).max()) + 4.0 if cu.size else ext * 0.5 + 4.0
    fine_target = 0.03
    pt = _Patch(cx, cy, half, pixel_mm, rows, cols, fine_target)
    c, s_ = math.cos(ang), math.sin(ang)

    def g(u_, v_):
        u_ = np.asarray(u_, float)
        v_ = np.asarray(v_, float)
        return cx + u_ * c - v_ * s_, cy + u_ * s_ + v_ * c

    lay = np.zeros((pt.fh, pt.fw), np.float32)
    haze = np.zeros((pt.fh, pt.fw), np.float32)
    for p_ in prims:
        kind = p_[0]
        if kind == "disk":
            _, pu, pv, rad_, a_, hz = p_
            gx, gy = g(pu, pv)
            ctr = pt.to_px(gx, gy)
            target = haze if hz else lay
            cv2.circle(target, (int(ctr[0]), int(ctr[1])), max(0, int(round(rad_ / pt.fine * 16))), float(a_), -1,
                       cv2.LINE_8, shift=4)
        elif kind == "ring":
            _, pu, pv, ro, w, a_ = p_
            gx, gy = g(pu, pv)
            ctr = pt.to_px(gx, gy)
            cv2.circle(lay, (int(ctr[0]), int(ctr[1])), int(round(ro / pt.fine * 16)), float(a_), -1, cv2.LINE_8, shift=4)
            cv2.circle(lay, (int(ctr[0]), int(ctr[1])), int(round(max(ro - w, 0.05) / pt.fine * 16)), float(a_ * 0.3), -1,
                       cv2.LINE_8, shift=4)
        elif kind == "ellipse":
            _, pu, pv, ax1, ax2, o, a_ = p_
            gx, gy = g(pu, pv)
            ctr = pt.to_px(gx, gy)
            cv2.ellipse(lay, (int(ctr[0]), int(ctr[1])), (int(round(ax1 / pt.fine * 16)), int(round(ax2 / pt.fine * 16))),
                        float(o + math.degrees(ang)), 0.0, 360.0, float(a_), -1, cv2.LINE_8, shift=4)
        elif kind == "poly":
            _, pts, a_ = p_
            gx, gy = g(pts[:, 0], pts[:, 1])
            cv2.fillPoly(lay, [pt.to_px(gx, gy)], float(a_), cv2.LINE_8, shift=4)
        elif kind == "tube":
            _, pts, w, a_ = p_
            gx, gy = g(pts[:, 0], pts[:, 1])
            cv2.polylines(haze, [pt.to_px(gx, gy)], False, float(a_), max(1, int(round(w / pt.fine))), cv2.LINE_8, shift=4)
        else:
            _, pts, w, a_ = p_
            gx, gy = g(pts[:, 0], pts[:, 1])
            cv2.polylines(lay, [pt.to_px(gx, gy)], False, float(a_), max(1, int(round(w / pt.fine))), cv2.LINE_8, shift=4)
    lay = _blur(lay, 0.05 / pt.fine)
    if haze.any():
        lay += _blur(haze, 0.1 / pt.fine)
    patch = pt.down(lay)
    # cluster outline: convex hull of the specks, grown by a margin, smoothed
    gx, gy = g(cu[:, 0], cu[:, 1])
    px = np.stack([(gx - pt.x0) / pixel_mm - 0.5, (gy - pt.y0) / pixel_mm - 0.5], 1)
    hull = cv2.convexHull(np.round(px * 16).astype(np.int32))
    m8 = np.zeros((pt.h, pt.w), np.uint8)
    cv2.fillConvexPoly(m8, hull, 1, cv2.LINE_8, shift=4)
    margin = (1.2 + 0.06 * ext) / pixel_mm
    dt = cv2.distanceTransform((1 - m8).astype(np.uint8), cv2.DIST_L2, 5)
    mask = dt <= margin
    return patch, mask, pt.r0, pt.c0


# ---------------------------------------------------------------------------
# film: label, strips, dust


def _label_text(lat: str, view: str, r: np.random.Generator) -> str:
    styles = (f"{lat}{view}", f"{lat} {view}", f"{lat}-{view}", f"{lat}{view}")
    return styles[int(r.integers(len(styles)))]


def _add_film_artifacts(img: np.ndarray, breast_mask: np.ndarray, cw_side: str, lat: str, view: str,
                        pixel_mm: float, label: bool, r: np.random.Generator) -> None:
    """Border strips, dust, scratches and the burned-in label, in place on the float image (display frame)."""
    rows, cols = img.shape
    occupied_cols = np.nonzero(breast_mask.any(0))[0]
    occupied_rows = np.nonzero(breast_mask.any(1))[0]
    if occupied_cols.size:
        free_outer = (occupied_cols.min() if cw_side == "right" else cols - 1 - occupied_cols.max())
    else:
        free_outer = cols // 3
    free_top = occupied_rows.min() if occupied_rows.size else rows // 3
    free_bot = rows - 1 - occupied_rows.max() if occupied_rows.size else rows // 3
    # bright border strips (unexposed film edges / scanner edges)
    n_strips = int(r.choice([0, 1, 1, 2]))
    edges = ["outer", "top", "bottom"]
    r.shuffle(edges)
    for e in edges[:n_strips]:
        free = {"outer": free_outer, "top": free_top, "bottom": free_bot}[e]
        w_mm = r.uniform(1.5, 7.0)
        w = int(min(w_mm / pixel_mm, 0.7 * free))
        if w < 2:
            continue
        val = r.uniform(52000.0, 63500.0)
        skew = r.uniform(-0.6, 0.6) / pixel_mm
        grad = r.uniform(-2500.0, 2500.0)
        if e == "outer":
            n_along = rows
        else:
            n_along = cols
        t = np.linspace(0.0, 1.0, n_along, dtype=np.float32)
        depth = np.clip(np.round(w + skew * (t - 0.5)), 1, None).astype(np.int32)
        prof = (np.float32(val) + np.float32(grad) * t)
        k = np.arange(int(depth.max()) + 2, dtype=np.int32)
        band = (k[None, :] < depth[:, None])  # (along, across)
        vals = np.where(band, prof[:, None], np.nan).astype(np.float32)
        vals = vals + r.normal(0.0, 300.0, vals.shape).astype(np.float32)
        bmask = band
        if e == "outer":
            if cw_side == "right":
                sl = (slice(None), slice(0, k.size))
                img_part = img[sl]
                img[sl] = np.where(bmask[:, :img_part.shape[1]], vals[:, :img_part.shape[1]], img_part)
            else:
                sl = (slice(None), slice(cols - k.size, cols))
                img_part = img[sl]
                img[sl] = np.where(bmask[:, ::-1], vals[:, ::-1], img_part)
        elif e == "top":
            sl = (slice(0, k.size), slice(None))
            img[sl] = np.where(bmask.T, vals.T, img[sl])
        else:
            sl = (slice(rows - k.size, rows), slice(None))
            img[sl] = np.where(bmask.T[::-1], vals.T[::-1], img[sl])
    # dust specks (bright: dust on the screen; a few dark ones)
    n_dust = int(r.poisson(4.0)) if r.random() < 0.6 else 0
    for _ in range(n_dust):
        x, y = r.uniform(0, cols), r.uniform(0, rows)
        rad = r.uniform(0.04, 0.18) / pixel_mm
        val = r.uniform(2500.0, 12000.0) * (1 if r.random() < 0.8 else -0.6)
        val *= min(1.0, (2 * rad) ** 2) if rad < 0.5 else 1.0
        r0, c0 = int(y), int(x)
        rr = max(1, int(math.ceil(rad)))
        ys, xs = np.ogrid[max(0, r0 - rr):min(rows, r0 + rr + 1), max(0, c0 - rr):min(cols, c0 + rr + 1)]
        disk = ((ys - y) ** 2 + (xs - x) ** 2) <= max(rad, 0.5) ** 2
        img[max(0, r0 - rr):min(rows, r0 + rr + 1), max(0, c0 - rr):min(cols, c0 + rr + 1)] += disk * np.float32(val)
    # a fibre / scratch now and then
    if r.random() < 0.3:
        x0, y0 = r.uniform(0, cols), r.uniform(0, rows)
        ln = r.uniform(0.1, 0.6) * rows
        a = math.pi / 2 + r.normal(0, 0.15)
        n = 40
        pts = [(x0, y0)]
        for _ in range(n):
            a += r.normal(0, 0.01)
            pts.append((pts[-1][0] + ln / n * math.cos(a), pts[-1][1] + ln / n * math.sin(a)))
        layer = np.zeros((rows, cols), np.float32)
        cv2.polylines(layer, [np.round(np.array(pts) * 16).astype(np.int32)], False, float(r.uniform(1500.0, 5000.0)),
                      max(1, int(round(0.06 / pixel_mm))), cv2.LINE_8, shift=4)
        img += layer
    if not label:
        return
    text = _label_text(lat, view, r)
    font = cv2.FONT_HERSHEY_SIMPLEX if r.random() < 0.6 else cv2.FONT_HERSHEY_DUPLEX
    h_mm = r.uniform(7.0, 11.0)
    scale = h_mm / pixel_mm / 22.0
    thick = max(1, int(round(scale * 2.2)))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    boxed = r.random() < 0.4
    pad = int(round(2.0 / pixel_mm))
    bw, bh = tw + 2 * pad, th + base + 2 * pad
    margin = int(round(r.uniform(4.0, 10.0) / pixel_mm))
    outer_left = cw_side == "right"
    xs_ = [margin, cols - bw - margin]
    x_outer = xs_[0] if outer_left else xs_[1]
    x_inner = xs_[1] if outer_left else xs_[0]
    cands = [(x_outer, margin), (x_outer, rows - bh - margin), (x_inner, rows - bh - margin), (x_inner, margin)]
    if r.random() < 0.35:
        cands[0], cands[1] = cands[1], cands[0]
    best, best_ov = cands[0], None
    for (bx, by) in cands:
        bx, by = int(np.clip(bx, 0, max(0, cols - bw))), int(np.clip(by, 0, max(0, rows - bh)))
        ov = int(breast_mask[by:by + bh, bx:bx + bw].sum())
        if best_ov is None or ov < best_ov:
            best, best_ov = (bx, by), ov
        if ov == 0:
            break
    bx, by = best
    m = np.zeros((bh, bw), np.uint8)
    cv2.putText(m, text, (pad, pad + th), font, scale, 255, thick, cv2.LINE_AA)
    mf = m.astype(np.float32) / 255.0
    mf = cv2.GaussianBlur(mf, (0, 0), max(0.4, 0.04 / pixel_mm))
    sub = img[by:by + bh, bx:bx + bw]
    hh, ww = sub.shape
    mf = mf[:hh, :ww]
    if boxed:
        box_val = r.uniform(56000.0, 63000.0)
        ink = r.uniform(3000.0, 12000.0)
        sub[:] = box_val + r.normal(0.0, 250.0, sub.shape).astype(np.float32)
        sub[:] = sub * (1 - mf) + ink * mf
    else:
        val = r.uniform(58000.0, 64500.0)
        sub[:] = sub * (1 - mf) + np.float32(val) * mf


# ---------------------------------------------------------------------------
# the renderer


def render_view(breast: BreastSpec, laterality: str, view: str, lesions: list[LesionSpec], *,
                pixel_mm: float = 0.05, shape: tuple[int, int] | None = None,
                chest_wall_side: str | None = None, label: bool = True, seed: int = 0) -> RenderedView:
    """Render one synthetic scanned-film mammogram (uint16 MONOCHROME2) with lesion masks.

    Args:
        breast: the breast (density, size, anatomy seed); anatomy depends on ``breast.seed``
            and ``laterality`` only, so the CC and MLO of a breast match.
        laterality: ``"L"`` or ``"R"`` (``"LEFT"``/``"RIGHT"`` accepted).
        view: ``"CC"`` or ``"MLO"``.
        lesions: abnormalities to insert; ``masks`` follows this order.
        pixel_mm: pixel spacing in mm (DDSM scans: 0.042-0.05).
        shape: (rows, cols); default :func:`default_shape` (about 4600 x 2900 at 0.05 mm). The
            breast keeps its physical size in mm and is shrunk only if it would not fit.
        chest_wall_side: ``"left"``/``"right"``; default R -> right, L -> left.
        label: burn in the film label (e.g. "LCC", "R MLO").
        seed: film-level randomness (grain, strips, dust, label style).

    Returns:
        RenderedView with the image, per-lesion bool masks, chest-wall side and breast mask.
    """
    lat = str(laterality).strip().upper()[:1]
    if lat not in ("L", "R"):
        raise ValueError(f"laterality must be 'L' or 'R', got {laterality!r}")
    view = str(view).strip().upper()
    if view not in ("CC", "MLO"):
        raise ValueError(f"view must be 'CC' or 'MLO', got {view!r}")
    if pixel_mm <= 0:
        raise ValueError("pixel_mm must be positive")
    cw = chest_wall_side or ("right" if lat == "R" else "left")
    cw = str(cw).strip().lower()
    if cw not in ("left", "right"):
        raise ValueError(f"chest_wall_side must be 'left' or 'right', got {chest_wall_side!r}")
    rows, cols = (int(shape[0]), int(shape[1])) if shape is not None else default_shape(pixel_mm)
    if rows < 16 or cols < 16:
        raise ValueError("image shape too small")
    pixel_mm = float(pixel_mm)
    geo = _Geometry(breast, lat, view, rows * pixel_mm, cols * pixel_mm)
    density = int(np.clip(breast.density, 1, 4))

    # anatomy on the working grid, then up to full resolution
    f = max(1, int(round(0.1 / pixel_mm)))
    wr, wc = -(-rows // f), -(-cols // f)
    work_mm = pixel_mm * f
    A_w, rho_w, dist_w = _anatomy(breast, lat, geo, wr, wc, work_mm)
    if f > 1:
        A = cv2.resize(A_w, (cols, rows), interpolation=cv2.INTER_LINEAR)
        rho = cv2.resize(rho_w, (cols, rows), interpolation=cv2.INTER_LINEAR)
    else:
        A, rho = A_w, rho_w
    breast_mask = rho < 1.0

    def skin_dist(x_mm: float, y_mm: float) -> float:
        j = int(np.clip(x_mm / work_mm - 0.5, 0, wc - 1))
        i = int(np.clip(y_mm / work_mm - 0.5, 0, wr - 1))
        if not (0 <= x_mm < cols * pixel_mm and 0 <= y_mm < rows * pixel_mm):
            return -1.0
        return float(dist_w[i, j])

    masks: list[np.ndarray] = []
    xn, yn = geo.nipple
    for les in lesions:
        kind = str(les.kind).strip().lower()
        is_calc = kind.startswith("calc")
        size = max(1.0, float(les.size_mm))
        radius = (0.5 * size + 1.2 + 0.06 * size) if is_calc else 0.5 * size  # mask extent around the centre
        cx, cy = geo.place(les.depth, les.offset, radius, skin_dist)
        axis_ang = math.atan2(yn - cy, xn - cx)
        if is_calc:
            patch, m, r0, c0 = _calcs(les, cx, cy, axis_ang, density, pixel_mm, rows, cols)
        else:
            patch, m, r0, c0 = _mass(les, cx, cy, axis_ang, density, pixel_mm, rows, cols)
        h, w = patch.shape
        region = breast_mask[r0:r0 + h, c0:c0 + w]
        A[r0:r0 + h, c0:c0 + w] += patch * region
        full = np.zeros((rows, cols), bool)
        full[r0:r0 + h, c0:c0 + w] = m & region
        if not full.any():
            i = int(np.clip(cy / pixel_mm, 0, rows - 1))
            j = int(np.clip(cx / pixel_mm, 0, cols - 1))
            full[i, j] = True
        masks.append(full)

    # film curve, fog and grain
    rf = _rng("film", seed, breast.seed, lat, view, rows, cols)
    del rho
    v = A  # in place: A is not needed any more
    v *= np.float32(-1.0 / _FILM_A0)
    np.exp(v, out=v)
    v *= np.float32(-_FILM_V)
    v += np.float32(_FILM_V)          # v = V * (1 - exp(-A / a0)), brightness 0..V
    grain = rf.standard_normal((rows, cols), dtype=np.float32)
    gs = 0.6
    grain = cv2.GaussianBlur(grain, (0, 0), gs)
    k1 = cv2.getGaussianKernel(int(2 * math.ceil(3 * gs) + 1), gs)
    unit = 1.0 / float((k1 ** 2).sum())  # back to unit std after the blur
    img = grain * v
    img *= np.float32(420.0 * unit)
    grain *= np.float32(120.0 * unit)
    img += grain
    del grain
    v *= np.float32(_SCALE)
    img += v
    del v, A
    fog = rf.uniform(500.0, 1300.0)
    gy, gx = rf.uniform(-1.0, 1.0) * 0.3 * fog, rf.uniform(-1.0, 1.0) * 0.25 * fog
    img += np.linspace(-0.5, 0.5, rows, dtype=np.float32)[:, None] * np.float32(gy) + np.float32(fog)
    img += np.linspace(-0.5, 0.5, cols, dtype=np.float32)[None, :] * np.float32(gx)

    if cw == "right":
        img = np.ascontiguousarray(img[:, ::-1])
        breast_mask = np.ascontiguousarray(breast_mask[:, ::-1])
        masks = [np.ascontiguousarray(m[:, ::-1]) for m in masks]
    _add_film_artifacts(img, breast_mask, cw, lat, view, pixel_mm, label, rf)
    np.clip(img, 0.0, 65535.0, out=img)
    image = img.astype(np.uint16)
    masks = [m & breast_mask for m in masks]
    return RenderedView(image=image, masks=masks, chest_wall_side=cw, breast_mask=breast_mask)
