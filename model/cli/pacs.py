"""``bcir node`` (our DICOM node: receive studies into an inbox) and ``bcir pacs echo|find|get|move|send`` (an
archive, over DIMSE), see :mod:`model.pacs`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from model.pacs.archive import DEFAULT_TIMEOUT_S


def _archive(args: argparse.Namespace):
    """The archive the options name: DICOMweb with --dicomweb, else DIMSE with --ae, --host and --port."""
    from model.cli.exit_codes import Refusal
    from model.pacs.archive import Archive, ArchiveProfile

    if getattr(args, "pacs", None):
        from model.pacs.profiles import Profiles

        return Profiles().get(args.pacs).archive()
    if getattr(args, "dicomweb", None):
        from model.pacs.dicomweb import WebArchive

        return WebArchive(args.dicomweb, timeout_s=args.timeout)
    if not (args.ae and args.host and args.port):
        raise Refusal("name the archive: --pacs NAME, --ae AE --host HOST --port PORT, or --dicomweb URL")
    return Archive(ArchiveProfile(args.ae, args.host, args.port, calling_ae=args.calling_ae, timeout_s=args.timeout))


def _cmd_node(args: argparse.Namespace) -> int:
    from model.pacs.inbox import default_inbox
    from model.pacs.node import StorageNode

    inbox = Path(args.inbox) if args.inbox else default_inbox()
    node = StorageNode(args.ae, args.port, inbox, host=args.host)
    stop = threading.Event()
    # Ctrl+C and a service manager's SIGTERM both stop the node; set here rather than inherited, since a node
    # started in the background of a shell inherits SIGINT ignored
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    node.start()
    print(f"DICOM node {node.ae_title} on port {node.port}, filing into {inbox} (Ctrl+C stops it)", file=sys.stderr)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        node.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    counts = node.counts
    print(f"received {counts.received} instances"
          + (f", {counts.repeated} already there" if counts.repeated else "")
          + (f", {counts.refused} refused: " + "; ".join(dict.fromkeys(counts.problems)) if counts.refused else ""))
    return 0


def _cmd_echo(args: argparse.Namespace) -> int:
    archive = _archive(args)
    archive.echo()
    print(f"{archive.name} answers")
    return 0


def _cmd_find(args: argparse.Namespace) -> int:
    matches = _archive(args).find_studies(patient_id=args.patient_id or "", patient_name=args.name or "",
                                          date_from=args.date_from or "", date_to=args.date_to or "",
                                          accession=args.accession or "", modality=args.modality)
    if args.json:
        json.dump({"studies": [m.to_json() for m in matches]}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    if not matches:
        print("no matching studies")
        return 0
    columns = ("PatientID", "PatientName", "StudyDate", "AccessionNumber", "ModalitiesInStudy",
               "NumberOfStudyRelatedInstances", "StudyInstanceUID")
    header = ("PATIENT", "NAME", "DATE", "ACCESSION", "MODALITIES", "IMAGES", "STUDY UID")
    rows = [tuple(m.fields.get(c, "") for c in columns) for m in matches]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    return 0


def _cmd_get(args: argparse.Namespace) -> int:
    from model.pacs.inbox import Inbox, default_inbox

    inbox = Inbox(Path(args.inbox) if args.inbox else default_inbox())
    total = 0
    for study in args.study:
        result = _archive(args).get_study(study, inbox)
        total += len(result.stored)
        print(result.summary(study))
    print(f"{total} new instances in {inbox.root}", file=sys.stderr)
    return 0


def _cmd_move(args: argparse.Namespace) -> int:
    for study in args.study:
        result = _archive(args).move_study(study, args.dest)
        print(f"{study}: sent to {args.dest}" + (f", {result.failed} instances failed" if result.failed else ""))
    return 0


def _cmd_send(args: argparse.Namespace) -> int:
    archive = _archive(args)
    stored = archive.send([Path(f) for f in args.files])
    print(f"{len(stored)} objects stored by {archive.name}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from model.cli.exit_codes import Refusal
    from model.pacs.bench import describe, run_bench

    try:
        rows, columns = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise Refusal(f"--size {args.size!r:.30} is not ROWSxCOLUMNS (such as 3328x2560)") from None
    named = any(getattr(args, k, None) for k in ("pacs", "dicomweb", "ae", "host", "port"))
    archive = _archive(args) if named else None
    report = run_bench(instances=args.instances, repeats=args.repeats, rows=rows, columns=columns, archive=archive,
                       study=args.study, progress=lambda line: print(line, file=sys.stderr))
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print("\n".join(describe(report)))
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    from model.pacs.profiles import Profile, Profiles

    profiles = Profiles()
    if args.profiles_action == "add":
        profile = Profile(args.name, args.ae or "", args.host or "", args.port or 0, args.calling_ae, args.dicomweb or "",
                          args.timeout)
        profiles.add(profile)
        print(f"{profile.name}: {profile.describe()}")
    elif args.profiles_action == "remove":
        profiles.remove(args.name)
        print(f"{args.name} removed")
    else:
        known = profiles.all()
        for profile in known:
            print(f"{profile.name}  {profile.describe()}")
        if not known:
            print("no named archives (bcir pacs profiles add NAME --ae AE --host HOST --port PORT | --dicomweb URL)")
    return 0


def _peer_options(p: argparse.ArgumentParser, *, web: bool = True) -> None:
    p.add_argument("--pacs", metavar="NAME", help="a named archive (bcir pacs profiles)")
    p.add_argument("--ae", help="the archive's AE title (DIMSE)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--calling-ae", default="BCIR", help="our AE title, as the archive knows it (default BCIR)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"the longest wait for any one answer of the archive (default {DEFAULT_TIMEOUT_S:g} s)")
    if web:
        p.add_argument("--dicomweb", metavar="URL", help="the archive's DICOMweb base URL instead (QIDO, WADO, STOW)")


def register(subparsers) -> None:
    """Add ``node`` and ``pacs`` (echo, find, get, move) to ``bcir``'s subparsers."""
    p = subparsers.add_parser("node", help="our DICOM node: receive pushed or moved studies into an inbox")
    p.add_argument("--ae", default="BCIR", help="its AE title (default BCIR)")
    p.add_argument("--port", type=int, default=11112, help="its port (default 11112)")
    p.add_argument("--host", default="", help="the address to listen on (default: every interface)")
    p.add_argument("--inbox", help="where instances are filed (default: dicom-inbox in the user data folder)")
    p.set_defaults(func=_cmd_node)

    pacs = subparsers.add_parser("pacs", help="an archive over DIMSE: echo, find studies, get or move them")
    sub = pacs.add_subparsers(dest="pacs_command", required=True, metavar="ACTION")
    p = sub.add_parser("echo", help="C-ECHO: does the archive answer?")
    _peer_options(p)
    p.set_defaults(func=_cmd_echo)
    p = sub.add_parser("find", help="study-level C-FIND")
    _peer_options(p)
    p.add_argument("--patient-id")
    p.add_argument("--name", help="patient name; * matches any characters")
    p.add_argument("--date-from", metavar="YYYYMMDD")
    p.add_argument("--date-to", metavar="YYYYMMDD")
    p.add_argument("--accession")
    p.add_argument("--modality", default="MG", help="modalities in study (default MG)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_find)
    p = sub.add_parser("get", help="C-GET studies into the inbox")
    _peer_options(p)
    p.add_argument("study", nargs="+", help="Study Instance UIDs")
    p.add_argument("--inbox", help="default: dicom-inbox in the user data folder")
    p.set_defaults(func=_cmd_get)
    p = sub.add_parser("move", help="C-MOVE studies to a node the archive knows (ours: bcir node)")
    _peer_options(p, web=False)
    p.add_argument("study", nargs="+", help="Study Instance UIDs")
    p.add_argument("--dest", default="BCIR", help="the destination AE title (default BCIR)")
    p.set_defaults(func=_cmd_move)
    p = sub.add_parser("profiles", help="the site's named archives: list, add NAME ..., remove NAME")
    actions = p.add_subparsers(dest="profiles_action", required=True, metavar="list|add|remove")
    actions.add_parser("list").set_defaults(func=_cmd_profiles)
    add = actions.add_parser("add", help="add or replace a named archive")
    add.add_argument("name")
    _peer_options(add)
    add.set_defaults(func=_cmd_profiles)
    remove = actions.add_parser("remove")
    remove.add_argument("name")
    remove.set_defaults(func=_cmd_profiles)
    p = sub.add_parser("send", help="C-STORE (or STOW-RS) DICOM files, such as bcir export's, to the archive")
    _peer_options(p)
    p.add_argument("files", nargs="+")
    p.set_defaults(func=_cmd_send)
    p = sub.add_parser("bench", help="throughput: our node receiving from 1 and 4 associations; with an archive, "
                                     "retrieving a study from it")
    _peer_options(p)
    p.add_argument("--instances", type=int, default=8, help="synthetic mammograms per run (default 8)")
    p.add_argument("--repeats", type=int, default=3, help="runs per figure, whose median is reported (default 3)")
    p.add_argument("--size", default="3328x2560", help="ROWSxCOLUMNS of the 16-bit instances (default 3328x2560)")
    p.add_argument("--study", help="the archive's study to retrieve (default: its MG study with the most instances)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_bench)


__all__ = ["register"]
