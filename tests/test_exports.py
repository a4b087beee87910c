"""The public API is exactly what we mean to export."""

from __future__ import annotations

import inspect
import re

import seawall

EXPECTED = [
    "AlertRecord",
    "AlertRules",
    "AmbiguousIdError",
    "ArtifactError",
    "ArtifactIntegrityError",
    "ArtifactNameError",
    "ArtifactRecord",
    "ArtifactTooLargeError",
    "AsyncContext",
    "AttemptAbandoned",
    "AttemptRecord",
    "Breaker",
    "BreakerControls",
    "BreakerEvent",
    "BreakerOpenError",
    "BreakerState",
    "BrokerUnavailableError",
    "BudgetExceededError",
    "CallbackSink",
    "CompensationRecord",
    "ConfigurationError",
    "ConsistencyError",
    "Context",
    "DeadLetter",
    "DeadLetterQuery",
    "DeadLetterQueue",
    "DestinationError",
    "DriftReport",
    "DriftWatch",
    "ErrorClass",
    "Executor",
    "ExecutorError",
    "FailureCause",
    "From",
    "GcEntry",
    "Graph",
    "GuardTrippedError",
    "Guards",
    "HandOffDecidedError",
    "HandOffError",
    "HandOffNotFoundError",
    "HandOffRecord",
    "HandOffs",
    "InDoubtError",
    "Input",
    "InputError",
    "IntegrationError",
    "JournalDivergenceError",
    "LeaseLostError",
    "LedgerCorruptedError",
    "LedgerError",
    "LedgerLockedError",
    "LedgerReadOnlyError",
    "LedgerReads",
    "LedgerURLError",
    "LedgerUnavailableError",
    "LocalExecutor",
    "LogSink",
    "MissingExtraError",
    "OnDrift",
    "Overloaded",
    "PayloadTooLargeError",
    "PermanentError",
    "Price",
    "ReadBackError",
    "Redrive",
    "RegistrationError",
    "ReplayDivergenceError",
    "ReplayResult",
    "ReplayedToolError",
    "Retry",
    "RetryBudget",
    "RetryableError",
    "RunCancelled",
    "RunFailedError",
    "RunHandle",
    "RunNotFoundError",
    "RunRecord",
    "RunResult",
    "RunStatus",
    "SchemaVersionError",
    "Seawall",
    "SeawallError",
    "SemanticWatch",
    "SerializationError",
    "ServerWaitError",
    "SnapshotError",
    "Step",
    "StepRecord",
    "StepResolution",
    "ToolResponseError",
    "UsageError",
    "VerdictRecord",
    "VerificationError",
    "WaitTimeoutError",
    "WebhookSink",
    "__version__",
    "artifacts",
    "current_context",
    "verify",
]


def test_public_names_are_pinned() -> None:
    """__all__ is sorted and matches the pinned list."""
    assert EXPECTED == seawall.__all__
    assert sorted(seawall.__all__, key=lambda n: (n[0].islower(), n)) == seawall.__all__


def test_every_public_name_resolves() -> None:
    """Each exported name exists."""
    for name in seawall.__all__:
        assert getattr(seawall, name) is not None


def test_every_type_the_api_returns_is_exported() -> None:
    """What a public method of the app, its namespaces, handles and contexts returns is exported."""
    app = seawall.Seawall("sqlite:///:memory:")
    try:
        owners = [
            seawall.Seawall,
            *(type(getattr(app, name)) for name in ("ledger", "dlq", "handoffs", "breakers")),
            seawall.RunHandle,
            seawall.Context,
            seawall.AsyncContext,
            seawall.RunResult,
        ]
    finally:
        app.close()
    exported = {*seawall.__all__, "Any", "None", "Self", "F", "T", "Callable", "Mapping"}
    returned = {
        f"{owner.__name__}.{name} -> {word}"
        for owner in owners
        for name, member in inspect.getmembers(owner, callable)
        if not name.startswith("_")
        for word in re.findall(r"[A-Z]\w*", str(inspect.get_annotations(member).get("return", "")))
        if word not in exported
    }
    assert set() == returned
    assert {type(getattr(app, n)).__name__ for n in ("ledger", "dlq", "handoffs", "breakers")} <= {
        *seawall.__all__
    }


def test_every_error_derives_from_seawall_error() -> None:
    """All exported exception classes but the control signal derive from SeawallError."""
    errors = [getattr(seawall, n) for n in seawall.__all__ if n.endswith("Error")]
    assert all(issubclass(e, seawall.SeawallError) for e in errors)
    assert not issubclass(seawall.AttemptAbandoned, Exception)


def test_errors_serialise_with_code_and_fields() -> None:
    """A SeawallError's JSON form carries its code, type, message and fields."""
    error = seawall.RunNotFoundError("no run x", run_id="x")
    assert {
        "code": "run_not_found",
        "type": "RunNotFoundError",
        "message": "no run x",
        "run_id": "x",
    } == error.to_dict()
    assert "x" == error.run_id
