"""`python -m loadtests.regression`: see loadtests/regression/cli.py."""

import sys

from loadtests.regression.cli import main

sys.exit(main())
