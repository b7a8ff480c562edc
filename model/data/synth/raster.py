"""Float32 image helpers shared by every stage: smooth ramps, a sigmoid and a fast Gaussian blur."""

from __future__ import annotations

import cv2
import numpy as np


def smoothstep(x: np.ndarray, e0: float, e1: float) -> np.ndarray:
    """0 below e0, 1 above e1, a cubic ramp between (float32)."""
    t = x - np.float32(e0)
    t *= np.float32(1.0 / (e1 - e0))
    np.clip(t, 0.0, 1.0, out=t)
    out = np.float32(3.0) - np.float32(2.0) * t
    out *= t
    out *= t
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function written with tanh (float32)."""
    return np.float32(0.5) + np.float32(0.5) * np.tanh(np.float32(0.5) * x)


def blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
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
