"""``bcir retrain ROOT``: the Retrain dialog from the terminal (see :mod:`model.jobs.job`).

It prints the folder summary and the held-out set the safety gate will use,
starts the job in a child process and follows its event file (a progress bar
per epoch, one line per epoch, then the safety gate). It never switches the
active model: ``bcir jobs accept JOB`` does, ``bcir jobs reject JOB`` keeps the
current one (:mod:`model.cli.jobs`). ``--estimate`` prints the held-out set and
a time estimate and starts nothing.

Exit codes: 0 done (or detached, or an estimate), 1 cancelled, failed or a broken model file, 2 a refusal (not
trainable, a conflicting or bad option), 130 Ctrl+C (the job is cancelled).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from model.cli.exit_codes import Refusal, one_line
from model.cli.job_follow import CANCEL_WAIT_S, follow, report_end
from model.cli.options import add_device, add_weights, read_config_file

VIEWS = ("CC", "MLO")


def _read_config_file(path: str) -> dict:
    data = read_config_file(path)
    if data.get("init_weights"):
        raise Refusal(f"config file {path}: init_weights is set by --fine-tune and --weights, leave it out")
    return data


def _train_config(args: argparse.Namespace, current: Path | None):
    """The TrainConfig from --config and the flags; fine-tuning takes spacing and tile from the current model's card."""
    from model.errors import ConfigError
    from model.train.config import TrainConfig

    from_file = _read_config_file(args.config) if args.config else {}
    views = None
    if args.views:
        views = tuple(v.strip().upper() for v in args.views.split(",") if v.strip())
        if not views or any(v not in VIEWS for v in views):
            raise Refusal(f"--views takes CC, MLO or CC,MLO (not {args.views!r})")
    flags = {"max_epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
             "working_spacing_mm": args.working_spacing, "tile": args.tile, "augment_factor": args.augment_factor,
             "views": views, "device": args.device, "max_minutes": args.max_minutes}
    values = {**from_file, **{k: v for k, v in flags.items() if v is not None}}
    if args.two_pass and not args.fine_tune:  # a new pair: its coarse part searches at the coarse protocol's resolution
        from model.train.two_pass import COARSE_SPACING_MM, COARSE_TILE

        values.setdefault("working_spacing_mm", COARSE_SPACING_MM)
        values.setdefault("tile", COARSE_TILE)
    if args.fine_tune:
        from model.nn.weights import read_card

        card = read_card(current)
        kept = {"working_spacing_mm": float(card.preprocess.working_spacing_mm), "tile": int(card.tile_size)}
        for key, option, unit in (("working_spacing_mm", "--working-spacing", " mm"), ("tile", "--tile", " px")):
            if key in values and abs(float(values[key]) - kept[key]) > 1e-9:
                given = option if flags[key] is not None else f"{key} in {args.config}"
                raise Refusal(f"{given} {values[key]:g}{unit} differs from the current model's {kept[key]:g}{unit}: "
                              "fine-tuning keeps the model's working resolution (leave it out, or train from scratch)")
        values.update(kept)
    try:
        config = TrainConfig.from_json(values)
    except ConfigError as exc:  # one line that names the option as the reader gave it
        options = {"max_epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "tile": "--tile",
                   "working_spacing_mm": "--working-spacing", "augment_factor": "--augment-factor", "views": "--views",
                   "device": "--device", "max_minutes": "--max-minutes"}
        name = (options[exc.option] if flags.get(exc.option) is not None
                else f"{exc.option} in {args.config}" if exc.option in from_file else exc.option)
        raise Refusal(exc.naming(name)) from None
    if config.micro_batch > config.batch_size:
        config = dataclasses.replace(config, micro_batch=config.batch_size)
    return config


def _current_model(args: argparse.Namespace) -> Path | None:
    """--weights, else $BCIR_MODEL, else the registry's active model; None when there is none and none is needed."""
    from model.errors import ModelFileError
    from model.registry.resolve import resolve_model

    try:
        path = resolve_model(args.weights)
    except ModelFileError:  # none active and none bundled
        path = None
    if path is not None:
        if not path.is_file():
            raise Refusal(f"current model {path} does not exist")
        return path
    if args.fine_tune:  # none active or bundled, or the AI turned off (BCIR_MODEL=none)
        raise Refusal("--fine-tune needs a current model: none is active or bundled; pass --weights")
    return None


def settings_line(config, spec) -> str:
    start = f"fine-tuning {spec.base_model}" if spec.fine_tune else "from scratch"
    budget = f", at most {config.max_minutes:g} min" if config.max_minutes else ""
    resolution = f"{config.working_spacing_mm:g} mm, tile {config.tile}"
    if spec.two_pass:  # the parts' own resolutions (model.train.two_pass.part_configs)
        from model.errors import ModelFileError

        start += " (a two-pass model: both parts are fine-tuned)" if spec.fine_tune else " (a two-pass model)"
        try:
            coarse, fine = spec.part_configs()
            resolution = (f"coarse part {coarse.working_spacing_mm:g} mm, tile {coarse.tile}; fine part "
                          f"{fine.working_spacing_mm:g} mm, tile {fine.tile}")
        except ModelFileError:  # the model fine-tuned is gone since: its coarse part's resolution, as the spec says
            resolution = f"coarse part {resolution}"
    return (f"training {start}: up to {config.max_epochs} epochs, batch {config.batch_size}, lr {config.lr:g}, "
            f"{resolution}, views {'/'.join(config.views)}, augment x{config.augment_factor}, device "
            f"{config.device}{budget}")


def held_out_words(holdout_root: str | None) -> str:
    return f"every patient of {holdout_root}" if holdout_root else "the run's patient-level validation split"


def _plan_lines(plan: dict) -> list[str]:
    """The held-out set the gate will use, and why it may be too small to decide (as the GUI says before Start)."""
    lines = [f"held out for the safety gate: {plan['patients']} patients, {plan['images']} {'/'.join(plan['views'])} "
             f"images, {plan['lesions']} lesions ({plan['malignant']} malignant, {plan['benign']} benign)"]
    lines += [f"warning: too small to decide between two models: {w}" for w in plan["warnings"]]
    return lines


def _print_estimate(index, config, plan: dict, index_s: float, current: Path | None, split, parts=None) -> int:
    """``bcir retrain --estimate``: time a few training steps in a child, as the GUI does, print the estimate.
    ``parts``: a two-pass run's (coarse, fine) configs (JobSpec.parts)."""
    from model.jobs.estimate import count_run, estimate, pick_timing_image
    from model.jobs.timing import time_units_in_child

    print("timing a few training steps on this machine...", flush=True)
    units = time_units_in_child(config, pick_timing_image(index, config, split=split),
                                base_model=str(current) if current else None, parts=parts)
    result = estimate(count_run(index, config, gate_images=plan["images"], index_s=index_s, split=split,
                                parts=parts), units)
    print(f"estimate: {result.text()} (the timing took {units.seconds:.0f} s)")
    print("nothing was started (leave out --estimate to train)")
    return 0


def _cmd_retrain(args: argparse.Namespace) -> int:
    from model.train.dataset_summary import summarize_index
    from model.jobs.job import start_job
    from model.jobs.plan import plan_held_out, run_split
    from model.data.study_index import build_index

    root = Path(args.root).expanduser()
    if not root.is_dir():
        raise Refusal(f"training folder {root} does not exist")
    if args.holdout and not Path(args.holdout).expanduser().is_dir():
        raise Refusal(f"hold-out folder {args.holdout} does not exist")
    # the options are checked before the folder is read: a large folder takes a while to summarize
    current = _current_model(args)
    config = _train_config(args, current)
    spec = _job_spec(args, root, config, current)

    from tqdm import tqdm

    bar = None

    def progress(event) -> None:
        nonlocal bar
        if event.total:
            if bar is None:
                bar = tqdm(total=event.total, desc="reading the folder", unit="file", file=sys.stderr, leave=False,
                           disable=None)
            bar.update(max(0, event.done - bar.n))

    started = time.perf_counter()
    try:
        index = build_index(root, progress=progress, workers=4)
    finally:
        if bar is not None:
            bar.close()
    summary = summarize_index(index, views=config.views)
    summary.seconds = time.perf_counter() - started
    print(summary.text())
    if not summary.trainable:
        raise Refusal(f"cannot train on {root}: {'; '.join(summary.reasons)}; nothing was started")
    holdout_index = build_index(Path(args.holdout).expanduser(), workers=4) if args.holdout else None
    split = run_split(index, config)  # the training's patient split: the held-out plan and the estimate both count it
    plan = plan_held_out(index, config, holdout_index=holdout_index, split=split)
    for line in _plan_lines(plan):
        print(line)
    if args.estimate:
        return _print_estimate(index, spec.train_config(), plan, summary.seconds, current, split, spec.parts())

    spec = dataclasses.replace(spec, data_summary=summary.to_json())
    print(settings_line(config, spec))
    print(f"safety gate on {held_out_words(spec.holdout_root)}; current model: {spec.base_model or 'none'}")
    job = start_job(spec)
    print(f"started retrain job {job.id} (log: {job.log_path})", flush=True)
    if args.detach:
        print(f"it runs in the background:\n  bcir jobs follow {job.id}    watch it\n"
              f"  bcir jobs show {job.id}      its state and the gate\n  bcir jobs cancel {job.id}    stop it")
        return 0
    try:
        state = follow(job)
    except KeyboardInterrupt:
        print(f"\ncancelling retrain job {job.id} (waiting up to {CANCEL_WAIT_S:g} s)...", file=sys.stderr, flush=True)
        job.cancel(timeout=CANCEL_WAIT_S)
        state = job.state()
        print(f"retrain job {job.id} {state.get('state')}: {one_line(state.get('message', ''))}", file=sys.stderr)
        return 130
    return report_end(job, state)


def _job_spec(args: argparse.Namespace, root: Path, config, current: Path | None):
    """The job the options ask for; Refusal for fine-part options without a two-pass model, or a fine part's
    resolution out of range or other than the two-pass model fine-tuned."""
    from model.errors import ConfigError, ModelFileError
    from model.jobs.spec import JobSpec
    from model.train.two_pass import is_two_pass

    try:
        two_pass = args.two_pass or bool(args.fine_tune and is_two_pass(current))
        if not two_pass and (args.fine_spacing is not None or args.fine_tile is not None):
            raise Refusal("--fine-spacing and --fine-tile set the fine part of a two-pass model: add --two-pass")
        spec = JobSpec(root=str(root), config=config.to_json(), base_model=str(current) if current else None,
                       fine_tune=args.fine_tune, holdout_root=args.holdout, bootstrap=args.bootstrap,
                       two_pass=two_pass, fine_spacing_mm=args.fine_spacing, fine_tile=args.fine_tile)
        spec.parts()  # the fine part's settings are checked before the folder is read
    except ConfigError as exc:
        raise Refusal(exc.naming({"fine_spacing_mm": "--fine-spacing", "fine_tile": "--fine-tile"}.get(
            exc.option, exc.option))) from None
    except ModelFileError as exc:
        raise Refusal(f"current model: {exc}") from None
    return spec


def register(subparsers) -> None:
    """Add the ``retrain`` command to ``bcir``'s subparsers."""
    p = subparsers.add_parser("retrain", help="retrain on a folder in a child process, then the safety gate "
                                              "(the GUI's Retrain dialog); never switches the active model")
    p.add_argument("root", help="labelled folder to train on (CBIS-DDSM layout, demo data, or labels.csv)")
    p.add_argument("--holdout", metavar="DIR", help="locked hold-out folder for the gate (default: the run's "
                                                     "patient-level validation split)")
    p.add_argument("--fine-tune", action="store_true", help="start from the current model (its working spacing and "
                                                             "tile are kept) rather than from scratch; a two-pass "
                                                             "model's both parts are fine-tuned, each at its own "
                                                             "resolution, and the new model is a pair")
    add_weights(p, metavar="CURRENT", role="the current model: the gate's baseline and the fine-tune start")
    p.add_argument("--epochs", type=int, metavar="N", help="at most this many epochs (default 200, early stop)")
    p.add_argument("--batch-size", type=int, metavar="N", help="samples per optimiser step (default 64)")
    p.add_argument("--lr", type=float, metavar="X", help="learning rate (default 2e-4)")
    p.add_argument("--working-spacing", type=float, metavar="MM", help="working pixel spacing in mm (default 0.1)")
    p.add_argument("--tile", type=int, metavar="PX", help="ROI tile size at the working spacing (default 1024)")
    p.add_argument("--augment-factor", type=int, metavar="N", help="virtual expansion per case (default 40)")
    p.add_argument("--views", metavar="CC,MLO", help="views to train on (default CC; CC,MLO for both)")
    add_device(p, default=None)
    p.add_argument("--max-minutes", type=float, metavar="M", help="stop after the last epoch that fits this budget")
    p.add_argument("--two-pass", action="store_true",
                   help="train a two-pass model: a coarse part on the whole breast (--working-spacing and --tile, "
                        "default 0.4 mm and 256 here), then a fine part on a tile at each candidate (--fine-spacing "
                        "and --fine-tile), accepted as one model; fine-tuning a two-pass model is one already")
    p.add_argument("--fine-spacing", type=float, metavar="MM", help="the fine part's working spacing (default 0.1)")
    p.add_argument("--fine-tile", type=int, metavar="PX", help="the fine part's tile (default 1024)")
    p.add_argument("--config", metavar="FILE.json", help="JSON file with TrainConfig fields; the options above win")
    p.add_argument("--bootstrap", type=int, default=2000, metavar="N",
                   help="bootstrap resamples for the gate's AUC CI (default 2000)")
    p.add_argument("--detach", action="store_true", help="start the job, print its id and return")
    p.add_argument("--estimate", action="store_true", help="print the held-out set and how long the run would take "
                                                           "(from a few timed training steps), start nothing")
    p.set_defaults(func=_cmd_retrain)


__all__ = ["held_out_words", "register", "settings_line"]
