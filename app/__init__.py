"""The B-Cir Review desktop (PySide6 + pyqtgraph).

Only this package imports Qt. Every computation it shows comes from ``model/``;
the modules here gather input, run model calls in background workers and draw
the results.
"""
