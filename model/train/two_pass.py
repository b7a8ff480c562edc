"""Training a two-pass model (issue 15): the coarse part, then the fine part, each a run of the training loop, written
as one pair.

A two-pass model is two B-Cir U-Nets, each with its own card (model.nn.weights.save_pair): the coarse part searches
the whole breast at a coarse working spacing, the fine part looks closer on a tile centred on each candidate at a fine
one. :func:`train_pair` trains them one after the other with :func:`model.train.loop.train`, on the same patients
(the same split settings), and writes them as one pair. The run folder::

    OUT/
      coarse/               the coarse part's run (the loop's out_dir: config, split, checkpoint, history, models)
      fine/                 the fine part's run
      two_pass.json         both parts' TrainConfig and the pair's time budget (a resumed run keeps them)
      split.json            the patients, as both parts split them (checked equal); data_report.json: the coarse part's
      history.json          both parts' epochs, each tagged with its "part" (what a retrain job shows)
      best.safetensors      the parts' best epochs by validation Dice, as one pair (best.fine.safetensors beside it)
      model.safetensors     the parts' final epochs, as one pair (model.fine.safetensors beside it)
      run.json              {"two_pass": true, "parts": each part's run.json, "seconds"}

Resuming (``resume=True``) skips a part that had finished (its run.json and final model are there) and resumes the
other from its last complete epoch, so a run killed during the fine part never trains the coarse part again. Each
part's card keeps its own ``training`` record (data, split, config, metrics, history); the pair's version is the
coarse part's.

Fine-tuning from a two-pass model (``init_weights`` naming one, :func:`part_configs`) starts the coarse part from its
coarse weights and the fine part from its fine weights, each at its own card's working spacing and tile. From a single
model, the coarse part starts from it and the fine part from scratch.

This module imports no torch until :func:`train_pair` runs: the job and the dialog read its layout.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from model.errors import ConfigError, DataError, ModelFileError
from model.fileio import UnreadableJson, atomic_copy, atomic_write_json, clean_stale_parts, read_json_object
from model.train.config import TrainConfig, TrainEvent, TrainResult

PARTS = ("coarse", "fine")
COARSE_SPACING_MM, COARSE_TILE = 0.4, 256  # the coarse pass's protocol (the bundled bcir-demo-v1's): the whole breast
FINE_SPACING_MM, FINE_TILE = 0.1, 1024  # the fine pass's: the paper's 1024 ROI at 0.1 mm
SETTINGS_NAME = "two_pass.json"
SPLIT_KEYS = ("views", "val_fraction", "split_seed")  # what both parts must share to split the patients alike


# ---------------------------------------------------------------------------
# reading a model's cards without torch


def _card_json(weights: str | Path) -> dict:
    """The JSON of ``weights``' card, read without torch (the card's checks need it: model.nn.weights.read_card)."""
    path = Path(weights).with_suffix(".json")
    try:
        return read_json_object(path)
    except FileNotFoundError:
        raise ModelFileError(f"{Path(weights).name} has no model card ({path.name} missing beside it)") from None
    except UnreadableJson as exc:
        raise ModelFileError(f"model card {path.name} {exc.reason}") from None


def fine_part_path(weights: str | Path | None) -> Path | None:
    """The fine part's weights beside ``weights`` when its card names one (a two-pass model), else None. Reads the
    card's JSON only; ModelFileError when the card cannot be read."""
    if not weights:
        return None
    fine = _card_json(weights).get("fine")
    if not isinstance(fine, dict) or not isinstance(fine.get("weights_file"), str):
        return None
    return Path(weights).with_name(fine["weights_file"])


def is_two_pass(weights: str | Path | None) -> bool:
    """True when ``weights`` is a two-pass model (its card names a fine part); False for a single model, or none."""
    return fine_part_path(weights) is not None


def _resolution(card: dict, name: str) -> tuple[float, int]:
    try:
        return float(card["preprocess"]["working_spacing_mm"]), int(card["tile_size"])
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(f"the card of {name} names no working spacing and tile") from None


def part_resolutions(weights: str | Path) -> dict[str, tuple[float, int]]:
    """Each part's (working spacing in mm, tile in px) of a two-pass model, from its cards; ModelFileError when
    ``weights`` is not one."""
    fine = fine_part_path(weights)
    if fine is None:
        raise ModelFileError(f"{Path(weights).name} is not a two-pass model (its card names no fine part)")
    return {"coarse": _resolution(_card_json(weights), Path(weights).name),
            "fine": _resolution(_card_json(fine), fine.name)}


def part_configs(config: TrainConfig, *, fine_spacing_mm: float | None = None,
                 fine_tile: int | None = None) -> tuple[TrainConfig, TrainConfig]:
    """The coarse and the fine part's TrainConfig for a two-pass run of ``config``: every setting shared, but the
    working spacing, the tile and the start point.

    ``config.init_weights`` a two-pass model: the coarse part starts from its coarse weights and the fine part from
    its fine weights, each at its own card's spacing and tile (``fine_spacing_mm``/``fine_tile`` other than the fine
    card's: ConfigError). Else the coarse part is ``config`` (from its ``init_weights``, if any) and the fine part
    starts from scratch at ``fine_spacing_mm`` (default 0.1) and ``fine_tile`` (default 1024)."""
    fine_path = fine_part_path(config.init_weights)
    if fine_path is not None:
        resolutions = part_resolutions(config.init_weights)
        (spacing, tile), (fine_spacing, fine_tile_kept) = resolutions["coarse"], resolutions["fine"]
        for option, given, kept, unit in (("fine_spacing_mm", fine_spacing_mm, fine_spacing, " mm"),
                                          ("fine_tile", fine_tile, fine_tile_kept, " px")):
            if given is not None and abs(float(given) - kept) > 1e-9:
                raise ConfigError(option, f"{given:g}{unit} differs from the fine part's {kept:g}{unit} of "
                                          f"{Path(config.init_weights).name}: fine-tuning keeps each part's working "
                                          "resolution")
        coarse = dataclasses.replace(config, working_spacing_mm=spacing, tile=tile)
        fine = dataclasses.replace(config, init_weights=str(fine_path), working_spacing_mm=fine_spacing,
                                   tile=fine_tile_kept)
        return coarse, fine
    try:
        fine = dataclasses.replace(config, init_weights=None,
                                   working_spacing_mm=FINE_SPACING_MM if fine_spacing_mm is None else fine_spacing_mm,
                                   tile=FINE_TILE if fine_tile is None else fine_tile)
    except ConfigError as exc:  # named as the fine part's setting
        raise ConfigError({"working_spacing_mm": "fine_spacing_mm", "tile": "fine_tile"}.get(exc.option, exc.option),
                          exc.problem) from None
    return config, fine


def budget_shares(coarse: TrainConfig, fine: TrainConfig) -> float:
    """The coarse part's share of a pair's time budget: its tile area over both (a step costs about the tile's
    pixels; both parts draw about as many tiles an epoch). The fine part gets what the coarse part leaves."""
    return coarse.tile ** 2 / (coarse.tile ** 2 + fine.tile ** 2)


# ---------------------------------------------------------------------------
# the run folder


def part_dir(run_dir: str | Path, part: str) -> Path:
    return Path(run_dir) / part


def is_two_pass_run(run_dir: str | Path) -> bool:
    return (Path(run_dir) / SETTINGS_NAME).is_file() or part_dir(run_dir, "coarse").is_dir()


def part_finished(folder: Path) -> bool:
    """The loop wrote this part's final model and run record."""
    return (folder / "run.json").is_file() and (folder / "model.safetensors").is_file()


def run_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint a resume of the run in ``run_dir`` continues from: the run's own, or for a two-pass run the
    part's under way (the fine part's once it has one, else the coarse part's)."""
    run_dir = Path(run_dir)
    if is_two_pass_run(run_dir):
        for part in reversed(PARTS):
            path = part_dir(run_dir, part) / "checkpoint.safetensors"
            if path.is_file():
                return path
    return run_dir / "checkpoint.safetensors"


def _read_list(path: Path) -> list:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def pair_history(run_dir: str | Path) -> list[dict]:
    """Both parts' complete epochs, the coarse part's first, each entry with its ``part``."""
    return [{**entry, "part": part} for part in PARTS
            for entry in _read_list(part_dir(run_dir, part) / "history.json") if isinstance(entry, dict)]


@dataclass
class PairResult:
    """What :func:`train_pair` did: the pair's models (None when cancelled), and each part's TrainResult."""

    run_dir: Path
    model_path: Path | None
    best_path: Path | None
    cancelled: bool
    parts: dict[str, TrainResult] = field(default_factory=dict)  # the parts that ran or had finished
    skipped: tuple[str, ...] = ()  # parts a resume found finished and did not train again
    history: list[dict] = field(default_factory=list)  # both parts' epochs, tagged with their part

    @property
    def epochs_done(self) -> int:
        return len(self.history)

    @property
    def stopped_early(self) -> bool:
        return any(r.stopped_early for r in self.parts.values())


def _finished_result(folder: Path) -> TrainResult:
    """A part a previous run finished, read back from its folder."""
    try:
        run = json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        run = {}
    history = _read_list(folder / "history.json")
    best = folder / "best.safetensors"
    return TrainResult(folder, folder / "model.safetensors", best if best.is_file() else None, len(history), history,
                       False, bool(run.get("stopped_early")), list(run.get("rank_weight_digests") or []))


def _same_patients(coarse: Path, fine: Path) -> None:
    """Both parts split the patients alike (the same views, fraction and seed on the same folder): checked, since the
    gate holds out the coarse part's validation patients for the pair."""
    def patients(path: Path) -> tuple:
        data = json.loads(path.read_text())
        return tuple(data.get("train") or ()), tuple(data.get("val") or ())

    if patients(coarse / "split.json") != patients(fine / "split.json"):
        raise DataError("the coarse and the fine part split the patients differently: the pair cannot be validated "
                        "on held-out patients (train both parts on the same folder with the same split settings)")


def _write_pair(coarse_weights: Path, fine_weights: Path, out: Path) -> Path:
    from model.nn.weights import load_model, save_pair

    coarse, fine = load_model(coarse_weights), load_model(fine_weights)
    return save_pair(coarse, fine, out)


# ---------------------------------------------------------------------------
# training


def train_pair(root: str | Path, out_dir: str | Path, coarse_config: TrainConfig, fine_config: TrainConfig, *,
               max_minutes: float | None = None, resume: bool = False,
               callback: Callable[[TrainEvent], None] | None = None, should_stop: Callable[[], bool] | None = None,
               cache_dir: str | Path | None = None) -> PairResult:
    """Train the coarse part into ``out_dir``/coarse, then the fine part into ``out_dir``/fine, and write them as one
    two-pass model (``model.safetensors`` and, when an epoch was validated, ``best.safetensors``, each with its
    ``.fine.safetensors`` beside it).

    Events are the loop's, each with its ``part``; a part's end is ``part_done`` and the pair's is ``done``.
    ``max_minutes``: the pair's time budget, shared by :func:`budget_shares` (else each config's own applies).
    ``resume``: continue the run in ``out_dir``, with its saved settings; a finished part is not trained again."""
    from model.nn.weights import settle_pending_cards
    from model.train.distributed import dist_env
    from model.train.loop import train

    out = Path(out_dir)
    emit = callback or (lambda e: None)
    is_main = dist_env()[0] == 0
    settings_path = out / SETTINGS_NAME
    if resume and settings_path.is_file():  # a resumed run keeps its settings, as the loop's parts do
        saved = json.loads(settings_path.read_text())
        coarse_config, fine_config = TrainConfig.from_json(saved["coarse"]), TrainConfig.from_json(saved["fine"])
        max_minutes = saved.get("max_minutes")
    differing = [k for k in SPLIT_KEYS if getattr(coarse_config, k) != getattr(fine_config, k)]
    if differing:
        raise ConfigError(differing[0], "differs between the coarse and the fine part: both parts must learn from "
                                        "the same patients")
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        clean_stale_parts(out)  # what a run killed mid-write left here (the parts' folders: the loop cleans them)
        settle_pending_cards(out)  # a pair a killed run left between its weights and its card
        atomic_write_json(settings_path, {"coarse": coarse_config.to_json(), "fine": fine_config.to_json(),
                                          "max_minutes": max_minutes})

    timer = time.perf_counter()
    parts: dict[str, TrainResult] = {}
    skipped: list[str] = []
    for part, config in (("coarse", coarse_config), ("fine", fine_config)):
        folder = part_dir(out, part)
        if resume and part_finished(folder):
            parts[part] = _finished_result(folder)
            skipped.append(part)
            emit(TrainEvent("prepare", part=part, message=f"resumed: the {part} part had finished "
                                                          f"({parts[part].epochs_done} epochs), not trained again"))
            continue
        if max_minutes and not (resume and (folder / "config.json").is_file()):  # a resumed part keeps its budget
            if part == "coarse":
                budget = max_minutes * budget_shares(coarse_config, fine_config)
            else:  # what the coarse part's epochs left
                budget = max_minutes - sum(h.get("seconds", 0.0) for h in parts["coarse"].history) / 60
            config = dataclasses.replace(config, max_minutes=max(budget, 0.01))  # 0 would mean no budget
        emit(TrainEvent("prepare", part=part, message=f"{part} part: {config.working_spacing_mm:g} mm, tile "
                                                      f"{config.tile}" + (f", from {Path(config.init_weights).name}"
                                                                           if config.init_weights else "")))

        def part_event(event: TrainEvent, part=part) -> None:
            event = dataclasses.replace(event, part=part, kind="part_done" if event.kind == "done" else event.kind)
            if event.kind == "epoch_end" and is_main:  # the loop wrote this epoch into the part's history.json
                atomic_write_json(out / "history.json", pair_history(out))
            emit(event)

        result = train(root, folder, config, resume=resume and folder.is_dir(), callback=part_event,
                       should_stop=should_stop, cache_dir=cache_dir)
        parts[part] = result
        if result.cancelled:
            return PairResult(out, None, None, True, parts, tuple(skipped), pair_history(out))

    coarse_dir, fine_dir = part_dir(out, "coarse"), part_dir(out, "fine")
    model_path = best_path = None
    if is_main:
        _same_patients(coarse_dir, fine_dir)
        for name in ("split.json", "data_report.json"):
            atomic_copy(coarse_dir / name, out / name)
        atomic_write_json(out / "history.json", pair_history(out))
        model_path = _write_pair(coarse_dir / "model.safetensors", fine_dir / "model.safetensors",
                                 out / "model.safetensors")
        bests = [part_dir(out, p) / "best.safetensors" for p in PARTS]
        if any(b.is_file() for b in bests):  # a part without a validated epoch gives its final one
            chosen = [b if b.is_file() else b.with_name("model.safetensors") for b in bests]
            best_path = _write_pair(chosen[0], chosen[1], out / "best.safetensors")
        runs = {p: json.loads((part_dir(out, p) / "run.json").read_text()) for p in PARTS}
        atomic_write_json(out / "run.json", {"two_pass": True, "parts": runs, "skipped": skipped,
                                             "epochs_done": sum(r.epochs_done for r in parts.values()),
                                             "stopped_early": any(r.stopped_early for r in parts.values()),
                                             "seconds": time.perf_counter() - timer})
        emit(TrainEvent("done", metrics={p: dict(r.history[-1]) if r.history else {} for p, r in parts.items()},
                        message=str(model_path)))
    return PairResult(out, model_path, best_path, False, parts, tuple(skipped), pair_history(out))


__all__ = ["COARSE_SPACING_MM", "COARSE_TILE", "FINE_SPACING_MM", "FINE_TILE", "PARTS", "PairResult", "budget_shares",
           "fine_part_path", "is_two_pass", "is_two_pass_run", "pair_history", "part_configs", "part_dir",
           "part_finished", "part_resolutions", "run_checkpoint", "train_pair"]
