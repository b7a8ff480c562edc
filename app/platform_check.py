"""Before the window opens: can Qt load its platform plugin here? ``python -m app.platform_check``.

On a fresh Debian or Ubuntu desktop PySide6 starts with "Could not load the Qt
platform plugin "xcb"": the wheel ships Qt's X11 plugin (``libqxcb.so`` and
``libQt6XcbQpa.so.6``) but not the system libraries it links to, and some of
those (``libxcb-cursor0``, ``libxcb-icccm4``, ``libxcb-keysyms1``) are not part of
a default install. This check runs ``ldd`` on the plugin and on the Qt libraries
the app loads, maps every library ldd reports "not found" to its Debian package
and prints the one ``apt-get install`` line that brings them. It reads files
only: no Qt is started, no root is needed. ``make run`` runs it first.

Which platform is checked, the way Qt 6 chooses it:

- ``QT_QPA_PLATFORM`` set (``xcb``, ``wayland;xcb``, ``offscreen``...): Qt tries
  those plugins in order, so the check passes when one of them can load; xcb
  is reported when it is among them.
- not set: X11's ``xcb``. In a Wayland session (``WAYLAND_DISPLAY`` set) Qt
  tries ``wayland`` first and falls back to ``xcb`` (XWayland); the xcb
  libraries are still required, as they are the fallback that always works,
  and what the Wayland plugin lacks is printed as a note.
- no ``DISPLAY`` and no ``WAYLAND_DISPLAY`` for a plugin that needs one: the
  app could not open a window at all, which the check says too.

Exit status: 0 the app can start, 1 something is missing (the reason is
printed, with the command that fixes it), 2 the check itself could not run
(PySide6 not installed).

``--packages`` prints only the Debian packages missing for X11 (space-separated,
nothing when all are there) whatever the display: ``.ci/run`` installs those.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Shared libraries that PySide6 6.x's Qt links to and does not ship, and the Debian 12 / Ubuntu package
# of each: the closure ``ldd`` lists for the xcb, wayland and offscreen plugins, libQt6XcbQpa, libQt6Gui,
# libQt6Widgets and PySide6's QtGui/QtWidgets modules, each mapped with ``dpkg -S``.
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb.so.1": "libxcb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libXau.so.6": "libxau6",
    "libXdmcp.so.6": "libxdmcp6",
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libOpenGL.so.0": "libopengl0",
    "libGLdispatch.so.0": "libglvnd0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libpng16.so.16": "libpng16-16",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libsystemd.so.0": "libsystemd0",
    "libexpat.so.1": "libexpat1",
    "libffi.so.8": "libffi8",
    "libpcre2-8.so.0": "libpcre2-8-0",
    "libbrotlicommon.so.1": "libbrotli1",
    "libbrotlidec.so.1": "libbrotli1",
    "libbsd.so.0": "libbsd0",
    "libmd.so.0": "libmd0",
    "libcap.so.2": "libcap2",
    "libgcrypt.so.20": "libgcrypt20",
    "libgpg-error.so.0": "libgpg-error0",
    "liblz4.so.1": "liblz4-1",
    "liblzma.so.5": "liblzma5",
    "libzstd.so.1": "libzstd1",
    "libz.so.1": "zlib1g",
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
    "libc.so.6": "libc6",
    "libm.so.6": "libc6",
    "libdl.so.2": "libc6",
    "libpthread.so.0": "libc6",
}

# What each platform plugin needs besides itself (Qt's own libraries, in PySide6/Qt/lib).
PLUGIN_LIBRARIES = {"xcb": ["libQt6XcbQpa.so.6"], "wayland": ["libQt6WaylandClient.so.6"]}
# Loaded by every platform: the widgets the app is made of, through PySide6's modules.
APP_LIBRARIES = ["libQt6Widgets.so.6"]
APP_MODULES = ["QtGui", "QtWidgets"]
NEEDS_DISPLAY = {"xcb": "DISPLAY", "wayland": "WAYLAND_DISPLAY"}

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def not_found(ldd_output: str) -> list[str]:
    """The libraries ``ldd`` reports as "not found", once each, in its order."""
    return list(dict.fromkeys(_NOT_FOUND.findall(ldd_output)))


def packages_for(libraries: list[str]) -> tuple[list[str], list[str]]:
    """(Debian packages that provide ``libraries``, once each, sorted; libraries with no known package)."""
    known = sorted({DEBIAN_PACKAGES[lib] for lib in libraries if lib in DEBIAN_PACKAGES})
    return known, [lib for lib in libraries if lib not in DEBIAN_PACKAGES]


def install_command(packages: list[str]) -> str:
    """The one line that installs ``packages`` (sudo only when not root)."""
    sudo = "" if hasattr(os, "geteuid") and os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get install -y {' '.join(packages)}"


def platforms_to_try(environ: dict[str, str]) -> list[str]:
    """The platform plugins Qt will try, in order (see the module's docstring)."""
    chosen = environ.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        return [name.split(":", 1)[0].strip() for name in chosen.split(";") if name.strip()]
    if environ.get("WAYLAND_DISPLAY") or environ.get("XDG_SESSION_TYPE") == "wayland":
        return ["wayland", "xcb"]
    return ["xcb"]


def pyside_dir() -> Path | None:
    """PySide6's package folder, found without importing it (importing QtGui would need the libraries)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass
class PluginCheck:
    platform: str
    files: list[Path] = field(default_factory=list)  # what ldd ran on
    missing: list[str] = field(default_factory=list)  # libraries not found
    absent: str = ""  # why the plugin could not be checked at all ("no libqfoo.so in PySide6")

    @property
    def ok(self) -> bool:
        return not self.absent and not self.missing


def _run_ldd(path: Path) -> str:
    result = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=False)
    return result.stdout + result.stderr


def check_plugin(pyside: Path, platform: str, ldd=None) -> PluginCheck:
    """Run ``ldd`` (``ldd(path)`` returns its output) on the platform plugin, its Qt helper library and the app's
    Qt widgets and modules."""
    ldd = ldd or _run_ldd
    check = PluginCheck(platform)
    plugin = pyside / "Qt" / "plugins" / "platforms" / f"libq{platform}.so"
    if not plugin.is_file():
        check.absent = f"PySide6 has no {platform} platform plugin ({plugin.name})"
        return check
    check.files = [plugin]
    for name in PLUGIN_LIBRARIES.get(platform, []) + APP_LIBRARIES:
        if (pyside / "Qt" / "lib" / name).is_file():
            check.files.append(pyside / "Qt" / "lib" / name)
    for module in APP_MODULES:
        check.files.extend(sorted(pyside.glob(f"{module}.*.so")))
    missing: dict[str, None] = {}
    for path in check.files:
        missing.update(dict.fromkeys(not_found(ldd(path))))
    check.missing = list(missing)
    return check


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)  # each a line saying which plugin cannot load and why
    packages: list[str] = field(default_factory=list)  # what to apt-get install for them
    display: str = ""  # why no window could open even with every library there
    notes: list[str] = field(default_factory=list)  # what does not stop the app

    @property
    def ok(self) -> bool:
        return not self.problems and not self.display


def _missing_text(check: PluginCheck) -> tuple[str, list[str]]:
    packages, unknown = packages_for(check.missing)
    verb = "is" if len(check.missing) == 1 else "are"
    text = f"Qt's {check.platform} platform plugin cannot load: {', '.join(check.missing)} {verb} not installed"
    if unknown:
        text += f" (no Debian package known for {', '.join(unknown)}: `apt-file search {unknown[0]}` finds it)"
    return text, packages


def diagnose(environ: dict[str, str], pyside: Path, ldd=None) -> Report:
    """What stops the app from opening its window under ``environ``, and the packages that fix it."""
    report = Report()
    platforms = platforms_to_try(environ)
    checks = [check_plugin(pyside, name, ldd) for name in platforms]
    usable = [c for c in checks if c.ok]
    # xcb, when Qt may use it, is what a desktop needs (X11, or the fallback under Wayland): its libraries are
    # required; a list without xcb needs one plugin that loads
    required = [c for c in checks if c.platform == "xcb"] or ([] if usable else checks)
    for check in checks:
        if check in required and not check.ok:
            if check.absent:
                report.problems.append(check.absent)
                continue
            text, packages = _missing_text(check)
            report.problems.append(text)
            report.packages += [p for p in packages if p not in report.packages]
        elif check not in required and check.missing:
            text, packages = _missing_text(check)
            instead = "xcb" if required else usable[0].platform
            report.notes.append(f"{text}, so Qt uses {instead}" + (f"; {install_command(packages)} adds it" if packages else ""))
    display_needed = [NEEDS_DISPLAY[c.platform] for c in checks if c.platform in NEEDS_DISPLAY]
    if display_needed and len(display_needed) == len(checks) and not any(environ.get(v) for v in display_needed):
        report.display = (
            f"no display: {' and '.join(dict.fromkeys(display_needed))} not set; start it from a desktop session "
            "(over ssh: ssh -X), or run the tests, which need none (make test)"
        )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.platform_check",
                                     description="Check that Qt can open the app's window here (no Qt is started)")
    parser.add_argument("--packages", action="store_true",
                        help="print only the Debian packages X11 (xcb) lacks, space-separated, whatever the display")
    args = parser.parse_args(argv)
    pyside = pyside_dir()
    if pyside is None:
        print("bcir-review: PySide6 is not installed in this Python (make setup installs it)", file=sys.stderr)
        return 2
    if shutil.which("ldd") is None:
        print("bcir-review: ldd not found; the platform check is skipped", file=sys.stderr)
        return 0
    if args.packages:
        xcb = check_plugin(pyside, "xcb")
        if xcb.absent:
            print(f"bcir-review: {xcb.absent}", file=sys.stderr)
            return 2
        packages, unknown = packages_for(xcb.missing)
        if unknown:
            print(f"bcir-review: no Debian package known for {', '.join(unknown)}", file=sys.stderr)
        print(" ".join(packages))
        return 1 if unknown else 0
    report = diagnose(dict(os.environ), pyside)
    for note in report.notes:
        print(f"bcir-review: note: {note}", file=sys.stderr)
    for problem in report.problems:
        print(f"bcir-review: {problem}", file=sys.stderr)
    if report.packages:
        print(f"Install them with (Debian/Ubuntu):\n    {install_command(report.packages)}", file=sys.stderr)
    if report.display:
        print(f"bcir-review: {report.display}", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
