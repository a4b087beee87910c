"""The attribute, span and metric names Seawall emits, in one place.

The ``gen_ai.*`` names follow the OpenTelemetry GenAI semantic conventions as released with
opentelemetry-semantic-conventions 0.6x (still marked *Development*): when they are renamed,
this module is the only one to change. ``seawall.*`` names are our own.
"""

from __future__ import annotations

from typing import Final

# operations (gen_ai.operation.name) -------------------------------------------------------
INVOKE_AGENT: Final = "invoke_agent"
INVOKE_WORKFLOW: Final = "invoke_workflow"
EXECUTE_TOOL: Final = "execute_tool"
CHAT: Final = "chat"

# GenAI attributes -------------------------------------------------------------------------
OPERATION_NAME: Final = "gen_ai.operation.name"
AGENT_NAME: Final = "gen_ai.agent.name"
TOOL_NAME: Final = "gen_ai.tool.name"
TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
REQUEST_MODEL: Final = "gen_ai.request.model"
PROVIDER_NAME: Final = "gen_ai.provider.name"
USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
TOKEN_TYPE: Final = "gen_ai.token.type"  # noqa: S105 - an attribute name
ERROR_TYPE: Final = "error.type"

# Seawall attributes -----------------------------------------------------------------------
RUN_ID: Final = "seawall.run_id"
WORKFLOW: Final = "seawall.workflow"
NODE: Final = "seawall.node"
ATTEMPT: Final = "seawall.attempt"
ATTEMPTS: Final = "seawall.attempts"
STATUS: Final = "seawall.status"
ERROR_CLASS: Final = "seawall.error_class"
FAILURE_CAUSE: Final = "seawall.failure_cause"
IDEMPOTENCY_KEY: Final = "seawall.idempotency_key"
STEP: Final = "seawall.step"
TRIES: Final = "seawall.tries"
MUTATING: Final = "seawall.mutating"
BACKOFF_SECONDS: Final = "seawall.backoff_seconds"
REPLAY_OF: Final = "seawall.replay_of"
REPLAY_MODE: Final = "seawall.replay_mode"
PARENT_RUN_ID: Final = "seawall.parent_run_id"
COST_USD: Final = "seawall.cost_usd"
VERIFIERS: Final = "seawall.verifiers"
PASSED: Final = "seawall.passed"
HANDOFF_ID: Final = "seawall.handoff_id"
HANDOFF_KIND: Final = "seawall.handoff_kind"

# span names and events --------------------------------------------------------------------
VERIFY_SPAN: Final = "seawall.verify"
HANDOFF_SPAN: Final = "seawall.handoff"
ATTEMPT_EVENT: Final = "seawall.attempt"
RETRY_EVENT: Final = "seawall.retry"

# metrics (OpenTelemetry instruments) ------------------------------------------------------
CLIENT_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
CLIENT_TOKEN_USAGE: Final = "gen_ai.client.token.usage"  # noqa: S105 - a metric name
TOOL_DURATION: Final = "seawall.tool.duration"
RUNS: Final = "seawall.runs"
RETRIES: Final = "seawall.retries"
COST: Final = "seawall.cost"
