"""Which model is in use: ``--weights``, else ``$BCIR_MODEL``, else the registry's active version."""

from __future__ import annotations

import pytest

from model.errors import ModelFileError
from model.registry.resolve import require_model, resolve_model


def test_model_path_from_argument_then_environment_then_bundle(monkeypatch, tmp_path):
    import model.nn.weights

    monkeypatch.setenv("BCIR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BCIR_MODEL", str(tmp_path / "env.safetensors"))
    assert resolve_model(tmp_path / "given.safetensors") == tmp_path / "given.safetensors"
    assert resolve_model(None) == tmp_path / "env.safetensors"
    monkeypatch.setenv("BCIR_MODEL", "none")
    assert resolve_model(None) is None
    assert resolve_model(tmp_path / "given.safetensors") == tmp_path / "given.safetensors"  # --weights still wins
    with pytest.raises(ModelFileError, match=r"turned off \(BCIR_MODEL=none\)"):
        require_model(None)
    monkeypatch.delenv("BCIR_MODEL")
    assert resolve_model(None) == model.nn.weights.bundled_model_path()
    monkeypatch.setattr(model.nn.weights, "BUNDLED_DIR", tmp_path / "empty")
    with pytest.raises(ModelFileError):
        resolve_model(None)
