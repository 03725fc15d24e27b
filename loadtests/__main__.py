"""`python -m loadtests run|cleanup` (see loadtests/cli.py and loadtests/README.md)."""

import sys

from loadtests.cli import main

sys.exit(main())
