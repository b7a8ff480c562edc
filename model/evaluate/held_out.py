"""When a held-out set is too small to tell two models apart: the bounds and the words for it.

The same rule before a retrain starts (from the planned split), at the safety
gate (from what was evaluated) and in the model registry (from a model's
recorded figures).
"""

from __future__ import annotations

# Below these the gate's figures swing by more than about 0.1 when one patient or lesion changes hands: the
# table is shown, but the reader is told it cannot decide between two models (before Start and at the gate).
MIN_HELD_OUT_PATIENTS = 10
MIN_HELD_OUT_LESIONS = 10
AUC_MIN_PER_CLASS = 5  # an AUC from fewer malignant or benign abnormalities than this is not reported as a figure


def plural(n: int, word: str) -> str:
    """'1 patient', '2 patients'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def held_out_warnings(patients: int | None, lesions: int | None, malignant: int | None = None,
                      benign: int | None = None) -> list[str]:
    """Why a held-out set is too small for the gate to decide between two models; [] when it is not.

    The same rule before a run starts (from the planned split) and at the gate (from what was evaluated).
    """
    out = []
    if patients is not None and patients < MIN_HELD_OUT_PATIENTS:
        out.append(f"only {plural(patients, 'held-out patient')}: at least {MIN_HELD_OUT_PATIENTS} are needed before "
                   "the figures can tell two models apart")
    if lesions is not None and lesions < MIN_HELD_OUT_LESIONS:
        out.append(f"only {plural(lesions, 'held-out lesion')} (at least {MIN_HELD_OUT_LESIONS})")
    if malignant is not None and benign is not None and min(malignant, benign) < AUC_MIN_PER_CLASS:
        out.append(f"{malignant} malignant and {benign} benign held-out abnormalities: the malignancy AUC needs at least "
                   f"{AUC_MIN_PER_CLASS} of each")
    return out


__all__ = ["AUC_MIN_PER_CLASS", "MIN_HELD_OUT_LESIONS", "MIN_HELD_OUT_PATIENTS", "held_out_warnings", "plural"]
