"""Helpers shared by the GUI tests."""

TIMEOUT_MS = 60_000


def open_root(qtbot, window, root, timeout_ms: int = TIMEOUT_MS):
    """Open ``root`` in ``window`` and wait for its index; returns the index."""
    with qtbot.waitSignal(window.indexReady, timeout=timeout_ms) as blocker:
        window.open_path(root)
    return blocker.args[0]


def show_with_ai(qtbot, window, patient_id, timeout_ms: int = TIMEOUT_MS):
    """Select a patient and wait until its images are shown and the AI has answered for its CC views."""
    def this_patient(pid):
        return pid == patient_id

    with qtbot.waitSignals([window.viewer.caseShown, window.aiFinished], timeout=timeout_ms, order="none",
                           check_params_cbs=[this_patient, this_patient]):
        assert window.select_patient(patient_id)
