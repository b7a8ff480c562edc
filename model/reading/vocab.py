"""The fixed words of a screening read: sides, views, outcomes, score scales, densities, findings, policies."""

from __future__ import annotations

SIDES = ("L", "R")
VIEWS = ("CC", "MLO")
# An image view is the side then the view ("LCC", "RMLO"), as screening programmes name the four views.
VIEW_NAMES = ("LCC", "LMLO", "RCC", "RMLO")

# routine recall (back at the next round), recall for assessment, technical recall (retake a named view),
# clinical recall (NHS BSP outcomes of a read)
OUTCOMES = ("routine", "assessment", "technical", "clinical")
# The outcomes that recall the woman for a suspected abnormality. A technical recall retakes an image: it is not a
# recall for suspicion, so it neither counts in the recall rate nor makes a read discordant.
RECALLS = ("assessment", "clinical")

# BI-RADS assessment categories (with 4A/4B/4C) and the Royal College of Radiologists' UK 5-point scale
# (1 normal, 2 benign, 3 indeterminate, 4 suspicious, 5 highly suspicious).
SCALES: dict[str, tuple[str, ...]] = {
    "birads": ("0", "1", "2", "3", "4A", "4B", "4C", "5", "6"),
    "rcr": ("1", "2", "3", "4", "5"),
}

DENSITIES = ("a", "b", "c", "d")  # BI-RADS breast composition

# The NHS prototype's list of abnormality types.
ABNORMALITIES = ("well-defined mass", "ill-defined mass", "microcalcification", "architectural distortion",
                 "asymmetric density", "lymph node", "other")

# BI-RADS (5th edition) descriptors that may refine a finding.
DESCRIPTORS: dict[str, tuple[str, ...]] = {
    "mass_shape": ("oval", "round", "irregular"),
    "mass_margin": ("circumscribed", "obscured", "microlobulated", "indistinct", "spiculated"),
    "calc_morphology": ("skin", "vascular", "coarse or popcorn-like", "large rod-like", "round", "punctate", "rim",
                        "dystrophic", "milk of calcium", "suture", "amorphous", "coarse heterogeneous",
                        "fine pleomorphic", "fine linear or fine-linear branching"),
    "calc_distribution": ("diffuse", "regional", "grouped", "linear", "segmental"),
}

DEPTHS = ("anterior", "middle", "posterior")  # thirds of the nipple-to-chest-wall distance

# The site's reading policy (NHS Data Dictionary "Breast Screening Reading Type", without "mixed").
POLICIES = ("single", "recall_if_either", "consensus", "arbitration")
# A reader's worklists, and the states a case goes through.
ROLES = ("first", "second", "arbitration", "done")
STATES = ("first", "second", "arbitration", "consensus", "done")


def recalls(outcome: str) -> bool:
    """Whether ``outcome`` recalls the woman for a suspected abnormality (a technical recall does not)."""
    return outcome in RECALLS
