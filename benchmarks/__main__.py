"""`python -m benchmarks`: every benchmark of the project, in one run."""

import sys

from benchmarks import (
    bench_artifacts,
    bench_cascade,
    bench_celery,
    bench_core,
    bench_dashboard,
    bench_drift,
    bench_faults,
    bench_postgres,
    bench_semantic,
    bench_throughput,
    bench_tracing,
)

status = bench_core.main()
bench_artifacts.main()
bench_cascade.main()
bench_tracing.main()
bench_drift.main()
bench_semantic.main([])
bench_postgres.main(sys.argv[1:])
bench_throughput.main([])  # prints [ok], [over] or [miss] for each throughput goal
bench_dashboard.main([])
celery_ok = bench_celery.main([])  # false when a check failed (a kill scenario that killed nothing)
faults = bench_faults.main(["--quick"])  # non-zero on a violation of the fault matrix
sys.exit(status or faults or (0 if celery_ok else 1))
