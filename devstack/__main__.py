"""`python -m devstack up|down|reset`: what `make up`, `make down` and `make reset` run."""

from __future__ import annotations

import sys

from devstack.stack import StackError, run_down, run_reset, run_up

COMMANDS = {"up": run_up, "down": run_down, "reset": run_reset}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in COMMANDS:
        print(f"usage: python -m devstack {{{'|'.join(COMMANDS)}}}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[argv[0]]()
    except StackError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
