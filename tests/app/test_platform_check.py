"""``python -m app.platform_check`` (``make run`` runs it first): which system libraries Qt's platform plugin
lacks, and the one apt-get line that installs them (issue 10: "Could not load the Qt platform plugin xcb")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from app import platform_check
from app.platform_check import DEBIAN_PACKAGES, check_plugin, diagnose, not_found, packages_for, platforms_to_try

ROOT = Path(__file__).resolve().parents[2]

# What ldd printed for PySide6 6.11's libqxcb.so on a Debian 12 machine before libxcb-icccm4 and
# libxcb-keysyms1 were installed (shortened: the found libraries after libxcb-randr are left out).
LDD_XCB_BEFORE = """\
\tlinux-vdso.so.1 (0x00007ffd3b5f2000)
\tlibQt6XcbQpa.so.6 => /x/.venv/lib/python3.11/site-packages/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007f0c)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007fe54fcc1000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007fe54fcb9000)
\tlibxcb-image.so.0 => /lib/x86_64-linux-gnu/libxcb-image.so.0 (0x00007fe54fcb3000)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-randr.so.0 => /lib/x86_64-linux-gnu/libxcb-randr.so.0 (0x00007fe54fca0000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007fe54fd9b000)
"""
LDD_ALL_FOUND = "\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007fe54fc54000)\n"


def test_not_found_lists_each_missing_library_once_in_order():
    assert not_found(LDD_XCB_BEFORE) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert not_found(LDD_ALL_FOUND) == []


def test_packages_for_maps_to_debian_packages_once_and_names_unknown_libraries():
    packages, unknown = packages_for(["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0",
                                      "libglib-2.0.so.0", "libgthread-2.0.so.0", "libmadeup.so.3"])
    assert packages == ["libglib2.0-0", "libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1"]
    assert unknown == ["libmadeup.so.3"]


@pytest.mark.parametrize("environ, expected", [
    ({}, ["xcb"]),
    ({"DISPLAY": ":0"}, ["xcb"]),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, ["wayland", "xcb"]),  # Qt 6 tries Wayland first there
    ({"XDG_SESSION_TYPE": "wayland"}, ["wayland", "xcb"]),
    ({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}, ["offscreen"]),
    ({"QT_QPA_PLATFORM": "wayland;xcb"}, ["wayland", "xcb"]),
    ({"QT_QPA_PLATFORM": "xcb:nograb"}, ["xcb"]),
])
def test_platforms_to_try_follows_qt(environ, expected):
    assert platforms_to_try(environ) == expected


@pytest.fixture
def fake_pyside(tmp_path) -> Path:
    """A PySide6 folder laid out as the wheel's, with empty files: ldd is faked per file name."""
    for name in ("Qt/plugins/platforms/libqxcb.so", "Qt/plugins/platforms/libqwayland.so",
                 "Qt/plugins/platforms/libqoffscreen.so", "Qt/lib/libQt6XcbQpa.so.6", "Qt/lib/libQt6Widgets.so.6",
                 "Qt/lib/libQt6WaylandClient.so.6", "QtGui.abi3.so", "QtWidgets.abi3.so"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    return tmp_path


def fake_ldd(outputs: dict[str, str]):
    """ldd whose output for a file is ``outputs[its name]`` (every library found otherwise); records the calls."""
    def ldd(path: Path) -> str:
        ldd.calls.append(path.name)
        return outputs.get(path.name, LDD_ALL_FOUND)
    ldd.calls = []
    return ldd


def test_missing_xcb_libraries_give_one_install_line(fake_pyside):
    ldd = fake_ldd({"libqxcb.so": LDD_XCB_BEFORE, "libQt6XcbQpa.so.6": "\tlibxcb-cursor.so.0 => not found\n"})
    report = diagnose({"DISPLAY": ":0"}, fake_pyside, ldd)
    assert not report.ok
    assert report.packages == ["libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1"]
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1, libxcb-cursor.so.0 are not installed" in report.problems[0]
    assert report.display == ""
    # the plugin, its Qt helper library, the widgets library and PySide6's QtGui/QtWidgets modules
    assert set(ldd.calls) == {"libqxcb.so", "libQt6XcbQpa.so.6", "libQt6Widgets.so.6", "QtGui.abi3.so",
                              "QtWidgets.abi3.so"}


def test_everything_there_with_a_display_is_ok(fake_pyside):
    report = diagnose({"DISPLAY": ":0"}, fake_pyside, fake_ldd({}))
    assert report.ok and not report.problems and not report.notes and not report.packages


def test_no_display_is_reported_even_with_every_library(fake_pyside):
    report = diagnose({}, fake_pyside, fake_ldd({}))
    assert not report.ok
    assert report.display.startswith("no display: DISPLAY not set")


def test_a_wayland_session_needs_xcb_as_its_fallback_and_notes_what_wayland_lacks(fake_pyside):
    environ = {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}
    wayland_only = fake_ldd({"libqwayland.so": "\tlibwayland-cursor.so.0 => not found\n"})
    report = diagnose(environ, fake_pyside, wayland_only)
    assert report.ok
    assert len(report.notes) == 1 and "libwayland-cursor.so.0" in report.notes[0] and "uses xcb" in report.notes[0]
    assert "libwayland-cursor0" in report.notes[0]
    both = fake_ldd({"libqwayland.so": "\tlibwayland-cursor.so.0 => not found\n", "libqxcb.so": LDD_XCB_BEFORE})
    report = diagnose(environ, fake_pyside, both)
    assert not report.ok and report.packages == ["libxcb-icccm4", "libxcb-keysyms1"]


def test_offscreen_does_not_need_the_xcb_libraries(fake_pyside):
    report = diagnose({"QT_QPA_PLATFORM": "offscreen"}, fake_pyside, fake_ldd({"libqxcb.so": LDD_XCB_BEFORE}))
    assert report.ok and not report.notes


def test_an_unknown_library_is_named_with_how_to_find_its_package(fake_pyside):
    report = diagnose({"DISPLAY": ":0"}, fake_pyside, fake_ldd({"libqxcb.so": "\tlibxcb-new.so.7 => not found\n"}))
    assert not report.ok and report.packages == []
    assert "libxcb-new.so.7 is not installed" in report.problems[0] and "apt-file search libxcb-new.so.7" in report.problems[0]


def test_a_platform_pyside_lacks_is_reported(fake_pyside):
    report = diagnose({"QT_QPA_PLATFORM": "vnc"}, fake_pyside, fake_ldd({}))
    assert report.problems == ["PySide6 has no vnc platform plugin (libqvnc.so)"]


def test_main_prints_the_install_line_and_exits_1(fake_pyside, monkeypatch, capsys):
    monkeypatch.setattr(platform_check, "pyside_dir", lambda: fake_pyside)
    monkeypatch.setattr(platform_check, "_run_ldd", fake_ldd({"libqxcb.so": LDD_XCB_BEFORE}))
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    assert platform_check.main([]) == 1
    err = capsys.readouterr().err
    assert re.search(r"^    (sudo )?apt-get install -y libxcb-icccm4 libxcb-keysyms1$", err, re.MULTILINE), err
    assert platform_check.main(["--packages"]) == 0
    assert capsys.readouterr().out == "libxcb-icccm4 libxcb-keysyms1\n"
    monkeypatch.setattr(platform_check, "_run_ldd", fake_ldd({}))
    assert platform_check.main([]) == 0
    assert platform_check.main(["--packages"]) == 0
    assert capsys.readouterr().out == "\n"


def test_the_table_covers_every_system_library_the_real_pyside_links_to():
    """A PySide6 upgrade that links one more system library must add it to the table (else no package is named)."""
    pyside = platform_check.pyside_dir()
    listed: set[str] = set()

    def ldd(path: Path) -> str:
        out = subprocess.run(["ldd", str(path)], capture_output=True, text=True).stdout
        for soname, target in re.findall(r"^\s*(\S+)\s+=>\s+(\S+)", out, re.MULTILINE):
            if not target.startswith(str(pyside)) and not Path(target).resolve().is_relative_to(pyside.resolve()):
                listed.add(soname)
        return out

    for platform in ("xcb", "wayland", "offscreen"):
        check_plugin(pyside, platform, ldd)
    assert "libxcb-icccm.so.4" in listed and "libxcb-cursor.so.0" in listed
    assert sorted(listed - set(DEBIAN_PACKAGES)) == []


def test_the_command_reads_files_only_and_never_loads_qt():
    """Run as ``make run`` runs it: it must work where Qt itself cannot start, so it must not import Qt."""
    env = {**os.environ, "DISPLAY": ":0"}
    env.pop("QT_QPA_PLATFORM", None)
    code = ("import sys, runpy\n"
            "try:\n    runpy.run_module('app.platform_check', run_name='__main__')\n"
            "except SystemExit as exit:\n"
            "    loaded = sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6')))\n"
            "    print('exit', exit.code, 'qt', loaded)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.stdout.startswith("exit "), result.stderr
    assert result.stdout.rstrip().endswith("qt []"), result.stdout
    missing = check_plugin(platform_check.pyside_dir(), "xcb").missing
    assert result.stdout.startswith("exit 1" if missing else "exit 0"), result.stdout + result.stderr


def test_make_run_checks_the_platform_before_it_opens_the_app():
    result = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    check = next(i for i, line in enumerate(lines) if "-m app.platform_check" in line)
    start = next(i for i, line in enumerate(lines) if "main.py" in line)
    assert check < start
