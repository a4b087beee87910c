"""Resolving a step left in doubt from the run page: did its side effect happen or not?

The decision is the operator's (they checked the target system); it is recorded with their name
through ``app.dlq.resolve``, exactly as ``seawall dlq resolve`` records it, and a later redrive
serves the step (it happened) or re-issues it with its original key (it did not).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from seawall.dashboard._actions import acting, failed, form_text, with_done
from seawall.dashboard._state import audit, state
from seawall.errors import SeawallError

if TYPE_CHECKING:
    from starlette.datastructures import FormData
    from starlette.requests import Request

    from seawall.dashboard._security import Identity

_NO_RESULT = object()


@acting
async def resolve(request: Request, form: FormData, identity: Identity) -> Response:
    """Record what became of an in-doubt step: it happened (optional JSON result) or not."""
    run_id = request.path_params["run_id"]
    decision = form_text(form, "decision")
    if decision not in ("happened", "did_not_happen"):
        return failed(request, "Say whether the side effect happened or not.", 400)
    try:
        seq = int(form_text(form, "step"))
    except ValueError:
        return failed(request, "The form names no step; resolve from the run's page.", 400)
    result: Any = _NO_RESULT
    raw = form_text(form, "result")
    if decision == "happened" and raw:
        try:
            result = json.loads(raw)
        except ValueError as exc:
            message = f"The result is not JSON ({exc}); leave it empty or fix it."
            return failed(request, message, 400)
    note = form_text(form, "note") or None
    dlq = state(request).reader.dlq
    kwargs: dict[str, Any] = {"happened": decision == "happened", "step": seq, "note": note}
    if result is not _NO_RESULT:
        kwargs["result"] = result
    try:
        await run_in_threadpool(lambda: dlq.resolve(run_id, by=identity.name, **kwargs))
    except SeawallError as exc:
        return failed(request, exc)
    await audit(request, "resolve_step", run_id, step=seq, decision=decision, note=note)
    return RedirectResponse(with_done(f"/runs/{run_id}", "resolved"), status_code=303)
