"""The model card: its schema (ranges, schema version), parsed once into a typed ModelCard, and written back."""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

from model.data.preprocess import PreprocessConfig
from model.errors import ModelFileError
from model.nn.limits import TILE_PX, WORKING_SPACING_MM, tile_problem
from model.nn.network import ARCHITECTURE, ARCHITECTURE_VERSION, BCirUNet

CARD_FORMAT = "bcir-model-card/1"
# What this code reads and writes. A card without ``schema_version`` is schema 1 (every card written before the field
# existed); a card of a newer schema may hold fields this code would silently drop, so it is refused. Schema 2 added
# ``calibration``, ``operating_point`` and ``fine`` (the second pass of a two-pass model): an older version would have
# ignored them and served uncalibrated scores from the coarse pass alone, so it refuses such a card instead.
CARD_SCHEMA_VERSION = 2
NORMALIZATION = "histogram equalization over the breast region, float in [0, 1], background 0"
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
    "working_spacing_mm": (float, *WORKING_SPACING_MM),
    "default_spacing_mm": (float, 0.02, 0.2),  # DDSM's scanners 0.042-0.05 mm, detectors up to 0.1 mm
    "margin_mm": (float, 0.0, 50.0),
    "equalize_bins": (int, 16, 65536),
}
TILE_RANGE = (int, *TILE_PX)  # and a multiple of model.nn.limits.tile_multiple(depth)
THRESHOLD_RANGE = (float, 0.01, 0.99)
# p(malignant): the head's own probability, or calibrated by the card's ``calibration`` (temperature scaling on its
# logit); a lesion is called malignant at the card's ``operating_point`` threshold, else at 0.5 (what every card
# without one has always meant). Both are fitted on validation patients by model.evaluate.calibration.
DEFAULT_MALIGNANCY_THRESHOLD = 0.5
CALIBRATION_METHODS = ("temperature",)
TEMPERATURE_RANGE = (float, 0.01, 100.0)  # the search's bounds (model.evaluate.calibration)
OPERATING_THRESHOLD_RANGE = (float, 1e-6, 1 - 1e-6)
PROBABILITY_EPS = 1e-7  # the head's float32 sigmoid reaches 0 and 1: its logit is taken of p clipped this far inside
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_NETWORK_DEFAULTS = dict(BCirUNet.__init__.__kwdefaults__)
_CHECKED_CONSTANTS = ("format", "architecture", "architecture_version")  # checked by parse, written by to_json


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


def _schema_version(data: dict) -> int:
    value = data.get("schema_version", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelFileError(f"schema_version {value!r} is not a schema version (a whole number from 1)")
    if value > CARD_SCHEMA_VERSION:
        raise ModelFileError(f"schema_version {value} is newer than this version of B-Cir Review reads "
                             f"(up to {CARD_SCHEMA_VERSION}): update B-Cir Review to use this model")
    return value


def _typed(data: dict, types: dict[str, tuple[type, ...]]) -> tuple[dict, dict]:
    """(the keys of ``data`` whose value has their expected type, the rest as written). Nothing is dropped: a key an
    older version wrote with another type (or null) stays in the rest and is written back unchanged."""
    known = {k: v for k, v in data.items() if k in types and isinstance(v, types[k]) and not isinstance(v, bool)}
    return known, {k: v for k, v in data.items() if k not in known}


@dataclass(frozen=True)
class TrainingRecord:
    """A card's ``training`` section: what the model was trained on and how it did. None: not in the card (or of
    another type, kept in ``rest``). ``rest`` holds everything else as written (world_size; an older card's
    ``train_patients``/``val_patients``)."""

    data: str | None = None  # what it was trained on, in words
    date: str | None = None
    data_fingerprint: str | None = None
    patients: dict | None = None  # the split as model.data.split records it (hashes, counts, digest)
    config: dict | None = None  # the TrainConfig it was trained with
    data_report: dict | None = None
    metrics: dict | None = None  # the training loop's validation figures
    history: list | None = None
    held_out_evaluation: dict | None = None  # bcir eval's figures, when the model was bundled
    rest: dict = field(default_factory=dict)

    _TYPES = {"data": (str,), "date": (str,), "data_fingerprint": (str,), "patients": (dict,), "config": (dict,),
              "data_report": (dict,), "metrics": (dict,), "history": (list,), "held_out_evaluation": (dict,)}

    @classmethod
    def parse(cls, data: dict) -> "TrainingRecord":
        known, rest = _typed(data, cls._TYPES)
        return cls(**known, rest=rest)

    def to_json(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "rest" and getattr(self, f.name) is not None}
        return {**out, **self.rest}


def _fraction_or_none(name: str, value) -> float | None:
    return None if value is None else _number(name, value, float, 0.0, 1.0)


def _fitted_on(name: str, value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ModelFileError(f"{name}.fitted_on is {type(value).__name__}, not an object")
    return dict(value)


def apply_temperature(p: float, temperature: float) -> float:
    """sigmoid(logit(p) / temperature), with p clipped to [PROBABILITY_EPS, 1 - PROBABILITY_EPS] first."""
    p = min(max(float(p), PROBABILITY_EPS), 1.0 - PROBABILITY_EPS)
    z = math.log(p / (1.0 - p)) / temperature
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


@dataclass(frozen=True)
class Calibration:
    """A card's ``calibration``: p(malignant) as served is sigmoid(logit(p of the head) / ``temperature``).
    ``fitted_on`` says on which patients (model.evaluate.calibration writes it); the ECEs are those measured there,
    before and after. ``rest`` keeps other keys as written."""

    method: str
    temperature: float
    fitted_on: dict = field(default_factory=dict)
    ece_before: float | None = None
    ece_after: float | None = None
    rest: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, data) -> "Calibration":
        if not isinstance(data, dict):
            raise ModelFileError(f"calibration is {type(data).__name__}, not an object")
        method = data.get("method")
        if method not in CALIBRATION_METHODS:
            raise ModelFileError(f"calibration.method {method!r} is not one this version applies "
                                 f"({', '.join(CALIBRATION_METHODS)})")
        if "temperature" not in data:
            raise ModelFileError("calibration.temperature is missing")
        known = ("method", "temperature", "fitted_on", "ece_before", "ece_after")
        return cls(method, _number("calibration.temperature", data["temperature"], *TEMPERATURE_RANGE),
                   _fitted_on("calibration", data.get("fitted_on")),
                   _fraction_or_none("calibration.ece_before", data.get("ece_before")),
                   _fraction_or_none("calibration.ece_after", data.get("ece_after")),
                   {k: v for k, v in data.items() if k not in known})

    def apply(self, p: float) -> float:
        return apply_temperature(p, self.temperature)

    def to_json(self) -> dict:
        return {"method": self.method, "temperature": self.temperature, "fitted_on": dict(self.fitted_on),
                "ece_before": self.ece_before, "ece_after": self.ece_after, **self.rest}


@dataclass(frozen=True)
class OperatingPoint:
    """A card's ``operating_point``: a lesion is called malignant at p(malignant) >= ``threshold`` (on the scale the
    card serves: calibrated when the card has a calibration). ``rule`` says how it was chosen, ``sensitivity`` and
    ``specificity`` what it gave on the patients of ``fitted_on``."""

    threshold: float
    rule: str
    sensitivity: float | None = None
    specificity: float | None = None
    fitted_on: dict = field(default_factory=dict)
    rest: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, data) -> "OperatingPoint":
        if not isinstance(data, dict):
            raise ModelFileError(f"operating_point is {type(data).__name__}, not an object")
        if "threshold" not in data:
            raise ModelFileError("operating_point.threshold is missing")
        rule = data.get("rule", "")
        if not isinstance(rule, str):
            raise ModelFileError(f"operating_point.rule is {type(rule).__name__}, not text")
        known = ("threshold", "rule", "sensitivity", "specificity", "fitted_on")
        return cls(_number("operating_point.threshold", data["threshold"], *OPERATING_THRESHOLD_RANGE), rule,
                   _fraction_or_none("operating_point.sensitivity", data.get("sensitivity")),
                   _fraction_or_none("operating_point.specificity", data.get("specificity")),
                   _fitted_on("operating_point", data.get("fitted_on")),
                   {k: v for k, v in data.items() if k not in known})

    def to_json(self) -> dict:
        return {"threshold": self.threshold, "rule": self.rule, "sensitivity": self.sensitivity,
                "specificity": self.specificity, "fitted_on": dict(self.fitted_on), **self.rest}


@dataclass(frozen=True)
class FinePart:
    """A card's ``fine``: the second pass of a two-pass model. The card's own weights are the coarse pass (the whole
    breast at its working spacing proposes candidates); ``weights_file``, beside them, is the fine pass (an ROI
    centred on each candidate at a fine spacing refines the mask and gives p(malignant)), with its own card, tied to
    this one by ``weights_sha256``. The two are one model: one version, loaded, registered and rolled back together."""

    weights_file: str
    weights_sha256: str

    @classmethod
    def parse(cls, data) -> "FinePart":
        if not isinstance(data, dict):
            raise ModelFileError(f"fine is {type(data).__name__}, not an object")
        name, sha = data.get("weights_file"), data.get("weights_sha256")
        if not isinstance(name, str) or not name.endswith(".safetensors") or "/" in name or "\\" in name or name.startswith("."):
            raise ModelFileError(f"fine.weights_file {name!r} is not the name of a .safetensors file beside the card")
        if not isinstance(sha, str) or not _SHA256_RE.match(sha):
            raise ModelFileError(f"fine.weights_sha256 {sha!r} is not a SHA-256 (64 hex digits)")
        return cls(name, sha)

    def to_json(self) -> dict:
        return {"weights_file": self.weights_file, "weights_sha256": self.weights_sha256}


@dataclass(frozen=True)
class ModelCard:
    """A model card checked against its schema, parsed once. The fields code reads are typed; ``data`` holds the
    rest as written (normalization, source_run, keys of other versions), so :meth:`to_json` loses nothing.
    :meth:`parse` raises :class:`ModelFileError` with a one-line reason."""

    version: str
    name: str
    network: dict
    preprocess: PreprocessConfig
    tile_size: int
    threshold: float
    weights_sha256: str | None = None
    training: TrainingRecord | None = None
    parent: str | None = None
    created: str | None = None
    intended_use: str | None = None
    weights_file: str | None = None
    schema_version: int = CARD_SCHEMA_VERSION
    calibration: Calibration | None = None
    operating_point: OperatingPoint | None = None
    fine: FinePart | None = None
    data: dict = field(default_factory=dict)

    _OPTIONAL_TYPES = {"created": (str,), "intended_use": (str,), "weights_file": (str,)}

    @classmethod
    def parse(cls, data, *, require_sha: bool = False) -> "ModelCard":
        if not isinstance(data, Mapping):  # the card as read from JSON: an object
            raise ModelFileError(f"the card is a JSON {type(data).__name__}, not an object")
        data = dict(data)
        if data.get("format") != CARD_FORMAT or data.get("architecture") != ARCHITECTURE:
            raise ModelFileError(f"not a {ARCHITECTURE} model card (format {data.get('format')!r}, architecture "
                                 f"{data.get('architecture')!r})")
        if str(data.get("architecture_version")) != ARCHITECTURE_VERSION:
            raise ModelFileError(f"architecture_version {data.get('architecture_version')!r} is not "
                                 f"{ARCHITECTURE_VERSION!r}, the only one this version reads")
        schema = _schema_version(data)
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
        problem = tile_problem(tile, network["depth"])
        if problem:
            raise ModelFileError(f"tile_size {problem}")
        if "threshold" not in data:
            raise ModelFileError("threshold is missing")
        threshold = _number("threshold", data["threshold"], *THRESHOLD_RANGE)
        sha = data.get("weights_sha256")
        if sha is None and require_sha:
            raise ModelFileError("weights_sha256 is missing: nothing ties the card to its weights")
        if sha is not None and (not isinstance(sha, str) or not _SHA256_RE.match(sha)):
            raise ModelFileError(f"weights_sha256 {sha!r} is not a SHA-256 (64 hex digits)")
        training = data.get("training")
        if training is not None and not isinstance(training, dict):
            raise ModelFileError(f"training is {type(training).__name__}, not an object")
        parent = data.get("parent")
        if parent is not None and not isinstance(parent, str):
            raise ModelFileError(f"parent is {type(parent).__name__}, not a version")
        calibration = Calibration.parse(data["calibration"]) if data.get("calibration") is not None else None
        operating_point = (OperatingPoint.parse(data["operating_point"]) if data.get("operating_point") is not None
                           else None)
        fine = FinePart.parse(data["fine"]) if data.get("fine") is not None else None
        parsed = {"schema_version", "model_version", "name", "network", "preprocess", "tile_size", "threshold",
                  "weights_sha256", "parent", "calibration", "operating_point", "fine", *_CHECKED_CONSTANTS}
        optional, rest = _typed({k: v for k, v in data.items() if k not in parsed and k != "training"},
                                cls._OPTIONAL_TYPES)
        for key in ("training", "parent", "weights_sha256", "calibration", "operating_point", "fine"):
            if key in data and data[key] is None:
                rest[key] = None  # written as null: written back so
        return cls(version, name, network, preprocess, tile, threshold, sha,
                   TrainingRecord.parse(training) if training is not None else None, parent,
                   schema_version=schema, calibration=calibration, operating_point=operating_point, fine=fine, data=rest,
                   **optional)

    def to_json(self) -> dict:
        """The card as written to ``NAME.json``: the typed fields, then every other key it was read with."""
        out = {"format": CARD_FORMAT, "schema_version": self.schema_version, "name": self.name,
               "model_version": self.version, "architecture": ARCHITECTURE,
               "architecture_version": ARCHITECTURE_VERSION, "network": dict(self.network),
               "preprocess": self.preprocess.to_dict(), "tile_size": self.tile_size, "threshold": self.threshold}
        if self.training is not None:
            out["training"] = self.training.to_json()
        for key in ("parent", "created", "intended_use", "weights_file", "weights_sha256"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        for key in ("calibration", "operating_point", "fine"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key).to_json()
        # a key read as null stays null, unless it was set since (replace(card, parent=...))
        return {**out, **{k: v for k, v in self.data.items() if k not in out}}

    def p_malignant(self, p: float) -> float:
        """The head's p(malignant) as this card serves it: calibrated when the card has a calibration, else as is."""
        return self.calibration.apply(p) if self.calibration is not None else float(p)

    @property
    def malignancy_threshold(self) -> float:
        """p(malignant) at or above which a lesion is called malignant: the operating point's, else 0.5."""
        return self.operating_point.threshold if self.operating_point is not None else DEFAULT_MALIGNANCY_THRESHOLD

    def shareable(self) -> "ModelCard":
        """This card as it may leave the site: the plain patient IDs of a card from an older version hashed with
        the site's key (model.data.split.shareable_training); a card already without IDs is returned unchanged."""
        from model.data.split import shareable_training

        if self.training is None or not ({"train_patients", "val_patients"} & set(self.training.rest)):
            return self
        return replace(self, training=TrainingRecord.parse(shareable_training(self.training.to_json())))


def new_card(net: BCirUNet, *, preprocess: PreprocessConfig = PreprocessConfig(), tile_size: int = 1024,
             threshold: float = 0.5, training: dict | None = None, parent: str | None = None,
             version: str | None = None, name: str = "B-Cir U-Net") -> ModelCard:
    """A model card for ``net`` of the current schema; ``model_version`` is made unique from the date when not
    given. Checked as a card read from a file is (ModelFileError)."""
    now = _dt.datetime.now(_dt.timezone.utc)
    return ModelCard.parse({
        "format": CARD_FORMAT,
        "schema_version": CARD_SCHEMA_VERSION,
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
    })


__all__ = ["CARD_FORMAT", "CARD_SCHEMA_VERSION", "DEFAULT_MALIGNANCY_THRESHOLD", "Calibration", "FinePart", "ModelCard",
           "OperatingPoint", "TrainingRecord", "VERSION_RE", "apply_temperature", "new_card"]
