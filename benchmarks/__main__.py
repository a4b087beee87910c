"""`python -m benchmarks`: every benchmark of the project, in one run."""

import sys

from benchmarks.bench_core import main

sys.exit(main())
