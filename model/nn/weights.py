"""Model files: safetensors weights plus a JSON model card. Never a pickle.

A model is two files side by side, ``NAME.safetensors`` and ``NAME.json``. The
card says what the weights are (architecture and version, network settings),
how to feed them (working spacing, tile size, normalisation, threshold), where
they come from (training data, metrics, date, parent model), and carries the
SHA-256 of the weights file, so a card never describes other weights than its own.

Every card is checked against its schema (:class:`ModelCard`) before anything is
built from it: a card that is not an object, an unknown network setting, a
network or a tile too large for memory, a working spacing that would blow a view
up to gigabytes, a missing version or a threshold that is not a number is
refused with one line. Weights that are not finite numbers are refused too.

The pair is written so that a reader never pairs weights with another card
(:func:`save_model`): the new card first, beside the old pair under a pending
name, then the weights, then the card renamed into place. A reader that finds
the weights newer than the card takes the pending card that matches them; a
writer killed in between leaves a pair that still loads, and the next run in
that folder settles it (:func:`settle_pending_cards`).

PyTorch checkpoints (``.pt``, ``.pth``, ``.ckpt``, ``.bin``) are pickles: loading
one can run arbitrary code. They are refused with a message that says how to
convert them.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import re
import time
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from model.errors import ModelFileError
from model.fileio import STALE_PART_S, atomic_write_bytes, atomic_write_json, fsync_dir, held_lock, is_stale
from model.nn.network import ARCHITECTURE, ARCHITECTURE_VERSION, BCirUNet
from model.data.preprocess import PreprocessConfig

CARD_FORMAT = "bcir-model-card/1"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar")
NORMALIZATION = "histogram equalization over the breast region, float in [0, 1], background 0"
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "resources" / "models"
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")  # also a registry folder's name

# The card's ranges: (type, lowest, highest). What the project uses sits well inside: Table 1 of the paper
# (base_channels 16, depth 5, dropout 0.1, 1024-px tiles at about 0.1 mm), the bundled demo model (0.4 mm,
# 256-px tiles), the tests' small networks (base_channels 8; 0.2 mm, 64-px tiles). The limits keep a card from
# asking for more memory than a workstation has: base_channels 4096 would allocate 19 GB, a working spacing of
# 0.0005 mm a 15 GB view.
NETWORK_RANGES: dict[str, tuple[type, float, float]] = {
    "in_channels": (int, 1, 1),  # the preprocessing makes one grey channel
    "base_channels": (int, 2, 64),
    "depth": (int, 2, 7),
    "dropout": (float, 0.0, 0.9),
    "skip_pool_size": (int, 1, 7),  # odd: the size-keeping max-pool
    "head_hidden": (int, 1, 1024),
    "head_dropout": (float, 0.0, 0.9),
}
MAX_BOTTLENECK_CHANNELS = 1024  # base_channels * 2**(depth - 1); Table 1: 256
PREPROCESS_RANGES: dict[str, tuple[type, float, float]] = {
    "working_spacing_mm": (float, 0.05, 2.0),  # 0.05 mm: the finest mammography pixel; finer only inflates a view
    "default_spacing_mm": (float, 0.02, 0.2),  # DDSM's scanners 0.042-0.05 mm, detectors up to 0.1 mm
    "margin_mm": (float, 0.0, 50.0),
    "equalize_bins": (int, 16, 65536),
}
TILE_RANGE = (int, 32, 2048)  # and a multiple of 2**(depth - 1)
THRESHOLD_RANGE = (float, 0.01, 0.99)
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_NETWORK_DEFAULTS = dict(BCirUNet.__init__.__kwdefaults__)


def _number(name: str, value, kind: type, low: float, high: float, unit: str = ""):
    """``value`` as ``kind`` when it is a number within [low, high]; else ModelFileError saying which and why."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelFileError(f"{name} is {value!r}, not a number")
    if not math.isfinite(value) or not low <= value <= high:
        span = f"{low:g}" if low == high else f"{low:g} to {high:g}"
        raise ModelFileError(f"{name} {value!r} is out of range ({span}{unit})")
    if kind is int:
        if float(value) != int(value):
            raise ModelFileError(f"{name} {value!r} is not a whole number")
        return int(value)
    return float(value)


def _settings(name: str, data, ranges: dict, defaults: dict, units: dict | None = None) -> dict:
    if not isinstance(data, dict):
        raise ModelFileError(f"{name} is {type(data).__name__}, not an object")
    unknown = sorted(set(data) - set(ranges))
    if unknown:
        raise ModelFileError(f"{name} has unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                             f"(known: {', '.join(ranges)})")
    out = {}
    for key, (kind, low, high) in ranges.items():
        value = data.get(key, defaults.get(key))
        if value is None:
            raise ModelFileError(f"{name}.{key} is missing")
        out[key] = _number(f"{name}.{key}", value, kind, low, high, (units or {}).get(key, ""))
    return out


@dataclass(frozen=True)
class ModelCard:
    """A model card checked against its schema, parsed once; ``data`` is the card as written (training, metrics,
    parent, ... for those who show them). :meth:`parse` raises :class:`ModelFileError` with a one-line reason."""

    version: str
    name: str
    network: dict
    preprocess: PreprocessConfig
    tile_size: int
    threshold: float
    weights_sha256: str | None
    data: dict

    @classmethod
    def parse(cls, data, *, require_sha: bool = False) -> "ModelCard":
        if not isinstance(data, dict):
            raise ModelFileError(f"the card is a JSON {type(data).__name__}, not an object")
        if data.get("format") != CARD_FORMAT or data.get("architecture") != ARCHITECTURE:
            raise ModelFileError(f"not a {ARCHITECTURE} model card (format {data.get('format')!r}, architecture "
                                 f"{data.get('architecture')!r})")
        if str(data.get("architecture_version")) != ARCHITECTURE_VERSION:
            raise ModelFileError(f"architecture_version {data.get('architecture_version')!r} is not "
                                 f"{ARCHITECTURE_VERSION!r}, the only one this version reads")
        version = data.get("model_version")
        if version is None:
            raise ModelFileError("model_version is missing")
        if not isinstance(version, str) or not VERSION_RE.match(version):
            raise ModelFileError(f"model_version {version!r} is not a version name (letters, digits, '.', '_', '-', "
                                 "at most 128)")
        name = data.get("name", version)
        if not isinstance(name, str):
            raise ModelFileError(f"name is {type(name).__name__}, not text")
        network = _settings("network", data.get("network"), NETWORK_RANGES, _NETWORK_DEFAULTS)
        if network["skip_pool_size"] % 2 == 0:
            raise ModelFileError(f"network.skip_pool_size {network['skip_pool_size']} is even: the skip's max-pool "
                                 "keeps the size only with an odd window")
        bottleneck = network["base_channels"] * 2 ** (network["depth"] - 1)
        if bottleneck > MAX_BOTTLENECK_CHANNELS:
            raise ModelFileError(f"network base_channels {network['base_channels']} and depth {network['depth']} make "
                                 f"{bottleneck} bottleneck channels (at most {MAX_BOTTLENECK_CHANNELS})")
        defaults = {f.name: f.default for f in fields(PreprocessConfig) if f.name != "working_spacing_mm"}
        preprocess = PreprocessConfig(**_settings("preprocess", data.get("preprocess"), PREPROCESS_RANGES, defaults,
                                                  {"working_spacing_mm": " mm", "default_spacing_mm": " mm",
                                                   "margin_mm": " mm"}))
        if "tile_size" not in data:
            raise ModelFileError("tile_size is missing")
        tile = _number("tile_size", data["tile_size"], *TILE_RANGE, " px")
        multiple = 2 ** (network["depth"] - 1)
        if tile % multiple:
            raise ModelFileError(f"tile_size {tile} is not a multiple of {multiple} (the network pools "
                                 f"{network['depth'] - 1} times by 2)")
        if "threshold" not in data:
            raise ModelFileError("threshold is missing")
        threshold = _number("threshold", data["threshold"], *THRESHOLD_RANGE)
        sha = data.get("weights_sha256")
        if sha is None and require_sha:
            raise ModelFileError("weights_sha256 is missing: nothing ties the card to its weights")
        if sha is not None and (not isinstance(sha, str) or not _SHA256_RE.match(sha)):
            raise ModelFileError(f"weights_sha256 {sha!r} is not a SHA-256 (64 hex digits)")
        if data.get("training") is not None and not isinstance(data["training"], dict):
            raise ModelFileError(f"training is {type(data['training']).__name__}, not an object")
        if data.get("parent") is not None and not isinstance(data["parent"], str):
            raise ModelFileError(f"parent is {type(data['parent']).__name__}, not a version")
        return cls(version, name, network, preprocess, tile, threshold, sha, data)


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


def pending_card_path(weights: Path) -> Path:
    """Where :func:`save_model` puts the new card while it writes the weights (``.NAME.json.pending``)."""
    weights = Path(weights)
    return weights.with_name(f".{card_path(weights).name}.pending")


def save_model(net: BCirUNet, card: dict, weights_path: str | Path) -> Path:
    """Write ``NAME.safetensors`` and ``NAME.json`` (with the weights' SHA-256) as a pair a reader never sees
    mismatched: the new card under its pending name, then the weights, then the card renamed into place, each
    step atomic. Refuses (ModelFileError) a card the loader would refuse."""
    weights_path = Path(weights_path)
    if weights_path.suffix != ".safetensors":
        raise ModelFileError("model files are saved as .safetensors")
    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    data = save_safetensors(state, metadata={"format": "pt", "model_version": str(card.get("model_version"))})
    card = dict(card, weights_file=weights_path.name, weights_sha256=hashlib.sha256(data).hexdigest())
    try:
        ModelCard.parse(card)
    except ModelFileError as exc:
        raise ModelFileError(f"model card for {weights_path.name} not written: {exc}") from None
    pending = pending_card_path(weights_path)
    atomic_write_json(pending, card, indent=2)  # 1. the new card beside the old pair: a reader still reads the old
    with held_lock(pending):  # settle_pending_cards leaves a card alone while its writer is here
        atomic_write_bytes(weights_path, data)  # 2. the weights: a reader pairs them with the pending card
        os.replace(pending, card_path(weights_path))  # 3. the card
    fsync_dir(weights_path.parent)
    return weights_path


def settle_pending_cards(folder: str | Path, *, older_than: float = STALE_PART_S) -> list[Path]:
    """Finish what a writer killed inside :func:`save_model` left in ``folder``: a pending card whose weights were
    written becomes the card; one whose weights never were is removed. Cards a live writer holds are left alone.
    Returns the pending cards dealt with."""
    done = []
    try:
        pendings = [p for p in Path(folder).iterdir() if p.name.startswith(".") and p.name.endswith(".json.pending")]
    except OSError:
        return done
    for pending in pendings:
        if not is_stale(pending, older_than=older_than):
            continue
        weights = pending.with_name(pending.name[1:-len(".json.pending")] + ".safetensors")
        try:
            card = json.loads(pending.read_text())
            matches = weights.is_file() and isinstance(card, dict) and card.get("weights_sha256") == _sha256(weights)
            if matches:
                os.replace(pending, card_path(weights))
            else:
                pending.unlink()
        except (OSError, ValueError):
            continue
        done.append(pending)
    if done:
        fsync_dir(folder)
    return done


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


def _parse_card_file(path: Path, *, require_sha: bool = False) -> ModelCard:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"model card {path.name} is unreadable ({' '.join(str(exc).split())})") from None
    try:
        return ModelCard.parse(data, require_sha=require_sha)
    except ModelFileError as exc:
        raise ModelFileError(f"model card {path.name}: {exc}") from None


def _pending_match(weights: Path, sha: str) -> ModelCard | None:
    """The pending card beside ``weights`` when it is whole, valid and made for exactly these weights."""
    try:
        card = _parse_card_file(pending_card_path(weights))
    except (FileNotFoundError, ModelFileError):
        return None
    return card if card.weights_sha256 == sha else None


def read_model_card(weights_path: str | Path, *, verify: bool = False, require_sha: bool = False) -> ModelCard:
    """The checked card of ``weights_path``. With ``verify`` (or while a pending card lies beside it), the card
    whose SHA-256 is the weights': the pending one when :func:`save_model` is between the weights and the card,
    or was killed there. ModelFileError with one line: no card, a card against its schema, an incomplete pair
    (being written or interrupted), or weights and card that were mixed up."""
    weights = Path(weights_path)
    if not verify and not pending_card_path(weights).exists():
        try:
            return _parse_card_file(card_path(weights), require_sha=require_sha)
        except FileNotFoundError:
            raise ModelFileError(f"{weights.name} has no model card ({card_path(weights).name} missing beside it)") from None
    return _read_pair(weights, require_sha=require_sha, keep_bytes=False)[0]


def _read_pair(weights: Path, *, require_sha: bool = False, keep_bytes: bool = True) -> tuple[ModelCard, bytes | None]:
    """The weights (their bytes, read once, when ``keep_bytes``) and the card made for exactly them. A writer may
    move on while we read: the weights are read again until they hold still before a mismatch is called one."""
    path, pending = card_path(weights), pending_card_path(weights)
    previous = None
    for attempt in range(8):
        if attempt:
            time.sleep(0.02 * attempt)
        if keep_bytes:
            data = weights.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
        else:
            data, sha = None, _sha256(weights)
        newer = _pending_match(weights, sha)
        if newer is not None:
            return newer, data
        try:
            card = _parse_card_file(path, require_sha=require_sha)
        except FileNotFoundError:
            if pending.exists():
                previous = sha
                continue
            raise ModelFileError(f"{weights.name} has no model card ({path.name} missing beside it)") from None
        if card.weights_sha256 is None or card.weights_sha256 == sha:
            return card, data
        if sha == previous and not pending.exists():
            break  # the weights held still and no writer is under way: a real mismatch
        previous = sha
    if pending.exists():
        raise ModelFileError(f"{weights.name} and its card {path.name} are an incomplete pair (being written or "
                             "interrupted): try again in a moment; a run resumed in that folder completes it")
    raise ModelFileError(f"{weights.name} does not match its model card (SHA-256 differs): the files were mixed up")


def read_card(weights_path: Path) -> dict:
    """The card of ``weights_path`` as written, checked against its schema (see :func:`read_model_card`)."""
    return read_model_card(weights_path).data


def load_model(weights_path: str | Path, *, verify: bool = True) -> LoadedModel:
    """Load ``NAME.safetensors`` with its card. Raises :class:`ModelFileError` with a one-line reason."""
    path = Path(weights_path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} not found")
    _refuse_pickle(path)
    if verify:  # the bytes that were hashed are the bytes loaded: a writer replacing the file meanwhile cannot split them
        card, data = _read_pair(path)
    else:
        card, data = read_model_card(path), path.read_bytes()
    try:
        state = load_safetensors(data)
    except Exception as exc:  # safetensors raises its own error types
        raise ModelFileError(f"{path.name} is not a readable safetensors file ({' '.join(str(exc).split())})") from None
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelFileError(f"{path.name} holds weights that are not finite numbers (NaN or infinity in {key}): "
                                 "such a model finds nothing")
    net = BCirUNet(**card.network)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelFileError(f"{path.name} does not fit the {ARCHITECTURE} network of its card ({first})") from None
    net.eval()
    return LoadedModel(net=net, card=card.data, path=path)


def shareable_card(card: dict) -> dict:
    """``card`` as it may leave the site: the plain patient IDs of a card from an older version hashed with the
    site's key (model.data.split.shareable_training); a card already without IDs is returned unchanged."""
    from model.data.split import shareable_training

    training = card.get("training")
    if not isinstance(training, dict) or not ({"train_patients", "val_patients"} & set(training)):
        return card
    return {**card, "training": shareable_training(training)}


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
