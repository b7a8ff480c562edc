"""Model files: safetensors weights plus a JSON model card. Never a pickle.

A model is two files side by side, ``NAME.safetensors`` and ``NAME.json``. The
card says what the weights are (architecture and version, network settings),
how to feed them (working spacing, tile size, normalisation, threshold), where
they come from (training data, metrics, date, parent model), and carries the
SHA-256 of the weights file, so a card never describes other weights than its own.

PyTorch checkpoints (``.pt``, ``.pth``, ``.ckpt``, ``.bin``) are pickles: loading
one can run arbitrary code. They are refused with a message that says how to
convert them.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from safetensors.torch import save as save_safetensors

from model.errors import ModelFileError
from model.fileio import atomic_write_bytes, atomic_write_json
from model.network import ARCHITECTURE, ARCHITECTURE_VERSION, BCirUNet
from model.preprocess import PreprocessConfig

CARD_FORMAT = "bcir-model-card/1"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar")
NORMALIZATION = "histogram equalization over the breast region, float in [0, 1], background 0"
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "resources" / "models"


@dataclass
class LoadedModel:
    net: BCirUNet
    card: dict
    path: Path | None

    @property
    def version(self) -> str:
        return self.card["model_version"]

    @property
    def preprocess(self) -> PreprocessConfig:
        return PreprocessConfig.from_dict(self.card.get("preprocess", {}))

    @property
    def threshold(self) -> float:
        return float(self.card.get("threshold", 0.5))

    @property
    def tile_size(self) -> int:
        return int(self.card.get("tile_size", 1024))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def card_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def new_card(net: BCirUNet, *, preprocess: PreprocessConfig = PreprocessConfig(), tile_size: int = 1024,
             threshold: float = 0.5, training: dict | None = None, parent: str | None = None,
             version: str | None = None, name: str = "B-Cir U-Net") -> dict:
    """A model card for ``net``; ``model_version`` is made unique from the date when not given."""
    now = _dt.datetime.now(_dt.timezone.utc)
    return {
        "format": CARD_FORMAT,
        "name": name,
        "model_version": version or now.strftime("bcir-%Y%m%d-%H%M%S"),
        "architecture": ARCHITECTURE,
        "architecture_version": ARCHITECTURE_VERSION,
        "network": dict(net.config),
        "preprocess": preprocess.to_dict(),
        "tile_size": tile_size,
        "normalization": NORMALIZATION,
        "threshold": threshold,
        "training": training or {"data": "none: randomly initialised weights", "metrics": {}, "date": None},
        "parent": parent,
        "created": now.isoformat(timespec="seconds"),
    }


def save_model(net: BCirUNet, card: dict, weights_path: str | Path) -> Path:
    """Write ``NAME.safetensors`` then ``NAME.json`` (with the weights' SHA-256), both atomically."""
    weights_path = Path(weights_path)
    if weights_path.suffix != ".safetensors":
        raise ModelFileError("model files are saved as .safetensors")
    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    atomic_write_bytes(weights_path, save_safetensors(state, metadata={"format": "pt", "model_version": card["model_version"]}))
    card = dict(card, weights_file=weights_path.name, weights_sha256=_sha256(weights_path))
    atomic_write_json(card_path(weights_path), card, indent=2)
    return weights_path


def _refuse_pickle(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(8)
    is_zip = head[:4] == b"PK\x03\x04"  # torch.save's zip container holds a pickle
    is_pickle = head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
    if path.suffix.lower() in PICKLE_SUFFIXES or is_zip or is_pickle:
        raise ModelFileError(
            f"{path.name} is a PyTorch pickle checkpoint; loading a pickle can run arbitrary code, so B-Cir Review "
            "never opens one. Convert it once, in a trusted environment, to .safetensors with a model card "
            "(README: 'Converting a PyTorch checkpoint')."
        )


def read_card(weights_path: Path) -> dict:
    path = card_path(weights_path)
    if not path.is_file():
        raise ModelFileError(f"{weights_path.name} has no model card ({path.name} missing beside it)")
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"model card {path.name} is unreadable ({exc})") from None
    if card.get("format") != CARD_FORMAT or card.get("architecture") != ARCHITECTURE:
        raise ModelFileError(f"{path.name} is not a {ARCHITECTURE} model card (format {card.get('format')!r})")
    return card


def load_model(weights_path: str | Path, *, verify: bool = True) -> LoadedModel:
    """Load ``NAME.safetensors`` with its card. Raises :class:`ModelFileError` with a one-line reason."""
    path = Path(weights_path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} not found")
    _refuse_pickle(path)
    card = read_card(path)
    if verify and card.get("weights_sha256") and card["weights_sha256"] != _sha256(path):
        raise ModelFileError(f"{path.name} does not match its model card (SHA-256 differs): the files were mixed up")
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types
        raise ModelFileError(f"{path.name} is not a readable safetensors file ({exc})") from None
    net = BCirUNet(**card.get("network", {}))
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelFileError(f"{path.name} does not fit the {ARCHITECTURE} network of its card ({first})") from None
    net.eval()
    return LoadedModel(net=net, card=card, path=path)


def random_model(seed: int = 0, **card_fields) -> LoadedModel:
    """A randomly initialised network with a card (tests and benchmarks before trained weights exist)."""
    torch.manual_seed(seed)
    net = BCirUNet().eval()
    card = new_card(net, version=card_fields.pop("version", f"random-{seed}"), **card_fields)
    return LoadedModel(net=net, card=card, path=None)


def bundled_model_path() -> Path | None:
    """The demo model shipped in resources/models, when there is one."""
    candidates = sorted(BUNDLED_DIR.glob("*.safetensors")) if BUNDLED_DIR.is_dir() else []
    return candidates[0] if candidates else None


def default_model_path() -> Path:
    path = bundled_model_path()
    if path is None:
        raise ModelFileError("no model given and none bundled in resources/models: pass --weights NAME.safetensors")
    return path


def active_model_path() -> Path:
    """The model the reader chose in the registry (``bcir models use``), else the bundled one.

    Raises :class:`ModelFileError` when nothing was chosen and no model is bundled.
    """
    from model.registry import ModelRegistry  # the registry builds on this module

    return ModelRegistry().active_path()
