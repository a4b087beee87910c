"""`python -m benchmarks`: every benchmark of the project, in one run."""

import sys

from benchmarks import bench_artifacts, bench_cascade, bench_core, bench_drift

status = bench_core.main()
bench_artifacts.main()
bench_cascade.main()
bench_drift.main()
sys.exit(status)
