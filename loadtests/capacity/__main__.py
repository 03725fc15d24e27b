"""`python -m loadtests.capacity RUN_FOLDER` (see loadtests/capacity/cli.py)."""

import sys

from loadtests.capacity.cli import main

sys.exit(main())
