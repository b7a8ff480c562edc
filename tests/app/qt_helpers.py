"""Helpers shared by the GUI tests."""

TIMEOUT_MS = 60_000


def open_root(qtbot, window, root, timeout_ms: int = TIMEOUT_MS):
    """Open ``root`` in ``window`` and wait for its index; returns the index."""
    with qtbot.waitSignal(window.indexReady, timeout=timeout_ms) as blocker:
        window.open_path(root)
    return blocker.args[0]
