"""``bcir models list|show|use|add|remove``: the model registry from the terminal (see :mod:`model.registry.versions`)."""

from __future__ import annotations

import argparse
import json
import sys


def _registry():
    from model.registry.versions import ModelRegistry

    return ModelRegistry()


def print_json(data) -> None:
    """One JSON object on stdout (the ``--json`` output of ``bcir models`` and ``bcir jobs``)."""
    json.dump(data, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")


def _num(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "n/a" if value is None else str(value)


def _cmd_list(args: argparse.Namespace) -> int:
    from model.registry.versions import held_out_figures

    registry = _registry()
    entries, skipped = registry.scan()
    if args.json:
        print_json({"models": [e.to_json() for e in entries],
                     "skipped": [{"path": str(s.path), "reason": s.reason} for s in skipped]})
        return 0
    for e in entries:
        marks = ("*" if e.active else " ") + ("B" if e.bundled else " ")
        date = (e.added or e.created or "")[:19]
        held = held_out_figures(e)
        figures = f"Dice {_num(held['dice'])} ({held['text']})" if held["dice"] is not None else ""
        print(f"{marks} {e.version:<28} {date:<19}  {figures}")
    for s in skipped:
        print(f"  skipped {s.path.name}: {s.reason}")
    print("* active, B bundled (always kept)")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from model.registry.versions import card_facts, held_out_figures

    registry = _registry()
    entry = registry.get(args.version) if args.version else registry.active()
    if args.json:
        from model.registry.versions import shareable_gate
        from model.nn.weights import shareable_card

        # no patient IDs, even from files an older version wrote: this output is what a site copies to others
        info = {**entry.info, "gate": shareable_gate(entry.info.get("gate"))} if entry.info.get("gate") else entry.info
        print_json({**entry.to_json(), "gate": shareable_gate(entry.gate), "card": shareable_card(entry.card),
                    "entry": info})
        return 0
    data = entry.training_data
    status = ", ".join(s for s, on in (("active", entry.active), ("bundled", entry.bundled)) if on) or "available"
    print(f"{entry.name} {entry.version} ({status})")
    print(f"  weights: {entry.weights}")
    print(f"  parent: {entry.parent or 'none'}")
    print(f"  created: {entry.created or 'unknown'}; added: {entry.added or 'bundled'}; source: {entry.info.get('source')}")
    described = dict(card_facts(entry))
    print(f"  training data: {described.get('Trained on') or described.get('Training folder') or 'unknown'}")
    print(f"    fingerprint {data.get('data_fingerprint') or 'n/a'}; {data.get('train_patients')} training and "
          f"{data.get('val_patients')} validation patients; {data.get('images_used')} images, "
          f"{data.get('abnormalities_used')} abnormalities used")
    settings = entry.settings
    if settings:
        keys = ("max_epochs", "batch_size", "lr", "working_spacing_mm", "tile", "views", "init_weights")
        print("  settings: " + ", ".join(f"{k} {settings[k]}" for k in keys if k in settings))
    metrics = entry.metrics
    if metrics:
        held = held_out_figures(entry)
        print(f"  metrics (held out: {held['text']}):")
        for warning in held["warnings"]:
            print(f"    warning: {warning}")
        for key, value in metrics.items():
            if isinstance(value, list):
                print(f"    {key}: {' - '.join(_num(v) for v in value)}")
            elif not isinstance(value, dict):
                print(f"    {key}: {_num(value)}")
    if entry.gate:
        from model.jobs.verdict import format_comparison

        print("  safety gate:")
        for line in format_comparison(entry.gate).splitlines():
            print(f"    {line}")
    if entry.card.intended_use:
        print(f"  intended use: {entry.card.intended_use}")
    if entry.log_path:
        print(f"  training log: {entry.log_path}")
    return 0


def _cmd_use(args: argparse.Namespace) -> int:
    entry = _registry().use(args.version)
    print(f"active model: {entry.version}")
    return 0


def _cmd_add(args: argparse.Namespace) -> int:
    entry = _registry().add(args.weights, log_path=args.log)
    print(f"added {entry.version} (not active; `bcir models use {entry.version}` switches to it)")
    return 0


def _cmd_pair(args: argparse.Namespace) -> int:
    """Two trained models made one two-pass model: COARSE proposes over the whole breast, FINE looks closer."""
    from pathlib import Path

    from model.errors import ModelFileError
    from model.nn.card import ModelCard
    from model.nn.weights import fine_name_for, load_model, save_pair

    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise ModelFileError(f"--out {out.name}: a model is written as NAME.safetensors")
    for path in (out, out.with_name(fine_name_for(out))):
        if path.exists():
            raise ModelFileError(f"{path} exists: pairing never writes over a model")
    coarse, fine = load_model(args.coarse), load_model(args.fine)
    if args.fine_tile is not None:  # the fine pass's tile at inference (a card setting, checked as any card is)
        fine.card = ModelCard.parse({**fine.card.to_json(), "tile_size": args.fine_tile})
    save_pair(coarse, fine, out, version=args.version, name=args.name)
    paired = load_model(out)
    print(f"wrote two-pass model {paired.version}: {out} (coarse, {paired.preprocess.working_spacing_mm} mm, tile "
          f"{paired.tile_size}) + {paired.fine.path.name} (fine, {paired.fine.preprocess.working_spacing_mm} mm, tile "
          f"{paired.fine.tile_size})")
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    _registry().remove(args.version)
    print(f"removed {args.version}")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``models`` command to ``bcir``'s subparsers."""
    p = subparsers.add_parser("models", help="the model registry: list, show, switch (rollback), add, remove, pair")
    sub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    q = sub.add_parser("list", help="every model; * marks the active one, B the bundled one")
    q.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    q.set_defaults(func=_cmd_list)

    q = sub.add_parser("show", help="a model's card: version, parent, date, training data, metrics, gate")
    q.add_argument("version", nargs="?", help="default: the active model")
    q.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    q.set_defaults(func=_cmd_show)

    q = sub.add_parser("use", help="make VERSION the active model (also the way back to an older one)")
    q.add_argument("version")
    q.set_defaults(func=_cmd_use)

    q = sub.add_parser("add", help="copy a model (NAME.safetensors with its NAME.json card) into the registry")
    q.add_argument("weights")
    q.add_argument("--log", help="its training log, kept with it")
    q.set_defaults(func=_cmd_add)

    q = sub.add_parser("pair", help="make one two-pass model of a coarse and a fine model (not added to the registry)")
    q.add_argument("coarse", help="the coarse pass: NAME.safetensors that searches the whole breast")
    q.add_argument("fine", help="the fine pass: NAME.safetensors that looks closer on a tile at each candidate")
    q.add_argument("--out", required=True, help="the pair's NAME.safetensors (NAME.fine.safetensors is written beside)")
    q.add_argument("--version", help="the pair's version (default: the coarse model's)")
    q.add_argument("--name", help="the pair's name (default: each card's own)")
    q.add_argument("--fine-tile", type=int, help="the fine pass's tile in pixels at inference (default: its card's)")
    q.set_defaults(func=_cmd_pair)

    q = sub.add_parser("remove", help="delete VERSION (never the bundled or the active model)")
    q.add_argument("version")
    q.set_defaults(func=_cmd_remove)
    return p


__all__ = ["register"]
