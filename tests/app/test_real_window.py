"""The real app in a real X server, driven with real key events (issue 10: the offscreen tests missed what this sees).

Xvfb (1920x1080, its own free display number), the app started as ``python
main.py DEMO`` is, on Qt's xcb platform plugin (so a missing system library
fails here as it does on a reader's desktop), on 4 small demo patients. The
window is given the keyboard focus, then three cases are walked with
``xdotool key n``, reading each a while (until the app has prefetched the
next case, so that the next is shown from memory as in a real session).
After each case has had its AI results drawn, its Findings and Review panels
must show them: no "AI waiting…"/"AI pending…", and the
Review's AI line a score with Agree enabled. Once without a window manager,
once under matchbox (a small EWMH window manager from Debian), because focus
and activation differ between the two.

What the panels showed is read from outside the app through
``tests/app/real_window_driver.py`` (a JSON file the running app writes). A
screenshot of the whole screen (ImageMagick's ``import``) is taken after each
case into a folder this test prints (``$REAL_WINDOW_SHOTS`` chooses it).

Xvfb, xdotool, ImageMagick, matchbox and the xcb libraries are Debian packages
(``.ci/run`` installs them); when one is missing the test fails with the
package to install, it does not skip.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.platform_check import check_plugin, install_command, packages_for, pyside_dir

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("real_window_driver.py")
PATIENTS = 4
CASES = 3
# Waits, never speed checks: how long the app gets before the test gives up on a step.
START_WAIT_S = 120  # app started and the demo indexed
FOCUS_WAIT_S = 15
NEXT_WAIT_S = 30  # the next case on screen after N
CASE_WAIT_S = 240  # a case's panels filled (the AI of a small case takes seconds on a 2-core CPU)
SETTLE_S = 3.0  # once the AI is drawn on every CC view, the panels get this long to show it too
QUIT_WAIT_S = 20
TOOLS = {"Xvfb": "xvfb", "xdotool": "xdotool", "import": "imagemagick"}
WINDOW_MANAGERS = {"matchbox-window-manager": "matchbox-window-manager"}
WAITING_WORDS = ("waiting", "pending")


def require(tools: dict[str, str]) -> None:
    """Fail, naming the Debian packages, when a command-line tool is not installed."""
    missing = {tool: package for tool, package in tools.items() if shutil.which(tool) is None}
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: {install_command(sorted(set(missing.values())))} "
                    "(.ci/run installs it)", pytrace=False)


def require_xcb_libraries() -> None:
    pyside = pyside_dir()
    check = check_plugin(pyside, "xcb")
    if check.absent:
        pytest.fail(check.absent, pytrace=False)
    if check.missing:
        packages, unknown = packages_for(check.missing)
        pytest.fail(f"Qt's xcb plugin cannot load, {', '.join(check.missing)} missing: {install_command(packages)}"
                    + (f" (no package known for {', '.join(unknown)})" if unknown else ""), pytrace=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """4 small demo patients, written by the command line the README gives (``bcir demo-data``)."""
    out = tmp_path_factory.mktemp("real-window-demo") / "CBIS-DDSM"
    subprocess.run([sys.executable, "-m", "model.cli", "demo-data", str(out), "--patients", str(PATIENTS),
                    "--seed", "7", "--size", "small"], check=True, capture_output=True, cwd=ROOT)
    return out


class XServer:
    """Xvfb on a display number it picks itself (-displayfd), optionally with a window manager."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []
        self.display = ""

    def start(self) -> str:
        read_fd, write_fd = os.pipe()
        log = open(self.log_dir / "xvfb.log", "wb")
        proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                                pass_fds=(write_fd,), stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        os.close(write_fd)
        number = b""
        deadline = time.monotonic() + 30
        while not number.endswith(b"\n") and time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([read_fd], [], [], 0.5)
            if ready:
                chunk = os.read(read_fd, 16)
                if not chunk:
                    break
                number += chunk
        os.close(read_fd)
        if not number.strip().isdigit():
            self.stop()
            pytest.fail(f"Xvfb did not start: {(self.log_dir / 'xvfb.log').read_text(errors='replace')[-500:]}",
                        pytrace=False)
        self.display = f":{number.strip().decode()}"
        return self.display

    def start_window_manager(self, command: str) -> None:
        log = open(self.log_dir / "window-manager.log", "wb")
        proc = subprocess.Popen([command, "-display", self.display], stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        # a window manager owns the screen's WM_S0 selection once it runs; xdotool can ask for its name
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"{command} exited at once: {(self.log_dir / 'window-manager.log').read_text()[-300:]}",
                            pytrace=False)
            if subprocess.run(["xdotool", "get_desktop"], env={**os.environ, "DISPLAY": self.display},
                              capture_output=True).returncode == 0:
                return
            time.sleep(0.2)
        pytest.fail(f"{command} did not take the screen within 15 s", pytrace=False)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs = []


class App:
    """The app under the driver, and what it last wrote."""

    def __init__(self, demo: Path, display: str, work: Path) -> None:
        self.state_file = work / "state.json"
        self.log_file = work / "app.log"
        runtime = work / "xdg-runtime"
        runtime.mkdir(mode=0o700)
        env = {key: value for key, value in os.environ.items() if key not in ("WAYLAND_DISPLAY", "XDG_SESSION_TYPE")}
        env.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", XDG_RUNTIME_DIR=str(runtime),
                   XDG_CONFIG_HOME=str(work / "config"))  # BCIR_DATA_DIR / BCIR_CACHE_DIR: the test's own (conftest)
        self.env = env
        self.proc = subprocess.Popen([sys.executable, str(DRIVER), str(self.state_file), str(demo)], cwd=ROOT, env=env,
                                     stdout=open(self.log_file, "wb"), stderr=subprocess.STDOUT)

    def state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def log_tail(self) -> str:
        text = self.log_file.read_text(errors="replace").strip() if self.log_file.exists() else ""
        return " | ".join(text.splitlines()[-6:]) or "(nothing)"

    def wait_for(self, what: str, ok, timeout_s: float, *, quiet: bool = False) -> dict:
        """The first state for which ``ok(state)`` holds; fails (or, ``quiet``, returns the last state) on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.state()
            if ok(state):
                return state
            if self.proc.poll() is not None:
                pytest.fail(f"the app exited (status {self.proc.returncode}) while waiting for {what}; its output: "
                            f"{self.log_tail()}", pytrace=False)
            if time.monotonic() > deadline:
                if quiet:
                    return state
                pytest.fail(f"no {what} within {timeout_s:.0f} s; last state: {brief(state)}; app output: "
                            f"{self.log_tail()}", pytrace=False)
            time.sleep(0.1)

    def xdotool(self, *args: str) -> None:
        result = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"xdotool {' '.join(args)} failed: {result.stderr.strip()}", pytrace=False)

    def screenshot(self, path: Path) -> None:
        result = subprocess.run(["import", "-window", "root", str(path)], env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"import -window root failed: {result.stderr.strip()}", pytrace=False)

    def quit(self) -> str:
        """Ctrl+Q as a reader quits; what happened."""
        if self.proc.poll() is None:
            subprocess.run(["xdotool", "key", "ctrl+q"], env=self.env, capture_output=True)
            try:
                self.proc.wait(QUIT_WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                return f"Ctrl+Q did not close the app within {QUIT_WAIT_S} s: terminated"
        return f"exited with status {self.proc.returncode}"


def stop_all(app: App | None, server: XServer) -> None:
    """After a walk, passed or failed: the app killed if it still runs, then the X server and window manager."""
    if app is not None and app.proc.poll() is None:
        app.proc.kill()
        app.proc.wait()
    server.stop()


def waiting(text) -> bool:
    return not isinstance(text, str) or any(word in text.lower() for word in WAITING_WORDS)


def panel_problems(state: dict) -> list[str]:
    """Why the case on screen's Findings and Review do not show its AI result yet (empty: they do)."""
    patient = state.get("patient")
    findings, review = state.get("findings") or {}, state.get("review") or {}
    problems = []
    if state.get("modal"):
        problems.append(f"a dialog is open over the window: {state['modal']}")
    if findings.get("patient") != patient:
        problems.append(f"Findings is about {findings.get('patient')}, not {patient}")
    rows = findings.get("rows")
    if not isinstance(rows, list) or not rows:
        problems.append(f"Findings lists no image: {rows!r}")
    elif any(waiting(row) for row in rows):
        problems.append(f"Findings rows say {[r for r in rows if waiting(r)]!r}")
    if waiting(findings.get("summary")):
        problems.append(f"Findings says {' / '.join(str(findings.get('summary')).splitlines()[1:])!r}")
    if review.get("patient") != patient:
        problems.append(f"Review is about {review.get('patient')}, not {patient}")
    line = review.get("ai_line")
    if not isinstance(line, str) or "%" not in line or "no result" in line or waiting(line):
        problems.append(f"Review's AI line says {line!r}")
    if review.get("agree_enabled") is not True:
        problems.append("Agree with AI is disabled")
    return problems


def ai_drawn(state: dict) -> bool:
    """The app has drawn its AI result on every CC view of the case on screen (what the panels should then show)."""
    views = state.get("cc_views")
    return isinstance(views, int) and views > 0 and state.get("ai_drawn") == views


def next_case_ready(state: dict, patient: str) -> bool:
    """The AI is idle and has the score of the patient after ``patient`` in the worklist (its prefetch is done)."""
    patients, scores = state.get("worklist_patients"), state.get("worklist_scores")
    if state.get("ai_busy") is not False or not isinstance(patients, list) or not isinstance(scores, dict):
        return False
    later = patients[patients.index(patient) + 1:] if patient in patients else []
    return not later or scores.get(later[0]) is not None


def brief(state: dict) -> str:
    if not state:
        return "(the app wrote nothing yet)"
    if "error" in state:
        return state["error"]
    return (f"patient {state.get('patient')}, window {state.get('window')}, focus {state.get('focus')}, "
            f"status bar {state.get('status_bar')!r}")


@pytest.mark.parametrize("window_manager", [None, "matchbox-window-manager"], ids=["no-window-manager", "matchbox"])
def test_walk_three_cases_with_the_keyboard(demo, tmp_path, capsys, window_manager):
    require(TOOLS | ({window_manager: WINDOW_MANAGERS[window_manager]} if window_manager else {}))
    require_xcb_libraries()
    shots = Path(os.environ["REAL_WINDOW_SHOTS"]) / (window_manager or "no-window-manager") \
        if os.environ.get("REAL_WINDOW_SHOTS") else tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    with capsys.disabled():
        print(f"\nreal-window screenshots ({window_manager or 'no window manager'}): {shots}")
    started = time.monotonic()
    server = XServer(shots)
    app = None
    try:
        display = server.start()
        if window_manager:
            server.start_window_manager(window_manager)
        app = App(demo, display, tmp_path)
        state = app.wait_for("window with the demo indexed", lambda s: (s.get("window") or {}).get("visible")
                             and f"{PATIENTS} patients" in str(s.get("status_bar")), START_WAIT_S)
        assert state["platform"] == "xcb"
        window_id = str(state["window"]["id"])
        # with a window manager, ask it (EWMH _NET_ACTIVE_WINDOW); without one, set the X input focus directly
        app.xdotool("windowactivate" if window_manager else "windowfocus", window_id)
        app.wait_for("keyboard focus on the window", lambda s: (s.get("window") or {}).get("active"), FOCUS_WAIT_S)
        app.screenshot(shots / "0-opened.png")

        seen: list[tuple[str, list[str], str]] = []  # patient, problems, screenshot
        for case in range(1, CASES + 1):
            previous = app.state().get("patient")
            app.xdotool("key", "n")
            state = app.wait_for(f"case {case} after N (the one before: {previous})",
                                 lambda s: s.get("patient") not in (None, previous), NEXT_WAIT_S)
            patient = state["patient"]
            drawn_at: list[float] = []

            def settled(s: dict) -> bool:
                if s.get("patient") != patient:
                    return True  # moved on by itself: reported below
                if not panel_problems(s) or s.get("modal"):
                    return True
                if ai_drawn(s):
                    drawn_at.append(time.monotonic())
                    return time.monotonic() - drawn_at[0] >= SETTLE_S
                return False

            state = app.wait_for(f"AI result of {patient}", settled, CASE_WAIT_S, quiet=True)
            shot = shots / f"{case}-{patient}.png"
            app.screenshot(shot)
            problems = panel_problems(state)
            if state.get("patient") != patient:
                problems.insert(0, f"the app moved on to {state.get('patient')} by itself")
            elif problems and not ai_drawn(state):
                problems.append(f"the AI drew {state.get('ai_drawn')} of {state.get('cc_views')} CC views "
                                f"within {CASE_WAIT_S} s")
            elif problems:
                score = (state.get("worklist_scores") or {}).get(patient)
                problems.append(f"although the AI result is drawn on all {state.get('cc_views')} CC views "
                                f"(worklist score {score})")
            seen.append((patient, problems, shot.name))
            if state.get("modal"):
                break  # a dialog takes the keys: N would not reach the window
            # the reader reads the case: meanwhile the app prefetches the next one, images and AI, so that it
            # is shown from memory (the path where the panels stayed at "AI waiting…", issue 10 item 1)
            app.wait_for(f"the case after {patient} prefetched", lambda s: next_case_ready(s, patient), CASE_WAIT_S,
                         quiet=True)
        quit_note = app.quit()
    finally:
        stop_all(app, server)

    report = [f"case {n} {patient}: " + ("filled" if not problems else "; ".join(problems)) + f" [{shot}]"
              for n, (patient, problems, shot) in enumerate(seen, 1)]
    with capsys.disabled():
        print(f"real-window walk ({window_manager or 'no window manager'}), {time.monotonic() - started:.0f} s: "
              + " | ".join(report) + f" | quit: {quit_note}")
    failed = [line for line, (_, problems, _) in zip(report, seen) if problems]
    if failed:
        pytest.fail(f"panels not filled in the real window (screenshots in {shots}): " + " | ".join(failed),
                    pytrace=False)
    if not len({patient for patient, _, _ in seen}) == len(seen) == CASES:
        pytest.fail(f"expected {CASES} different cases, saw {[p for p, _, _ in seen]}; screenshots in {shots}",
                    pytrace=False)


def test_read_three_cases_in_reading_mode_with_the_keyboard(demo, tmp_path, capsys, monkeypatch):
    """Reading mode in the real window, keys only: Ctrl+Shift+R, Return on the reader's name, then F9 (normal both
    breasts, next case) three times. No ground truth in any widget at any step; each read is in the database."""
    from model.reading.reads import Reader
    from model.reading.store import ReadStore

    require(TOOLS)
    require_xcb_libraries()
    shots = Path(os.environ["REAL_WINDOW_SHOTS"]) / "reading" if os.environ.get("REAL_WINDOW_SHOTS") \
        else tmp_path / "reading-shots"
    shots.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp_path / 'reads.sqlite'}"
    with ReadStore(url) as store:
        store.add_reader(Reader("AA", "Dr A"))
    monkeypatch.setenv("BCIR_READS_DB", url)
    server = XServer(shots)
    app = None
    seen: list[tuple[str, str, list]] = []
    try:
        display = server.start()
        app = App(demo, display, tmp_path)
        state = app.wait_for("window with the demo indexed", lambda s: (s.get("window") or {}).get("visible")
                             and f"{PATIENTS} patients" in str(s.get("status_bar")), START_WAIT_S)
        app.xdotool("windowfocus", str(state["window"]["id"]))
        app.wait_for("keyboard focus on the window", lambda s: (s.get("window") or {}).get("active"), FOCUS_WAIT_S)
        app.xdotool("key", "ctrl+shift+r")
        app.wait_for("the Start reading dialog", lambda s: (s.get("modal") or {}).get("title") == "Start reading",
                     NEXT_WAIT_S)
        app.screenshot(shots / "0-start-reading.png")
        app.xdotool("key", "Return")
        state = app.wait_for("reading mode with a case open",
                             lambda s: (s.get("reading") or {}).get("mode") == "READING as Dr A (AA)"
                             and s.get("patient") and not s.get("modal"), NEXT_WAIT_S)
        # without a window manager nobody gives the focus back when the dialog closes: the reader clicks the window
        app.xdotool("windowfocus", str(state["window"]["id"]))
        app.wait_for("keyboard focus back on the window", lambda s: (s.get("window") or {}).get("active"),
                     FOCUS_WAIT_S)
        for case in range(1, CASES + 1):
            patient = state["patient"]
            state = app.wait_for(f"case {case} ({patient}) shown for a first read",
                                 lambda s: "first read" in str((s.get("reading") or {}).get("header")), NEXT_WAIT_S)
            shot = shots / f"{case}-{patient}.png"
            app.screenshot(shot)
            reading = state["reading"]
            seen.append((patient, shot.name, list(reading["truth_texts"]) + (["AI shown"] if not reading["ai_hidden"]
                                                                              else [])))
            app.xdotool("key", "F9")
            state = app.wait_for(f"the read of {patient} committed",
                                 lambda s: str((s.get("reading") or {}).get("message")).startswith("Read committed")
                                 or s.get("patient") != patient, NEXT_WAIT_S)
            if case < CASES:
                state = app.wait_for(f"the case after {patient}", lambda s: s.get("patient") not in (None, patient),
                                     NEXT_WAIT_S)
        app.wait_for("the done list counting three", lambda s: "Done (3)" in (s.get("reading") or {}).get("tabs", []),
                     NEXT_WAIT_S)
        quit_note = app.quit()
    finally:
        stop_all(app, server)
    with capsys.disabled():
        said = [f"{patient}: {problems or 'no truth, AI hidden'} [{shot}]" for patient, shot, problems in seen]
        print(f"\nreal-window reading: {' | '.join(said)} | quit: {quit_note}")
    assert [problems for _, _, problems in seen] == [[], [], []]
    assert len({patient for patient, _, _ in seen}) == CASES
    with ReadStore(url) as store:
        rows = [r for r in store.export() if r["reader"] == "AA"]
        assert sorted({r["case_id"] for r in rows}) == sorted(p for p, _, _ in seen)
        assert {(r["outcome"], r["score"]) for r in rows} == {("routine", "1")}


def test_a_missing_tool_fails_naming_its_package(monkeypatch):
    """Without Xvfb, xdotool or ImageMagick the walk cannot run: that is a failure with the package to install."""
    monkeypatch.setattr(shutil, "which", lambda tool: None if tool in ("xdotool", "import") else f"/usr/bin/{tool}")
    with pytest.raises(pytest.fail.Exception,
                       match=r"^xdotool, import not installed: (sudo )?apt-get install -y imagemagick xdotool "):
        require(TOOLS)
    monkeypatch.setattr(shutil, "which", lambda tool: f"/usr/bin/{tool}")
    require(TOOLS)
