"""What our node and our requests speak: the mammography storage SOP classes with their transfer syntaxes."""

from __future__ import annotations

import logging

from pydicom.uid import (
    DeflatedExplicitVRLittleEndian, DigitalMammographyXRayImageStorageForPresentation,
    DigitalMammographyXRayImageStorageForProcessing, ExplicitVRBigEndian, ExplicitVRLittleEndian,
    ImplicitVRLittleEndian, JPEG2000, JPEG2000Lossless, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless,
    JPEGLosslessSV1, JPEGLSLossless, JPEGLSNearLossless, RLELossless, SecondaryCaptureImageStorage,
)

# For Presentation and For Processing mammograms, and Secondary Capture (CBIS-DDSM ships its scans as SC).
STORAGE_CLASSES = (DigitalMammographyXRayImageStorageForPresentation, DigitalMammographyXRayImageStorageForProcessing,
                   SecondaryCaptureImageStorage)
# Uncompressed first (what every peer speaks), then the compressed syntaxes archives keep mammograms in; pydicom's
# pylibjpeg plugins decode them all.
TRANSFER_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
                     ExplicitVRBigEndian, JPEGLosslessSV1, JPEGLossless, JPEGLSLossless, JPEGLSNearLossless,
                     JPEG2000Lossless, JPEG2000, JPEGBaseline8Bit, JPEGExtended12Bit, RLELossless)
AE_TITLE_MAX = 16

# pynetdicom logs each failed connection as an ERROR of its own; PacsError says it once, in one line
logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)


def check_ae_title(title: str, what: str = "AE title") -> str:
    """An AE title as DICOM allows it: 1-16 characters, no backslash or control character, not only spaces."""
    from model.errors import ConfigError

    text = str(title or "")
    if not text.strip() or len(text) > AE_TITLE_MAX or "\\" in text or any(ord(c) < 32 for c in text):
        raise ConfigError(what, f"{text[:20]!r} is not an AE title (1 to 16 characters, no backslash)")
    return text.strip()


__all__ = ["AE_TITLE_MAX", "STORAGE_CLASSES", "TRANSFER_SYNTAXES", "check_ae_title"]
