"""The Seawall exception tree.

Every error Seawall raises derives from :class:`SeawallError`, carries a stable ``code``,
structured fields (run id, step, agent, ...) and a message that says what went wrong and
what to do about it. Errors serialise to JSON with :meth:`SeawallError.to_dict`; the ledger
stores that form.

::

    SeawallError
    ├── ConfigurationError          bad arguments to Seawall(), a policy or a decorator
    │   ├── LedgerURLError          a ledger URL with an unknown scheme or a bad path
    │   └── MissingExtraError       an option needs an extra that is not installed (ImportError)
    ├── RegistrationError           an agent or tool not registered with this app
    ├── SerializationError          a value that is not JSON-serialisable (names the path)
    ├── PayloadTooLargeError        a payload over the app's size limit
    ├── RunNotFoundError            an unknown run id
    ├── AmbiguousIdError            an id prefix that matches several runs or hand-offs (lists them)
    ├── UsageError                  an API used in the wrong place (sync API inside a loop)
    ├── InputError                  a run's inputs do not fit its agent's signature
    ├── LeaseLostError              another process took the run over (this one stalled past
    │                               its lease); the attempt stops before any further call
    ├── IntegrationError            an integration's framework is missing or outside its range
    ├── RunFailedError              RunResult.raise_for_status() on a run that did not succeed
    ├── WaitTimeoutError            a run did not end within the time a caller waited for it
    ├── ExecutorError               the executor cannot take or run a run (worker lacks the agent)
    │   └── BrokerUnavailableError  the broker of a distributed executor cannot be reached
    ├── JournalDivergenceError      re-executed code asked for a different step than recorded
    │   └── ReplayDivergenceError   a recorded replay asked for what the journal does not hold
    ├── ReplayedToolError           a recorded replay re-raises a tool failure it recorded
    ├── SnapshotError               a run's input snapshot is missing or does not match its hash
    ├── InDoubtError                a mutating step whose outcome is unknown after a crash
    ├── ArtifactError               an artifact that cannot be staged or committed (names it)
    │   ├── ArtifactNameError       a name with .., an absolute path, NUL, a case collision...
    │   ├── ArtifactTooLargeError   a file over the app's artifact size limit
    │   ├── ArtifactIntegrityError  a committed file whose bytes no longer match the manifest
    │   └── DestinationError        the destination cannot be written or read
    ├── VerificationError           an output (or a mid-run value) failed its verifiers
    │   ├── ConsistencyError        two sources gave different values for the same key
    │   └── ReadBackError           a mutating call's effect is not there when read back
    ├── Overloaded                  the submission queue is full and the app does not wait
    ├── BudgetExceededError         a run went over its deadline, tool calls, tokens or cost
    ├── GuardTrippedError           a safety guard refused a call (e.g. mutations without a gate)
    ├── HandOffError                a hand-off that cannot be decided
    │   ├── HandOffNotFoundError    no hand-off with this id
    │   └── HandOffDecidedError     it was already approved or rejected
    ├── RetryableError              raise it to mark a failure transient (optional Retry-After)
    │   ├── ToolResponseError       a tool's response failed its declared schema (returns=)
    │   ├── BreakerOpenError        a breaker refused the run or call (it was not started)
    │   └── ServerWaitError         a server asked for a wait over Retry(max_server_wait=...)
    ├── PermanentError              raise it to mark a failure permanent (no retry)
    └── LedgerError                 the ledger cannot be used
        ├── LedgerCorruptedError    the file is not a readable ledger; it is never overwritten
        ├── LedgerLockedError       another process held the write lock past the busy timeout
        ├── LedgerReadOnlyError     the ledger location cannot be written
        ├── LedgerUnavailableError  the database went away
        └── SchemaVersionError      the ledger was written by a newer Seawall

Control signals that user code must not swallow by accident derive from ``BaseException``:

::

    BaseException
    ├── AttemptAbandoned            the runtime gave up on an attempt (timeout); raised at the
    │                               agent's next ctx call so it stops doing work
    └── RunCancelled                an operator cancelled the run; raised at the next ctx call
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AmbiguousIdError",
    "ArtifactError",
    "ArtifactIntegrityError",
    "ArtifactNameError",
    "ArtifactTooLargeError",
    "AttemptAbandoned",
    "BreakerOpenError",
    "BrokerUnavailableError",
    "BudgetExceededError",
    "ConfigurationError",
    "ConsistencyError",
    "DestinationError",
    "ExecutorError",
    "GuardTrippedError",
    "HandOffDecidedError",
    "HandOffError",
    "HandOffNotFoundError",
    "InDoubtError",
    "InputError",
    "IntegrationError",
    "JournalDivergenceError",
    "LeaseLostError",
    "LedgerCorruptedError",
    "LedgerError",
    "LedgerLockedError",
    "LedgerReadOnlyError",
    "LedgerURLError",
    "LedgerUnavailableError",
    "MissingExtraError",
    "Overloaded",
    "PayloadTooLargeError",
    "PermanentError",
    "ReadBackError",
    "RegistrationError",
    "ReplayDivergenceError",
    "ReplayedToolError",
    "RetryableError",
    "RunCancelled",
    "RunFailedError",
    "RunNotFoundError",
    "SchemaVersionError",
    "SeawallError",
    "SerializationError",
    "ServerWaitError",
    "SnapshotError",
    "ToolResponseError",
    "UsageError",
    "VerificationError",
    "WaitTimeoutError",
]


class SeawallError(Exception):
    """Base class of every error Seawall raises.

    Args:
        message: What went wrong and what to do about it.
        **fields: Structured context (``run_id``, ``step``, ``agent``, ``attempt``, ...).
            ``None`` values are dropped.

    Attributes:
        code: A stable, machine-readable identifier of the error kind.
        fields: The structured context given at construction.
    """

    code: ClassVar[str] = "seawall_error"

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form stored in the ledger.

        Returns:
            A dict with ``code``, ``type``, ``message`` and the structured fields.
        """
        return {
            "code": self.code,
            "type": type(self).__name__,
            "message": self.message,
            **{k: _jsonable(v) for k, v in self.fields.items()},
        }

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__.get("fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.fields))


def _rebuild(cls: type[SeawallError], message: str, fields: dict[str, Any]) -> SeawallError:
    return cls(message, **fields)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


class ConfigurationError(SeawallError, ValueError):
    """A bad argument to ``Seawall()``, a policy object or a decorator."""

    code = "configuration"


class LedgerURLError(ConfigurationError):
    """A ledger URL with an unknown scheme or an unusable path."""

    code = "ledger_url"


class MissingExtraError(ConfigurationError, ImportError):
    """An option needs an optional dependency; the message names the ``pip install`` to run."""

    code = "missing_extra"


class RegistrationError(SeawallError, LookupError):
    """An agent or tool that is not registered with this app."""

    code = "not_registered"


class SerializationError(SeawallError, TypeError):
    """A value that cannot be stored as canonical JSON.

    The ``path`` field names where inside the value the problem sits, e.g.
    ``inputs.order.items[3]``.
    """

    code = "not_serialisable"


class PayloadTooLargeError(SeawallError, ValueError):
    """A payload larger than the app's ``max_payload_bytes``."""

    code = "payload_too_large"


class RunNotFoundError(SeawallError, LookupError):
    """No run with this id exists in the ledger."""

    code = "run_not_found"


class AmbiguousIdError(SeawallError, LookupError):
    """An id prefix that matches more than one run or hand-off.

    Fields: ``prefix``, ``kind`` and ``candidates`` (the matching ids, at most a few).
    """

    code = "ambiguous_id"


class UsageError(SeawallError, RuntimeError):
    """An API used where it cannot work (for example the sync API inside an event loop)."""

    code = "usage"


class InputError(SeawallError, TypeError):
    """A run's inputs do not fit its agent's signature (a missing or an unexpected keyword).

    It is the caller's mistake, not the agent's: it is never retried and never counts toward
    a breaker.
    """

    code = "bad_input"


class LeaseLostError(SeawallError):
    """Another process took the run over while this one held it, so this attempt must stop.

    It is raised by the first write of the attempt after the takeover (or at once, when the
    heartbeat finds the lease gone): a process that stalled past its lease (a GC pause,
    ``SIGSTOP``, a long regex, a partition) never makes another tool call nor overwrites what
    the new owner wrote. Once raised, every further ``ctx`` call of the attempt raises it again.
    """

    code = "lease_lost"


class IntegrationError(SeawallError, ImportError):
    """An integration (``seawall.integrations.*``) whose framework is missing or unsupported.

    Raised when the integration module is imported; ``supported`` names the version range and
    the message names the ``pip install`` that fixes it.
    """

    code = "integration"


class RunFailedError(SeawallError):
    """Raised by :meth:`seawall.RunResult.raise_for_status` when a run did not succeed."""

    code = "run_failed"


class WaitTimeoutError(SeawallError, TimeoutError):
    """A run did not end within the time the caller waited; it goes on, ask again later."""

    code = "wait_timeout"


class ExecutorError(SeawallError):
    """The executor cannot take or run a run (for example a worker lacks the run's agent)."""

    code = "executor"


class BrokerUnavailableError(ExecutorError):
    """The broker of a distributed executor cannot be reached; nothing was submitted."""

    code = "broker_unavailable"


class JournalDivergenceError(SeawallError):
    """Re-executed agent code asked for a different step than the journal recorded.

    Fields: ``run_id``, ``step`` (sequence number), ``expected`` (what the journal holds) and
    ``got`` (what the code asked for).
    """

    code = "journal_divergence"


class ReplayDivergenceError(JournalDivergenceError):
    """A recorded replay asked for a step the original journal does not hold at that point.

    Fields: ``step``, ``expected`` (what the journal holds) and ``got`` (what the code asked for).
    """

    code = "replay_divergence"


class ReplayedToolError(SeawallError):
    """In a recorded replay, a tool call that failed in the original run fails the same way.

    Fields: ``error_type`` and ``error_message`` of the original failure.
    """

    code = "replayed_tool_error"


class SnapshotError(SeawallError):
    """A run's input snapshot is missing or its bytes do not match the recorded hash.

    Seawall never runs an agent on inputs it cannot prove are the original ones.
    """

    code = "snapshot"


class InDoubtError(SeawallError):
    """A mutating step was in flight when its process died and cannot be safely re-issued.

    The tool is not declared idempotent, so re-issuing it might repeat its side effect. Check
    the tool's target system, then decide by hand (see ``seawall show RUN_ID``).
    """

    code = "in_doubt"


class ArtifactError(SeawallError):
    """An artifact that cannot be staged or committed; the ``artifact`` field names it.

    Nothing of the run becomes visible at the destination when this is raised.
    """

    code = "artifact"


class ArtifactNameError(ArtifactError, ValueError):
    """An artifact name that is not a safe relative path (or collides with another by case)."""

    code = "artifact_name"


class ArtifactTooLargeError(ArtifactError, ValueError):
    """An artifact larger than the app's ``max_artifact_bytes``."""

    code = "artifact_too_large"


class ArtifactIntegrityError(ArtifactError):
    """A committed artifact whose bytes do not match the sha256 its manifest records."""

    code = "artifact_integrity"


class DestinationError(ArtifactError):
    """The artifact destination cannot be written (or read)."""

    code = "artifact_destination"


class VerificationError(SeawallError):
    """An output (or a value at a mid-run gate) failed its verifiers; it is not trusted.

    Fields: ``verdicts`` (name, passed, message of each verifier) and ``feedback`` (the failing
    verifiers' messages, which the next attempt sees in ``ctx.feedback``).
    """

    code = "verification_failed"


class ConsistencyError(VerificationError):
    """Two sources gave different values for the same key during one run."""

    code = "inconsistent_sources"


class ReadBackError(VerificationError):
    """A mutating call completed but reading the state back does not show its effect."""

    code = "read_back_failed"


class Overloaded(SeawallError):  # noqa: N818 - the name the design documents
    """The app (or agent) has as many runs running and queued as it accepts.

    Raised instead of waiting when ``Seawall(overload="raise")``; nothing was recorded.
    """

    code = "overloaded"


class BudgetExceededError(SeawallError):
    """A run went over one of its budgets (``limit`` names it); the run stops."""

    code = "budget_exceeded"


class GuardTrippedError(SeawallError):
    """A guard refused a call before it ran (``limit`` names it); the run stops."""

    code = "guard_tripped"


class HandOffError(SeawallError):
    """A hand-off that cannot be decided as asked."""

    code = "handoff"


class HandOffNotFoundError(HandOffError, LookupError):
    """No hand-off has this id."""

    code = "handoff_not_found"


class HandOffDecidedError(HandOffError):
    """The hand-off was already approved or rejected."""

    code = "handoff_decided"


class RetryableError(SeawallError):
    """Raise from an agent or tool to mark a failure as transient.

    Args:
        message: What failed.
        retry_after: Seconds the caller asked us to wait before the next attempt; honoured
            in full up to the retry policy's ``max_server_wait``.
        **fields: Structured context.
    """

    code = "retryable"

    def __init__(self, message: str, *, retry_after: float | None = None, **fields: Any) -> None:
        super().__init__(message, retry_after=retry_after, **fields)
        self.retry_after = retry_after


class ToolResponseError(RetryableError):
    """A tool's response does not match the schema it declares (``@app.tool(returns=...)``).

    It is stopped at the boundary, before the agent sees it. The call is retried by the tool's
    retry policy (a malformed response is often transient).
    """

    code = "tool_response_invalid"


class BreakerOpenError(RetryableError):
    """A circuit breaker refused a run or a tool call; it was not started.

    Fields: ``breaker`` (``agent:<name>`` or ``tool:<name>``), ``state`` and ``reason``. It is
    transient: ``retry_after`` is the time left before the breaker lets a probe through.
    """

    code = "breaker_open"


class ServerWaitError(RetryableError):
    """A server asked for a wait the retry policy does not allow, so the call failed.

    Raised instead of retrying sooner than asked when the wait (``Retry-After``,
    ``retry-after-ms``) is longer than ``Retry(max_server_wait=...)`` or ends past the policy's
    deadline. Fields: ``wait`` (seconds) and ``error_type`` (the error that carried the wait,
    also its ``__cause__``). ``retry_after`` is the wait, so an outer policy that allows it
    (the agent's, around a tool call) honours it in full.
    """

    code = "server_wait_too_long"


class PermanentError(SeawallError):
    """Raise from an agent or tool to mark a failure as permanent: it is not retried."""

    code = "permanent"


class LedgerError(SeawallError):
    """The ledger cannot be used."""

    code = "ledger"


class LedgerCorruptedError(LedgerError):
    """The ledger file is not a readable Seawall ledger. Seawall never overwrites it."""

    code = "ledger_corrupted"


class LedgerLockedError(LedgerError):
    """Another process held the ledger's write lock for longer than the busy timeout."""

    code = "ledger_locked"


class LedgerReadOnlyError(LedgerError):
    """The ledger location cannot be written (permissions or a read-only filesystem)."""

    code = "ledger_read_only"


class LedgerUnavailableError(LedgerError):
    """The ledger's database went away (disk error, file removed, server down)."""

    code = "ledger_unavailable"


class SchemaVersionError(LedgerError):
    """The ledger was written by a newer Seawall than this one; upgrade Seawall to use it."""

    code = "schema_version"


class AttemptAbandoned(BaseException):
    """The runtime abandoned this attempt (it timed out); raised at the agent's next ctx call.

    It derives from ``BaseException`` so that ``except Exception`` in agent code does not
    swallow it and keep the abandoned attempt doing work.
    """


class RunCancelled(BaseException):
    """An operator cancelled the run; raised at the agent's next ctx call.

    It derives from ``BaseException`` so that ``except Exception`` in agent code cannot swallow
    it and keep going.
    """

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
