"""Seawall: make LLM agents fail safely.

Wrap your agents and tools; Seawall journals every tool call, retries what can be retried,
never repeats a completed side effect, records every run in a ledger, and resumes runs whose
process died.
"""

from seawall import artifacts
from seawall._app import Seawall, Step
from seawall._context import AsyncContext, Context
from seawall._failures import ErrorClass, FailureCause, RunStatus
from seawall._result import RunResult
from seawall.errors import (
    ArtifactError,
    ArtifactIntegrityError,
    ArtifactNameError,
    ArtifactTooLargeError,
    AttemptAbandoned,
    ConfigurationError,
    DestinationError,
    InDoubtError,
    JournalDivergenceError,
    LedgerCorruptedError,
    LedgerError,
    LedgerLockedError,
    LedgerReadOnlyError,
    LedgerUnavailableError,
    LedgerURLError,
    PayloadTooLargeError,
    PermanentError,
    RegistrationError,
    RetryableError,
    RunFailedError,
    RunNotFoundError,
    SchemaVersionError,
    SeawallError,
    SerializationError,
    UsageError,
)
from seawall.ledger import (
    ArtifactRecord,
    AttemptRecord,
    CompensationRecord,
    HandOffRecord,
    RunRecord,
    StepRecord,
)
from seawall.policies import Retry

__version__ = "0.1.0.dev0"

__all__ = [
    "ArtifactError",
    "ArtifactIntegrityError",
    "ArtifactNameError",
    "ArtifactRecord",
    "ArtifactTooLargeError",
    "AsyncContext",
    "AttemptAbandoned",
    "AttemptRecord",
    "CompensationRecord",
    "ConfigurationError",
    "Context",
    "DestinationError",
    "ErrorClass",
    "FailureCause",
    "HandOffRecord",
    "InDoubtError",
    "JournalDivergenceError",
    "LedgerCorruptedError",
    "LedgerError",
    "LedgerLockedError",
    "LedgerReadOnlyError",
    "LedgerURLError",
    "LedgerUnavailableError",
    "PayloadTooLargeError",
    "PermanentError",
    "RegistrationError",
    "Retry",
    "RetryableError",
    "RunFailedError",
    "RunNotFoundError",
    "RunRecord",
    "RunResult",
    "RunStatus",
    "SchemaVersionError",
    "Seawall",
    "SeawallError",
    "SerializationError",
    "Step",
    "StepRecord",
    "UsageError",
    "__version__",
    "artifacts",
]
