"""Model files: safetensors weights plus a JSON model card. Never a pickle.

A model is two files side by side, ``NAME.safetensors`` and ``NAME.json``. The
card says what the weights are (architecture and version, network settings),
how to feed them (working spacing, tile size, normalisation, threshold), where
they come from (training data, metrics, date, parent model), and carries the
SHA-256 of the weights file, so a card never describes other weights than its own.

Every card is checked against its schema (:class:`model.nn.card.ModelCard`) before anything is
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

import hashlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from model.errors import ModelFileError
from model.fileio import (STALE_PART_S, UnreadableJson, atomic_write_bytes, atomic_write_json, fsync_dir, held_lock, is_stale,
                          read_json_object)
from model.nn.card import CARD_SCHEMA_VERSION, FinePart, ModelCard, new_card
from model.nn.network import ARCHITECTURE, BCirUNet
from model.data.preprocess import PreprocessConfig

PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar")
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "resources" / "models"


@dataclass
class LoadedModel:
    net: BCirUNet
    card: ModelCard
    path: Path | None
    fine: "LoadedModel | None" = None  # a two-pass model's second pass (its card's ``fine``), loaded with it

    @property
    def two_pass(self) -> bool:
        return self.fine is not None

    @property
    def scoring(self) -> "LoadedModel":
        """The part whose head gives p(malignant), with its calibration and operating point: the fine pass of a
        two-pass model, else the model itself."""
        return self.fine if self.fine is not None else self

    @property
    def version(self) -> str:
        return self.card.version

    @property
    def preprocess(self) -> PreprocessConfig:
        return self.card.preprocess

    @property
    def threshold(self) -> float:
        return self.card.threshold

    @property
    def tile_size(self) -> int:
        return self.card.tile_size


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def card_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def pending_card_path(weights: Path) -> Path:
    """Where :func:`save_model` puts the new card while it writes the weights (``.NAME.json.pending``)."""
    weights = Path(weights)
    return weights.with_name(f".{card_path(weights).name}.pending")


def save_model(net: BCirUNet, card: ModelCard | Mapping, weights_path: str | Path) -> Path:
    """Write ``NAME.safetensors`` and ``NAME.json`` (with the weights' SHA-256 and the current schema version) as a
    pair a reader never sees mismatched: the new card under its pending name, then the weights, then the card
    renamed into place, each step atomic. ``card`` is a ModelCard or the fields of one as JSON; refuses
    (ModelFileError) a card the loader would refuse."""
    weights_path = Path(weights_path)
    if weights_path.suffix != ".safetensors":
        raise ModelFileError("model files are saved as .safetensors")
    try:
        card = ModelCard.parse(card.to_json() if isinstance(card, ModelCard) else card)  # checked as the loader will
    except ModelFileError as exc:
        raise ModelFileError(f"model card for {weights_path.name} not written: {exc}") from None
    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    data = save_safetensors(state, metadata={"format": "pt", "model_version": card.version})
    card = replace(card, weights_file=weights_path.name, weights_sha256=hashlib.sha256(data).hexdigest(),
                   schema_version=CARD_SCHEMA_VERSION)
    pending = pending_card_path(weights_path)
    atomic_write_json(pending, card.to_json(), indent=2)  # 1. the new card beside the old pair: a reader still reads the old
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
            written = json.loads(pending.read_text())  # as JSON: a pending card a crash cut short is removed, not parsed
            matches = (weights.is_file() and isinstance(written, dict)
                       and written.get("weights_sha256") == _sha256(weights))
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
        data = read_json_object(path)  # FileNotFoundError as is: read_card tells a pending card from none
    except UnreadableJson as exc:
        raise ModelFileError(f"model card {path.name} {exc.reason}") from None
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


def read_card(weights_path: str | Path, *, verify: bool = False, require_sha: bool = False) -> ModelCard:
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


def fine_weights_path(weights_path: str | Path, card: ModelCard) -> Path | None:
    """Where the fine pass of the two-pass model ``weights_path`` (with ``card``) lies: beside it, by the card's name."""
    return Path(weights_path).with_name(card.fine.weights_file) if card.fine is not None else None


def load_model(weights_path: str | Path, *, verify: bool = True) -> LoadedModel:
    """Load ``NAME.safetensors`` with its card, and a two-pass model's fine pass with its own card (the card's
    ``fine``, checked against its SHA-256). Raises :class:`ModelFileError` with a one-line reason."""
    model = _load_one(weights_path, verify=verify)
    fine_path = fine_weights_path(model.path, model.card)
    if fine_path is None:
        return model
    if not fine_path.is_file():
        raise ModelFileError(f"{model.path.name} is a two-pass model whose fine pass {fine_path.name} is missing beside it")
    fine = _load_one(fine_path, verify=verify)
    if fine.card.weights_sha256 != model.card.fine.weights_sha256:
        raise ModelFileError(f"{fine_path.name} is not the fine pass {model.path.name} was paired with (SHA-256 "
                             "differs): the files were mixed up")
    if fine.card.fine is not None:
        raise ModelFileError(f"{fine_path.name}, the fine pass of {model.path.name}, names a fine pass of its own")
    model.fine = fine
    return model


def _load_one(weights_path: str | Path, *, verify: bool = True) -> LoadedModel:
    path = Path(weights_path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} not found")
    _refuse_pickle(path)
    if verify:  # the bytes that were hashed are the bytes loaded: a writer replacing the file meanwhile cannot split them
        card, data = _read_pair(path)
    else:
        card, data = read_card(path), path.read_bytes()
    # what a file that is not safetensors raises: SafetensorError (a malformed header or offsets), KeyError (a dtype
    # this torch build has no type for, 'F4'), ValueError or RuntimeError (torch refusing to make a tensor of the bytes)
    try:
        state = load_safetensors(data)
    except (SafetensorError, KeyError, ValueError, RuntimeError) as exc:
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
    return LoadedModel(net=net, card=card, path=path)


def shareable_card(card: ModelCard) -> dict:
    """``card`` as JSON as it may leave the site: the plain patient IDs of a card from an older version hashed with
    the site's key (:meth:`ModelCard.shareable`)."""
    return card.shareable().to_json()


def random_model(seed: int = 0, **card_fields) -> LoadedModel:
    """A randomly initialised network with a card (tests and benchmarks before trained weights exist)."""
    torch.manual_seed(seed)
    net = BCirUNet().eval()
    card = new_card(net, version=card_fields.pop("version", f"random-{seed}"), **card_fields)
    return LoadedModel(net=net, card=card, path=None)


FINE_SUFFIX = ".fine.safetensors"  # NAME.fine.safetensors: the fine pass paired with NAME.safetensors (save_pair)


def fine_name_for(weights_path: str | Path) -> str:
    """The file name :func:`save_pair` gives the fine pass of ``NAME.safetensors``: ``NAME.fine.safetensors``."""
    return Path(weights_path).name[: -len(".safetensors")] + FINE_SUFFIX


def save_pair(coarse: LoadedModel, fine: LoadedModel, weights_path: str | Path, *, version: str | None = None,
              name: str | None = None) -> Path:
    """Write a two-pass model: ``NAME.fine.safetensors`` (the fine pass, with its card) first, then
    ``NAME.safetensors`` (the coarse pass) with a card whose ``fine`` names it by file and SHA-256. Both cards
    carry ``version`` (default: the coarse card's). A reader between the two steps finds the old coarse card's
    fine SHA-256 mismatched and is told the pair is being written; it never runs a coarse pass with a foreign
    fine one. ModelFileError when either part is itself a pair or the cards are refused."""
    weights_path = Path(weights_path)
    if coarse.fine is not None or fine.fine is not None:
        raise ModelFileError("a two-pass model's parts are single models: pair the coarse and fine parts themselves")
    version = version or coarse.card.version
    fine_path = weights_path.with_name(fine_name_for(weights_path))
    fine_card = replace(fine.card, version=version, name=name or fine.card.name, fine=None,
                        data={**fine.card.data, "pass": "fine"})
    save_model(fine.net, fine_card, fine_path)
    fine_sha = read_card(fine_path).weights_sha256
    coarse_card = replace(coarse.card, version=version, name=name or coarse.card.name,
                          fine=FinePart(fine_path.name, fine_sha), data={**coarse.card.data, "pass": "coarse"})
    return save_model(coarse.net, coarse_card, weights_path)


def bundled_model_path() -> Path | None:
    """The demo model shipped in resources/models, when there is one (a two-pass model's fine part is not one)."""
    candidates = sorted(p for p in BUNDLED_DIR.glob("*.safetensors") if not p.name.endswith(FINE_SUFFIX)) \
        if BUNDLED_DIR.is_dir() else []
    return candidates[0] if candidates else None


def default_model_path() -> Path:
    path = bundled_model_path()
    if path is None:
        raise ModelFileError("no model given and none bundled in resources/models: pass --weights NAME.safetensors")
    return path
