"""Model files: safetensors + card round trip, pickles refused, mismatches caught."""

import json
import pickle
import zipfile

import pytest
import torch

from model.errors import ModelFileError
from model.nn.network import BCirUNet
from model.nn.card import new_card
from model.nn.weights import load_model, random_model, save_model


def test_round_trip(tmp_path):
    model = random_model(3, threshold=0.4)
    path = save_model(model.net, model.card, tmp_path / "m.safetensors")
    loaded = load_model(path)
    for (k, a), (_, b) in zip(model.net.state_dict().items(), loaded.net.state_dict().items()):
        assert torch.equal(a, b), k
    card = json.loads((tmp_path / "m.json").read_text())
    for key in ("architecture", "architecture_version", "preprocess", "tile_size", "normalization", "threshold",
                "training", "parent", "model_version", "weights_sha256"):
        assert key in card
    assert loaded.threshold == 0.4 and loaded.preprocess.working_spacing_mm == card["preprocess"]["working_spacing_mm"]
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("name", ["model.pt", "model.pth", "weights.ckpt"])
def test_pickles_are_refused_without_unpickling(tmp_path, name):
    class Boom:
        def __reduce__(self):
            return (exec, ("open(r'%s', 'w').write('ran')" % (tmp_path / "pwned"),))

    path = tmp_path / name
    with open(path, "wb") as f:
        pickle.dump({"state": Boom()}, f)
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(path)
    assert not (tmp_path / "pwned").exists()


def test_torch_zip_checkpoint_renamed_is_still_refused(tmp_path):
    path = tmp_path / "innocent.safetensors"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    with pytest.raises(ModelFileError, match="pickle"):
        load_model(path)


def test_card_and_weights_must_match(tmp_path):
    a = random_model(1)
    path = save_model(a.net, a.card, tmp_path / "a.safetensors")
    b = random_model(2)
    save_model(b.net, b.card, tmp_path / "b.safetensors")
    (tmp_path / "a.json").write_text((tmp_path / "b.json").read_text())
    with pytest.raises(ModelFileError, match="does not match"):
        load_model(path)
    (tmp_path / "c.json").unlink(missing_ok=True)
    (tmp_path / "b.json").unlink()
    with pytest.raises(ModelFileError, match="no model card"):
        load_model(tmp_path / "b.safetensors")


def test_wrong_architecture_settings(tmp_path):
    net = BCirUNet(base_channels=8)
    card = new_card(net)
    path = save_model(net, card, tmp_path / "small.safetensors")
    assert load_model(path).net.config["base_channels"] == 8  # the card rebuilds the same network
    data = json.loads((tmp_path / "small.json").read_text())
    data["network"]["base_channels"] = 16
    (tmp_path / "small.json").write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="does not fit"):
        load_model(path)


def test_bundled_demo_model_is_the_default(tmp_path):
    """The shipped model loads, says it is synthetic-only, and `bcir infer` uses it when no --weights is given."""
    import subprocess
    import sys

    import numpy as np

    from model.nn.weights import default_model_path
    from tests.conftest import make_dicom

    path = default_model_path()
    model = load_model(path)
    assert "synthetic" in model.card.intended_use and "Not for clinical use" in model.card.intended_use
    assert model.card.training.held_out_evaluation["patients"] > 0
    image = make_dicom(tmp_path / "x.dcm", (np.arange(320 * 200).reshape(320, 200) % 4000).astype(np.uint16))
    env = {**__import__("os").environ, "BCIR_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "model.cli", "infer", str(image), "--out", str(tmp_path / "out"), "--json"],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    (item,) = json.loads(result.stdout)["results"]
    assert item["model_version"] == model.version


def _with_matching_card(tmp_path, data: bytes):
    """``bad.safetensors`` holding ``data``, with a good card whose SHA-256 is that of ``data``."""
    import hashlib

    good = random_model(1)
    save_model(good.net, good.card, tmp_path / "bad.safetensors")
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    card = json.loads((tmp_path / "bad.json").read_text())
    card["weights_sha256"] = hashlib.sha256(data).hexdigest()
    (tmp_path / "bad.json").write_text(json.dumps(card))
    return path


def _safetensors_bytes(dtype: str, shape: list[int], body: bytes) -> bytes:
    import struct

    header = json.dumps({"a": {"dtype": dtype, "shape": shape, "data_offsets": [0, len(body)]}}).encode()
    return struct.pack("<Q", len(header)) + header + body


@pytest.mark.parametrize("what,data", [
    ("not safetensors at all", b"\xff" * 64),
    ("offsets past the end", _safetensors_bytes("F32", [4], b"\0" * 4)),
    ("a dtype torch has no type for", _safetensors_bytes("F4", [8], b"\0" * 4)),  # safetensors raises KeyError here
])
def test_unreadable_safetensors_is_one_line(tmp_path, what, data):
    with pytest.raises(ModelFileError) as info:
        load_model(_with_matching_card(tmp_path, data))
    assert "\n" not in str(info.value) and "bad.safetensors" in str(info.value)
