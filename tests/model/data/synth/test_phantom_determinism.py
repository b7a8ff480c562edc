"""What the renderer promises about its randomness: which seed moves what, and nothing else does.

Pins the generator's behaviour without hard-coding pixel hashes: a render is a pure
function of its arguments (not of what was rendered before, nor of the interpreter),
the film seed moves only the film, and a lesion's seed moves only that lesion.
Rendered at 0.4 mm pixels so the file runs in a few seconds.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from model.data.synth.phantom import render_view
from model.data.synth.specs import BreastSpec, LesionSpec, RenderedView

PX = 0.4
REPO = Path(__file__).resolve().parents[4]

BREAST = BreastSpec(density=3, size=1.0, seed=17)
LESIONS = [
    LesionSpec("mass", True, 16.0, 3, 0.45, 0.3, shape="IRREGULAR", margins="SPICULATED", seed=5),
    LesionSpec("calcification", True, 10.0, 4, 0.65, -0.4, calc_type="FINE_LINEAR_BRANCHING",
               calc_distribution="SEGMENTAL", seed=6),
]

# run in a fresh interpreter: prints the digest of a render of BREAST/LESIONS as above
_CHILD = """
import hashlib, sys
sys.path.insert(0, {repo!r})
from model.data.synth.phantom import render_view
from model.data.synth.specs import BreastSpec, LesionSpec
lesions = [
    LesionSpec("mass", True, 16.0, 3, 0.45, 0.3, shape="IRREGULAR", margins="SPICULATED", seed=5),
    LesionSpec("calcification", True, 10.0, 4, 0.65, -0.4, calc_type="FINE_LINEAR_BRANCHING",
               calc_distribution="SEGMENTAL", seed=6),
]
rv = render_view(BreastSpec(density=3, size=1.0, seed=17), "R", "MLO", lesions, pixel_mm={px}, seed=8)
h = hashlib.sha256()
for a in [rv.image, rv.breast_mask, *rv.masks]:
    h.update(a.tobytes())
print(h.hexdigest())
"""


def _render(lat="R", view="MLO", lesions=LESIONS, seed=8, breast=BREAST, **kw) -> RenderedView:
    return render_view(breast, lat, view, list(lesions), pixel_mm=PX, seed=seed, **kw)


def _digest(rv: RenderedView) -> str:
    h = hashlib.sha256()
    for a in [rv.image, rv.breast_mask, *rv.masks]:
        h.update(a.tobytes())
    return h.hexdigest()


def _same(a: RenderedView, b: RenderedView) -> bool:
    return (np.array_equal(a.image, b.image) and np.array_equal(a.breast_mask, b.breast_mask)
            and len(a.masks) == len(b.masks) and all(np.array_equal(x, y) for x, y in zip(a.masks, b.masks)))


def test_a_render_does_not_depend_on_what_was_rendered_before():
    first = _render()
    # other breasts, views, lesions and film seeds in between: no shared random state may leak
    _render(lat="L", view="CC", seed=1)
    _render(breast=BreastSpec(density=1, size=0.8, seed=3), lesions=LESIONS[::-1], seed=2)
    np.random.seed(12345)
    np.random.random(1000)
    again = _render()
    assert _same(first, again)


def test_same_bytes_in_a_fresh_interpreter_with_another_hash_seed():
    env = dict(os.environ, PYTHONHASHSEED="4242")
    out = subprocess.run([sys.executable, "-c", _CHILD.format(repo=str(REPO), px=PX)], env=env, cwd=str(REPO),
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == _digest(_render())


def test_film_seed_moves_the_film_only():
    a = _render(seed=1)
    b = _render(seed=2)
    assert not np.array_equal(a.image, b.image)
    assert np.array_equal(a.breast_mask, b.breast_mask)
    for ma, mb in zip(a.masks, b.masks):
        assert np.array_equal(ma, mb), "lesion outlines do not depend on the film"


def test_breast_seed_moves_the_anatomy():
    a = _render(lesions=[])
    b = _render(lesions=[], breast=BreastSpec(density=3, size=1.0, seed=18))
    assert not np.array_equal(a.breast_mask, b.breast_mask)


def test_a_lesions_seed_moves_that_lesion_only():
    base = _render(label=False)
    moved = [LESIONS[0], LesionSpec(**{**LESIONS[1].__dict__, "seed": 99})]
    other = _render(lesions=moved, label=False)
    assert np.array_equal(base.masks[0], other.masks[0]), "the other lesion keeps its outline"
    assert not np.array_equal(base.masks[1], other.masks[1])
    changed = base.image != other.image
    assert changed.any()
    # every changed pixel lies near the calcification cluster whose seed changed
    ys, xs = np.nonzero(base.masks[1] | other.masks[1])
    pad = int(round(6.0 / PX))
    near = np.zeros_like(changed)
    near[max(0, ys.min() - pad):ys.max() + pad + 1, max(0, xs.min() - pad):xs.max() + pad + 1] = True
    assert not (changed & ~near).any()


def test_laterality_spelling_and_case_do_not_change_the_render():
    assert _same(_render(lat="R", view="MLO"), _render(lat=" right ", view=" mlo"))
