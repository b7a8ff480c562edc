"""B-Cir Review's computation: I/O, preprocessing, network, inference, training, metrics.

Nothing in this package imports Qt; ``tests/model/test_no_qt.py`` checks that in a
fresh interpreter. The GUI lives in ``app/`` and only calls into here.
"""

__version__ = "0.1.0"
