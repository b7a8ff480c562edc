"""Patient-level train/validation split: seeded, stratified by pathology, across every CSV; and how files that
leave the site record it without patient IDs.

CBIS-DDSM has patients in two subsets (Mass-Training and Calc-Test, say), so
splitting by image or by CSV leaks patients; the paper insists on a split with
no leak. A patient is malignant when any of their abnormalities is.

Model cards, ``split.json``, registry entries and the safety gate's
``comparison.json`` are files a site copies to others, so they never hold a
patient ID. They hold, per patient, an HMAC-SHA256 under the **site key**
(``site-key`` in the user data folder, 32 random bytes made on first need, never
copied anywhere) with the key's id, so the same site can still tell which of a
folder's patients a model trained on (a held-out folder checked against a
model's training patients, a run resumed). Without the key, a hash cannot be
turned back into an ID, nor an ID guessed from it. Beside the hashes, a
**split digest** (an HMAC of the two sorted ID lists under a key made from the
training folder's own file list, never stored) lets anyone who holds the very
same folder check a split reproduced from the recorded seed: that is how a
card made at another site (the bundled demo model) is checked. Files written by
older versions hold plain IDs; they are read as they are and hashed when copied
on (:func:`shareable_training`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from model.errors import DataError
from model.fileio import atomic_write_json, fsync_dir, user_data_dir

PATIENT_SCHEME = "bcir-patient-hmac-sha256/1"
SITE_KEY_NAME = "site-key"
_HASH_HEX = 20  # 80 bits: no collision among any site's patients


@dataclass(frozen=True)
class PatientSplit:
    train: tuple[str, ...]
    val: tuple[str, ...]
    seed: int
    val_fraction: float

    def to_json(self) -> dict:
        """With the plain IDs: for memory and tests only; files get :meth:`shareable_json`."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> "PatientSplit":
        """A split with plain IDs (:meth:`to_json`, or a ``split.json`` of an older version)."""
        return cls(tuple(data["train"]), tuple(data["val"]), int(data["seed"]), float(data["val_fraction"]))

    def shareable_json(self, index, key: "SiteKey") -> dict:
        """``split.json``: the hashed patients (:func:`patients_section`), the seed and the fraction."""
        return {**patients_section(self, index, key), "seed": self.seed, "val_fraction": self.val_fraction}

    def save(self, path: Path, index, key: "SiteKey | None" = None) -> None:
        atomic_write_json(path, self.shareable_json(index, key or site_key()))


def split_patients(patient_labels: dict[str, bool], *, val_fraction: float = 0.3, seed: int = 0) -> PatientSplit:
    """70/30 (by default) per stratum (malignant / not), so both parts keep the pathology mix.

    Each stratum with at least two patients gives at least one to each part.
    """
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in (True, False):
        group = sorted(p for p, malignant in patient_labels.items() if malignant == label)
        rng.shuffle(group)
        n_val = int(round(len(group) * val_fraction))
        if len(group) >= 2:
            n_val = min(max(n_val, 1), len(group) - 1)
        val += group[:n_val]
        train += group[n_val:]
    return PatientSplit(tuple(sorted(train)), tuple(sorted(val)), seed, val_fraction)


def labels_of(images) -> dict[str, bool]:
    """Patient -> malignant (any abnormality of any of their images), the labels :func:`split_patients` stratifies."""
    labels: dict[str, bool] = {}
    for image in images:
        labels[image.patient_id] = labels.get(image.patient_id, False) or any(a.malignant for a in image.abnormalities)
    return labels


def reproduce_split(index, config: dict) -> PatientSplit:
    """The split ``model.train.loop.train`` makes of ``index`` with these settings (views, val_fraction, split_seed)."""
    from model.data.selection import select_images

    images, _ = select_images(index, tuple(config.get("views") or ("CC",)))
    return split_patients(labels_of(images), val_fraction=float(config.get("val_fraction", 0.3)),
                          seed=int(config.get("split_seed", 0)))


# ---------------------------------------------------------------------------
# patient IDs in shareable files


class SiteKey:
    """This site's secret for patient hashes; ``id`` names it in the files (a hash of it, not it)."""

    def __init__(self, secret: bytes):
        if len(secret) < 16:
            raise DataError("a site key needs at least 16 bytes")
        self._secret = bytes(secret)
        self.id = hashlib.sha256(b"bcir-site-key-id/1\0" + self._secret).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"SiteKey(id={self.id!r})"

    def hash(self, patient_id: str) -> str:
        data = str(patient_id).encode("utf-8", "surrogateescape")
        return hmac.new(self._secret, data, hashlib.sha256).hexdigest()[:_HASH_HEX]

    def hashes(self, patient_ids: Iterable[str]) -> list[str]:
        return sorted(self.hash(p) for p in patient_ids)


def site_key_path() -> Path:
    return user_data_dir() / SITE_KEY_NAME


def site_key(*, create: bool = True) -> SiteKey | None:
    """The site's key (``site-key`` in the user data folder), made on first need; None when there is none and
    ``create`` is off. Two processes making it at once end with the same key (the file is linked into place
    whole, and the loser reads the winner's). DataError with one line when the file is not a key."""
    path = site_key_path()
    for _ in range(2):
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            if not create:
                return None
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"the site key {path} is unreadable ({exc})") from None
        else:
            try:
                return SiteKey(bytes.fromhex(text))
            except (ValueError, DataError):  # not hex digits (bytes.fromhex), or too short for a key (SiteKey)
                raise DataError(f"the site key {path} is damaged: restore it from a backup (without it this site "
                                "cannot tell its patients in its own models' cards)") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(os.urandom(32).hex() + "\n")
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # never replaces a key another process made first
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)
    raise DataError(f"the site key {path} could not be made")


def index_pairs(index) -> list[tuple[str, str]]:
    """The sorted (patient ID, image path relative to the index root) pairs of an index: what
    ``model.evaluate.evaluation.dataset_fingerprint`` and :func:`folder_secret` hash."""
    root = Path(index.root)
    pairs = set()
    for image in index.images:
        path = Path(image.path)
        try:
            rel = path.relative_to(root).as_posix()
        except ValueError:
            rel = path.as_posix()
        pairs.add((str(image.patient_id), rel))
    return sorted(pairs)


def _pair_bytes(patient: str, rel: str) -> bytes:
    # surrogateescape: a name that is not UTF-8 hashes as its bytes; a UTF-8 one exactly as before
    return patient.encode("utf-8", "surrogateescape") + b"\x00" + rel.encode("utf-8", "surrogateescape") + b"\n"


def folder_secret(index) -> bytes:
    """A key only a holder of the folder's full file list can make (never stored): it keys the split digest."""
    digest = hashlib.sha256(b"bcir-split-key/1\n")
    for patient, rel in index_pairs(index):
        digest.update(_pair_bytes(patient, rel))
    return digest.digest()


def split_digest(secret: bytes, train: Iterable[str], val: Iterable[str]) -> str:
    text = "train\n" + "\n".join(sorted(str(p) for p in train)) + "\nval\n" + "\n".join(sorted(str(p) for p in val))
    return hmac.new(secret, text.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:16]


def patients_section(split: PatientSplit, index, key: SiteKey) -> dict:
    """What a model card (``training.patients``) and ``split.json`` record of a split: hashes under the site key,
    the counts, and the split digest of the folder it was made on."""
    return {"scheme": PATIENT_SCHEME, "site": key.id, "train": key.hashes(split.train), "val": key.hashes(split.val),
            "train_count": len(split.train), "val_count": len(split.val),
            "split_digest": split_digest(folder_secret(index), split.train, split.val)}


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


@dataclass(frozen=True)
class RecordedSplit:
    """The training and validation patients a card or a ``split.json`` records: plain IDs (files of older
    versions), hashes under a site's key (this scheme), or only counts and a split digest (a shipped model)."""

    train: frozenset[str] | None
    val: frozenset[str] | None
    train_count: int | None
    val_count: int | None
    hashed: bool
    site: str | None
    digest: str | None

    @classmethod
    def from_card(cls, training: dict | None) -> "RecordedSplit":
        training = training if isinstance(training, dict) else {}
        section = training.get("patients")
        if isinstance(section, dict):
            return cls.from_section(section)
        return cls._plain(training.get("train_patients"), training.get("val_patients"))

    @classmethod
    def from_section(cls, section: dict) -> "RecordedSplit":
        """``training.patients`` of a card or a ``split.json``: hashed when it names the scheme, else plain lists."""
        if section.get("scheme") != PATIENT_SCHEME:
            return cls._plain(section.get("train"), section.get("val"))

        def names(value):
            return frozenset(str(v) for v in value) if isinstance(value, list) else None

        train, val = names(section.get("train")), names(section.get("val"))
        site = section.get("site") if isinstance(section.get("site"), str) else None
        return cls(train, val, _count(section.get("train_count")) if train is None else len(train),
                   _count(section.get("val_count")) if val is None else len(val), True, site,
                   section.get("split_digest") if isinstance(section.get("split_digest"), str) else None)

    @classmethod
    def _plain(cls, train, val) -> "RecordedSplit":
        train = frozenset(str(p) for p in train) if isinstance(train, list) else None
        val = frozenset(str(p) for p in val) if isinstance(val, list) else None
        return cls(train, val, len(train) if train is not None else None, len(val) if val is not None else None,
                   False, None, None)

    @property
    def names_training_patients(self) -> bool:
        """Whether any training patient is recorded at all (by ID, by hash or by count)."""
        return bool(self.train) or bool(self.train_count)

    def members(self, part: str, patient_ids: Iterable[str], key: SiteKey | None) -> set[str] | None:
        """Which of ``patient_ids`` are in ``part`` ("train" or "val"); None when this site cannot tell (hashes
        made under another site's key, or no list)."""
        names = self.train if part == "train" else self.val
        if names is None:
            return None
        if not self.hashed:
            return set(patient_ids) & names
        if key is None or key.id != self.site:
            return None
        return {p for p in patient_ids if key.hash(p) in names}


@dataclass(frozen=True)
class ResolvedSplit:
    """A recorded split read against a folder: its training and validation patients among the folder's, or None
    for both with ``why`` not."""

    train: set[str] | None
    val: set[str] | None
    how: str  # "ids" | "site key" | "reproduced" | "unknown"
    why: str = ""


def resolve_split(recorded: RecordedSplit, index, *, config: dict | None = None) -> ResolvedSplit:
    """The recorded split's patients among ``index``'s: by plain IDs (older files), by this site's key, or, when
    ``config`` (the card's training settings) is given and the split digest says so, by reproducing the split from
    its seed on this very folder."""
    present = {str(i.patient_id) for i in index.images}
    key = site_key(create=False) if recorded.hashed else None
    train, val = recorded.members("train", present, key), recorded.members("val", present, key)
    if train is not None:
        return ResolvedSplit(train, val, "site key" if recorded.hashed else "ids")
    if recorded.site and recorded.train is not None:
        why = "its patients were recorded under another site's key"
    else:
        why = "it records no patient list"
    if config is not None and recorded.digest:
        split = reproduce_split(index, config)
        if split_digest(folder_secret(index), split.train, split.val) == recorded.digest:
            return ResolvedSplit(set(split.train) & present, set(split.val) & present, "reproduced")
        why += ", and the split reproduced from its seed differs from the recorded one (the folder's labels or " \
               "the split rule changed)"
    elif recorded.digest:
        why += ", and this is not the folder it was made on"
    return ResolvedSplit(None, None, "unknown", why)


def load_split(path: Path, index, config: dict) -> PatientSplit:
    """A run's ``split.json`` as a split of ``index``'s patients (resume). DataError with one line when this site
    cannot read it and the split cannot be reproduced from its seed either."""
    import json

    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise DataError(f"{path} is not a split")
    return split_of_section(data, index, config, source=f"the split of this run ({path})")


def split_of_section(data: dict, index, config: dict, *, source: str = "the run's split") -> PatientSplit:
    """A run's recorded split (``split.json``'s content) as a split of ``index``'s patients: by this site's key, or
    reproduced from its seed and the run's ``config`` on this very folder. DataError with one line naming ``source``
    when neither works."""
    seed, fraction = int(data.get("seed", config.get("split_seed", 0))), float(data.get("val_fraction", config.get("val_fraction", 0.3)))
    resolved = resolve_split(RecordedSplit.from_section(data), index,
                             config={**config, "split_seed": seed, "val_fraction": fraction})
    if resolved.train is None:
        raise DataError(f"{source} cannot be read here: {resolved.why}")
    return PatientSplit(tuple(sorted(resolved.train)), tuple(sorted(resolved.val or ())), seed, fraction)


def shareable_training(training: dict | None, key: SiteKey | None = None) -> dict:
    """``training`` of a card without plain patient IDs: the lists of an older card (``train_patients``,
    ``val_patients``) become this site's hashes; a card already hashed is returned as it is."""
    training = dict(training) if isinstance(training, dict) else {}
    if "train_patients" not in training and "val_patients" not in training:
        return training
    recorded = RecordedSplit._plain(training.pop("train_patients", None), training.pop("val_patients", None))
    if not isinstance(training.get("patients"), dict):
        key = key or site_key()
        training["patients"] = {"scheme": PATIENT_SCHEME, "site": key.id,
                                "train": key.hashes(recorded.train or ()), "val": key.hashes(recorded.val or ()),
                                "train_count": recorded.train_count or 0, "val_count": recorded.val_count or 0}
    return training


__all__ = ["PATIENT_SCHEME", "PatientSplit", "RecordedSplit", "ResolvedSplit", "SiteKey", "folder_secret",
           "index_pairs", "labels_of", "load_split", "patients_section", "reproduce_split", "resolve_split",
           "shareable_training", "site_key", "split_digest", "split_of_section", "split_patients"]
