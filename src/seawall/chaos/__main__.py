"""``python -m seawall.chaos --child ...``: one child process of a chaos session."""

import sys

from seawall.chaos._harness import child_main

if len(sys.argv) > 1 and sys.argv[1] == "--child":
    sys.exit(child_main(sys.argv[2:]))
sys.exit("use `seawall chaos run`; this entry point is for its child processes")
