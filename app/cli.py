"""Command-line arguments of ``python main.py`` / ``bcir-review``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass
class GuiArgs:
    path: str | None
    screenshot: str | None
    timeout: float
    size: tuple[int, int]
    verbose: bool
    weights: str | None = None


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if width < 200 or height < 200:
        raise argparse.ArgumentTypeError("the window must be at least 200x200")
    return width, height


def parse_args(argv: list[str]) -> GuiArgs:
    parser = argparse.ArgumentParser(prog="bcir-review", description="B-Cir Review: read and double-read screening mammograms")
    parser.add_argument("path", nargs="?", help="a CBIS-DDSM download, a DICOM folder or one image (default: .demo/CBIS-DDSM when present)")
    parser.add_argument("--screenshot", metavar="FILE", help="open PATH, show the first case with ground truth, save the window to FILE and exit")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds --screenshot waits before giving up (default 300)")
    parser.add_argument("--size", type=_size, default=(1600, 1000), metavar="WxH", help="window size (default 1600x1000)")
    parser.add_argument("--weights", metavar="FILE", help="model file (NAME.safetensors with its NAME.json card); default: $BCIR_MODEL, else the bundled model")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    ns = parser.parse_args(argv)
    return GuiArgs(ns.path, ns.screenshot, ns.timeout, ns.size, ns.verbose, ns.weights)
