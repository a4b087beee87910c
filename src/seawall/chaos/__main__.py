"""``python -m seawall.chaos --child|--resume ...``: one child process of a chaos session.

``--child`` runs the workload under the fault plan; ``--resume`` is the competing process that
takes a stalled run over.
"""

import sys

from seawall.chaos._harness import child_main
from seawall.chaos._interrupt import resume_main

if len(sys.argv) > 1 and sys.argv[1] == "--child":
    sys.exit(child_main(sys.argv[2:]))
if len(sys.argv) > 1 and sys.argv[1] == "--resume":
    sys.exit(resume_main(sys.argv[2:]))
sys.exit("use `seawall chaos run`; this entry point is for its child processes")
