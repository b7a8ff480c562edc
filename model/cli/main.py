"""The ``bcir`` command line: every computation the GUI offers, without the GUI."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from model.cli.exit_codes import EXIT_BROKEN_PIPE, Refusal, report_error
from model.errors import failure_reason

log = logging.getLogger("bcir")


def _cmd_index(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.data.study_index import build_index

    bars: dict[str, tqdm] = {}

    def progress(event) -> None:
        if event.stage not in ("headers", "masks"):
            return
        if event.stage not in bars:  # disable=None: no bar when stderr is not a terminal
            bars[event.stage] = tqdm(total=event.total, desc=event.stage, unit="file", file=sys.stderr, leave=False, disable=None)
        bar = bars[event.stage]
        bar.update(event.done - bar.n)

    root = Path(args.root)
    if not root.exists():
        raise Refusal(f"{root} does not exist")
    index = build_index(root, progress=progress, workers=args.workers)
    for bar in bars.values():
        bar.close()
    if args.json:
        json.dump(index.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(index.summary())
    return 0


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.data.synth.cbis_writer import write_demo_dataset

    start = time.perf_counter()
    with tqdm(total=args.patients, desc="patients", unit="patient", file=sys.stderr, leave=False, disable=None) as bar:
        summary = write_demo_dataset(
            args.out, patients=args.patients, seed=args.seed, size=args.size,
            metadata_csv=not args.no_metadata, progress=lambda done, total: bar.update(done - bar.n),
        )
    print(
        f"wrote {summary.patients} patients, {summary.images} images, {summary.abnormalities} abnormalities "
        f"({summary.malignant} malignant), {summary.files} DICOM files, {summary.bytes / 1e6:.0f} MB "
        f"to {summary.root} in {time.perf_counter() - start:.1f} s"
    )
    return 0


def _load_model(weights: str | None):
    from model.nn.weights import load_model
    from model.registry.resolve import require_model

    return load_model(require_model(weights))


def _infer_targets(paths: list[str], views: set[str]) -> tuple[list, list[dict]]:
    """(indexed images to run, errors) from files and folders; folders go through the index (ground truth too)."""
    from model.data.study_index import build_index

    targets, errors = [], []
    for raw in paths:
        path = Path(raw)
        try:  # a path that cannot even be looked at (a folder above it unreadable) is one error, not the end
            if not path.exists():
                errors.append({"path": str(path), "reason": "not found"})
                continue
            index = build_index(path)
            chosen = index.images if path.is_file() else [i for i in index.images if (i.view or "").upper() in views]
        except Exception as exc:  # noqa: BLE001 - any failure of one path goes to errors; the others go on
            log.debug("infer: %s while listing a path", type(exc).__name__, exc_info=True)
            errors.append({"path": str(path), "reason": failure_reason(exc)})
            continue
        errors += [{"path": s.path, "reason": s.reason} for s in index.skipped]
        targets += chosen
    return targets, errors


def _cmd_infer(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.fileio import user_cache_dir
    from model.infer.predictor import InferenceConfig, Predictor
    from model.data.masks import load_truth
    from model.infer.overlay import render_overlay, write_png

    model = _load_model(args.weights)
    predictor = Predictor(model, args.device, config=InferenceConfig(), cache_dir=None if args.no_cache else user_cache_dir() / "results")
    views = {v.strip().upper() for v in args.views.split(",") if v.strip()}
    targets, errors = _infer_targets(args.paths, views)
    out_dir = Path(args.out)
    roi = None
    if args.roi:
        try:
            roi = tuple(float(v) for v in args.roi.split(","))
            assert len(roi) == 2
        except (ValueError, AssertionError):
            raise Refusal("--roi takes X,Y in pixels of the original image") from None
    results = []
    from model.data.dicom_io import read_image

    for image in tqdm(targets, desc="images", unit="image", file=sys.stderr, disable=None if len(targets) > 1 else True):
        try:
            mammogram = read_image(image.path)
            result = predictor.predict_roi(mammogram, *roi) if roi else predictor.predict(mammogram)
            stem = _output_stem(image)
            mask = result.lesion_mask(model.threshold)  # the listed lesions, as the reader sees them in yellow
            mask_path = out_dir / f"{stem}_mask.png"
            write_png(mask_path, mask.view("uint8") * 255)  # uint8 stays uint8: no full-size int64 copy
            truth = [t.mask for t in load_truth(image).usable]  # a mask that cannot be read is left off the overlay
            write_png(out_dir / f"{stem}_overlay.png", render_overlay(mammogram, mask, truth))
            item = result.to_json()
            item["mask_path"] = str(mask_path)
            item["overlay_path"] = str(out_dir / f"{stem}_overlay.png")
            results.append(item)
        except Exception as exc:  # noqa: BLE001 - one image that fails for any reason (out of memory too) never stops the rest
            log.debug("infer: image failed with %s", type(exc).__name__, exc_info=True)
            errors.append({"path": image.path, "reason": failure_reason(exc)})
    if args.json:
        json.dump({"results": results, "errors": errors}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for item in results:
            lesions = ", ".join(f"{l['label']} {l['p_malignant']:.2f}" for l in item["lesions"]) or "no lesion"
            print(f"{_shown(item['path'])}: case score {item['case_score']:.2f}; {lesions} ({item['seconds']:.1f} s, {item['device']})")
        for e in errors:
            print(f"error: {_shown(e['path'])}: {e['reason']}")
        print(f"{len(results)} images, {len(errors)} errors; masks and overlays in {out_dir}")
    return 0


def _output_stem(image) -> str:
    import hashlib
    import re

    base = image.subject or Path(image.path).stem
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", base)
    return f"{base}_{hashlib.sha1(os.fsencode(image.path)).hexdigest()[:6]}"  # the name's bytes, UTF-8 or not


def _shown(path: str) -> str:
    """A path for a terminal line: a name that is not valid UTF-8 keeps its readable part, the rest as U+FFFD."""
    return os.fsencode(path).decode("utf-8", "replace")


def _cmd_model_info(args: argparse.Namespace) -> int:
    from model.nn.network import parameter_counts
    from model.nn.runtime import device_label, resolve_device

    from model.nn.card import TrainingRecord
    from model.nn.network import ARCHITECTURE, ARCHITECTURE_VERSION
    from model.nn.weights import shareable_card

    model = _load_model(args.weights)
    info = {**parameter_counts(model.net), "device": device_label(resolve_device(args.device)),
            "weights": str(model.path), "card": shareable_card(model.card)}  # an older card's patient IDs hashed
    if args.json:
        json.dump(info, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        card = model.card
        print(f"{card.name} {card.version} ({ARCHITECTURE} v{ARCHITECTURE_VERSION})")
        print(f"  weights: {model.path}")
        print(f"  trunk: {info['trunk_trainable_params']:,} trainable parameters + {info['trunk_bn_running_stats']:,} BatchNorm statistics; "
              f"malignancy head: {info['head_params']:,}")
        print(f"  working spacing {model.preprocess.working_spacing_mm} mm, tile {model.tile_size}, threshold {model.threshold}")
        training = card.training or TrainingRecord()
        print(f"  trained on: {training.data}; date {training.date}; parent {card.parent}")
        for k, v in (training.metrics or {}).items():
            print(f"    {k}: {v}")
        print(f"  device: {info['device']}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from model.evaluate.bench import run_bench
    from model.errors import ModelFileError
    from model.nn.weights import load_model, random_model
    from model.registry.resolve import resolve_model

    try:
        path = resolve_model(args.weights)
    except ModelFileError:  # none active and none bundled: the network's speed does not depend on its weights
        path = None
    model = load_model(path) if path else random_model(0)
    report = run_bench(model, device=args.device, repeats=args.repeats, image=args.image,
                       log=(lambda m: print(m, file=sys.stderr)))
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        t = report["cpu_tile_seconds"]
        print(f"device: {report['device']}")
        print("CPU tile 1024x1024 (median): " + ", ".join(f"{k} {v:.3f} s" for k, v in t.items())
              + f"; shipped is {report['cpu_tile_speedup_vs_eager_fp32']:.1f}x eager fp32")
        if "gpu_tile_seconds" in report:
            print(f"GPU tile ({report['gpu_name']}): " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in report["gpu_tile_seconds"].items()))
        print(f"whole CC view {report['full_view_shape'][0]}x{report['full_view_shape'][1]}, DICOM to lesions: "
              f"median {report['full_view_seconds_median']:.2f} s over {len(report['full_view_seconds_runs'])} runs "
              f"({report['full_view_tiles']} tiles of {report['full_view_tile_size']})")
        print(f"peak RSS: {report['peak_rss_mb_after_full_view']:.0f} MB after the whole view, {report['peak_rss_mb']:.0f} MB in all")
        print(f"header scan: {report['header_scan_files_per_s']:.0f} files/s over {report['header_scan_files']} files")
        print("goals: " + ", ".join(f"{k}: {'met' if v else 'not met' if v is not None else 'n/a'}" for k, v in report["goals"].items()))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.errors import ConfigError
    from model.train.config import TrainConfig, TrainEvent

    # the settings are checked before anything is read: a bad one is one line naming the option as written, exit 2
    from_file = json.loads(Path(args.config).read_text()) if args.config else {}
    if not isinstance(from_file, dict):
        raise Refusal(f"config file {args.config} must hold one JSON object of TrainConfig fields")
    flags = {  # TrainConfig field: (the option, its value)
        "max_epochs": ("--epochs", args.epochs),
        "views": ("--views", tuple(v.strip().upper() for v in args.views.split(",")) if args.views else None),
        "working_spacing_mm": ("--working-spacing", args.working_spacing), "tile": ("--tile", args.tile),
        "batch_size": ("--batch-size", args.batch_size), "micro_batch": ("--micro-batch", args.micro_batch),
        "lr": ("--lr", args.lr), "augment_factor": ("--augment-factor", args.augment_factor),
        "device": ("--device", args.device), "init_weights": ("--init-weights", args.init_weights),
        "max_minutes": ("--max-minutes", args.max_minutes), "bf16": ("--bf16", True if args.bf16 else None),
        "normal_ratio": ("--normal-ratio", args.normal_ratio), "seed": ("--seed", args.seed),
    }
    given = {key: value for key, (_, value) in flags.items() if value is not None}
    try:
        config = TrainConfig.from_json({**from_file, **given})
    except ConfigError as exc:
        name = (flags[exc.option][0] if exc.option in given
                else f"{exc.option} in {args.config}" if exc.option in from_file else exc.option)
        raise Refusal(exc.naming(name)) from None

    from model.train.loop import train  # torch: only once the settings hold
    bar = None
    rank = int(__import__("os").environ.get("RANK", 0))

    def on_event(event: TrainEvent) -> None:
        nonlocal bar
        if rank != 0:
            return
        if event.kind == "epoch_start":
            bar = tqdm(total=event.batches, desc=f"epoch {event.epoch}", unit="batch", file=sys.stderr, leave=False, disable=None)
        elif event.kind == "batch" and bar is not None:
            bar.update(event.batch - bar.n)
            bar.set_postfix(loss=f"{event.loss:.4f}")
        elif event.kind == "epoch_end":
            if bar is not None:
                bar.close()
            m = event.metrics
            print(f"epoch {event.epoch}: train loss {m['train_loss']:.4f}" + "".join(
                f", {k} {m[k]:.4f}" for k in ("val_loss", "val_dice", "val_auc") if k in m) + f" ({m['seconds']:.0f} s)", flush=True)
        elif event.kind in ("early_stop", "cancelled", "done") or (event.kind == "prepare" and event.message.startswith("resumed")):
            print(f"{event.kind}: {event.message}", flush=True)

    out = Path(args.out)
    result = train(args.root, out, config, resume=args.resume, callback=on_event)
    if rank == 0 and result.model_path:
        print(f"model: {result.model_path} (best by validation Dice: {result.best_path})")
    return 0 if not result.cancelled else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bcir", description="B-Cir Review: mammogram review with the B-Cir U-Net")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("index", help="index a CBIS-DDSM download or a folder of mammograms")
    p.add_argument("root", help="folder (CBIS-DDSM root, Kaggle copy, or any DICOM folder) or one file")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--workers", type=int, default=4, help="reader threads (default 4)")
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("demo-data", help="write synthetic CBIS-DDSM-shaped studies")
    p.add_argument("out", help="output folder")
    p.add_argument("--patients", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", choices=["full", "small"], default="full",
                   help="full: 50 um pixels like CBIS-DDSM; small: 400 um, for tests")
    p.add_argument("--no-metadata", action="store_true", help="leave out the retriever's metadata.csv")
    p.set_defaults(func=_cmd_demo_data)

    p = sub.add_parser("infer", help="run the network on files or folders; writes mask and overlay PNGs")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--weights", help="NAME.safetensors (default: the active model, see `bcir models`)")
    p.add_argument("--out", default="bcir-out", help="folder for the PNGs (default ./bcir-out)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--roi", metavar="X,Y", help="run one tile centred on this point (the paper's protocol)")
    p.add_argument("--views", default="CC", help="views to run in folders (default CC; e.g. CC,MLO)")
    p.add_argument("--no-cache", action="store_true", help="recompute even when a cached result exists")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=_cmd_infer)

    p = sub.add_parser("train", help="train on labelled studies (resumable; works under torchrun)")
    p.add_argument("root", help="CBIS-DDSM root, Kaggle copy, or a labelled folder (see README)")
    p.add_argument("--out", default="bcir-run", help="run folder (checkpoints, split, models)")
    p.add_argument("--epochs", type=int, help="at most this many epochs (default 200)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--config", help="JSON file with TrainConfig fields")
    p.add_argument("--views", help="views to train on (default CC; e.g. CC,MLO)")
    p.add_argument("--working-spacing", type=float, help="working pixel spacing in mm (default 0.1)")
    p.add_argument("--tile", type=int, help="ROI tile size at the working spacing (default 1024)")
    p.add_argument("--batch-size", type=int, help="samples per optimiser step (default 64, by accumulation)")
    p.add_argument("--micro-batch", type=int, help="samples per forward pass (default 8)")
    p.add_argument("--lr", type=float)
    p.add_argument("--augment-factor", type=int, help="virtual expansion per case (default 40)")
    p.add_argument("--normal-ratio", type=float, help="lesion-free tiles per lesion tile (default 0.25)")
    p.add_argument("--init-weights", help="fine-tune from this model")
    p.add_argument("--max-minutes", type=float, help="stop after the last epoch that fits this budget")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CPUs with native bf16, recent GPUs)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto, cpu or cuda")
    p.set_defaults(func=_cmd_train)

    from model.cli.evaluate import register as register_eval

    register_eval(sub)

    from model.cli.models import register as register_models

    register_models(sub)

    from model.cli.retrain import register as register_retrain

    register_retrain(sub)

    from model.cli.jobs import register as register_jobs

    register_jobs(sub)

    from model.cli.reviews import register as register_reviews

    register_reviews(sub)

    p = sub.add_parser("model-info", help="parameter counts, device and model card")
    p.add_argument("--weights", help="NAME.safetensors (default: the active model, see `bcir models`)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_model_info)

    p = sub.add_parser("bench", help="measure inference speed, memory and header scanning")
    p.add_argument("--weights", help="NAME.safetensors (default: $BCIR_MODEL, else the active model, else random weights)")
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--image", help="a full CC view to time (default: a generated full-size one)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_bench)
    return parser


class _ReaderGone(BaseException):
    """stdout's reader closed the pipe (``bcir jobs list | head``). A BaseException, like KeyboardInterrupt, so
    that no command's own ``except OSError`` turns it into an error line; :func:`main` ends the command quietly."""


class _GuardedStdout:
    """sys.stdout while a command runs: a write or flush into a closed pipe raises :class:`_ReaderGone`."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise _ReaderGone() from None

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        try:
            return self._stream.flush()
        except BrokenPipeError:
            raise _ReaderGone() from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    """Every ``bcir`` command goes through here: one line on stderr for an error, never a traceback for one we
    expect, and a reader that stops reading (``bcir jobs list | head``) ends the command quietly."""
    stdout = sys.stdout
    sys.stdout = _GuardedStdout(stdout)
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        try:
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # here, not at exit, so that a closed pipe is seen by the handler below
            return code
        except BrokenPipeError:
            raise _ReaderGone() from None
        except (Exception, KeyboardInterrupt) as exc:  # every command group's errors: model.cli.exit_codes
            code = report_error(exc, args)
            if code is None:  # a bug: its traceback
                raise
            return code
    except _ReaderGone:
        _quiet_stdout(stdout)
        return EXIT_BROKEN_PIPE
    finally:
        sys.stdout = stdout


def _quiet_stdout(stream) -> None:
    """After the reader closed the pipe: point stdout at /dev/null so that Python's final flush of what is still
    buffered does not print 'Exception ignored ... Broken pipe' on the way out."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests): nothing to flush there
        pass

if __name__ == "__main__":
    sys.exit(main())
