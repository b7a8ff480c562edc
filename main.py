"""B-Cir Review desktop: ``python main.py [PATH] [--screenshot FILE]``."""

import sys

from app.main_window import run

if __name__ == "__main__":
    sys.exit(run())
