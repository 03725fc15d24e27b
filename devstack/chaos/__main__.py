"""`python -m devstack.chaos`: what `make chaos` runs."""

from __future__ import annotations

import sys

from devstack.chaos.suite import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
