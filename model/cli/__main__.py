"""``python -m model.cli``: the same as ``bcir``."""
import sys

from model.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
