"""``python -m seawall``: the ``seawall`` command line."""

from seawall.cli import main

main()
