"""The official SDK's client, configured from the environment, and its errors in plain words.

The API key is read by the SDK from the environment (``OPENAI_API_KEY``, or Azure's
``AZURE_OPENAI_API_KEY`` with ``AZURE_OPENAI_ENDPOINT`` and ``OPENAI_API_VERSION``);
``OPENAI_BASE_URL`` points it at any compatible endpoint. ftui never reads the key out,
so it cannot reach a file, a log or an export.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, TypeVar

from ftui.core.config import OpenAISettings
from ftui.core.errors import ConfigError, FtuiError
from ftui.core.openai_prep import key_present

T = TypeVar("T")


class ServiceError(FtuiError):
    """The API refused or failed a request; the message says what and why, without secrets."""

    exit_code = 1


class TrainingNotAvailable(ServiceError):
    """HTTP 403 ``training_not_available``: this organisation can no longer fine-tune."""


class StopRequested(Exception):
    """A stop request arrived while waiting out a failing endpoint."""


def make_client(settings: OpenAISettings) -> Any:
    """An ``OpenAI`` (or ``AzureOpenAI``) client with ftui's timeout and retry settings.

    The SDK retries 408, 409, 429, 5xx, timeouts and dropped connections itself, with
    exponential backoff (0.5 s doubling to 8 s, honouring ``Retry-After``).
    """
    import openai  # the SDK: only in the runner, never in the TUI

    if not key_present():
        raise ConfigError("OPENAI_API_KEY is not set: export it in the shell that starts ftui "
                          "(ftui reads the key from the environment only)")
    kwargs = {"max_retries": settings.max_retries, "timeout": settings.request_timeout_s}
    if os.environ.get("AZURE_OPENAI_ENDPOINT") and not os.environ.get("OPENAI_BASE_URL"):
        return openai.AzureOpenAI(**kwargs)
    return openai.OpenAI(**kwargs)


def is_transient(exc: BaseException) -> bool:
    """A failure worth trying again later: rate limit, server error, timeout, lost connection."""
    import openai

    if isinstance(exc, (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409) or exc.status_code >= 500
    # A body that is not the JSON it should be (a proxy's error page, a truncated answer).
    return isinstance(exc, (openai.APIResponseValidationError, ValueError))


def explain(exc: BaseException, what: str) -> str:
    """One readable sentence for a failed request: what was asked, the status, OpenAI's words."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return f"{what}: no answer from OpenAI in time, even after retries"
    if isinstance(exc, openai.APIConnectionError):
        return f"{what}: cannot reach the OpenAI endpoint ({_endpoint()}), even after retries"
    if isinstance(exc, openai.APIStatusError):
        code = f", {exc.code}" if getattr(exc, "code", None) else ""
        message = _message(exc)
        hint = {401: " Check OPENAI_API_KEY.", 404: " Check the model or job id.",
                429: " The account is rate-limited or out of quota."}.get(exc.status_code, "")
        return f"{what}: OpenAI answered HTTP {exc.status_code}{code}: {message}{hint}".strip()
    if isinstance(exc, (openai.APIResponseValidationError, ValueError)):
        return f"{what}: OpenAI's answer was not the JSON expected ({type(exc).__name__})"
    return f"{what}: {type(exc).__name__}: {exc}"


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"][:300]
    return str(getattr(exc, "message", "") or exc)[:300]


def _endpoint() -> str:
    return os.environ.get("OPENAI_BASE_URL") or os.environ.get("AZURE_OPENAI_ENDPOINT") or "api.openai.com"


def is_training_not_available(exc: BaseException) -> bool:
    import openai

    return isinstance(exc, openai.APIStatusError) and exc.status_code == 403 and (
        getattr(exc, "code", None) == "training_not_available"
        or "training_not_available" in str(getattr(exc, "body", "") or "")
    )


def call(fn: Callable[[], T], what: str) -> T:
    """Run one SDK call (the SDK has retried already); failures become a ServiceError."""
    try:
        return fn()
    except FtuiError:
        raise
    except Exception as exc:  # noqa: BLE001 - every SDK failure becomes one readable message
        if is_training_not_available(exc):
            raise TrainingNotAvailable(explain(exc, what)) from None
        raise ServiceError(explain(exc, what)) from exc


def patiently(fn: Callable[[], T], what: str, *, limit_s: float, on_retry: Callable[[str], None],
              should_stop: Callable[[], bool] = lambda: False, sleep: Callable[[float], None] = time.sleep) -> T:
    """``call`` that keeps trying transient failures for up to ``limit_s`` (polling a long job
    should survive a network outage); other failures are raised at once."""
    began = time.monotonic()
    delay = 2.0
    while True:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001
            if is_training_not_available(exc):
                raise TrainingNotAvailable(explain(exc, what)) from None
            if not is_transient(exc) or time.monotonic() - began > limit_s:
                raise ServiceError(explain(exc, what)) from exc
            on_retry(f"{explain(exc, what)}; trying again in {delay:.0f} s")
            waited = 0.0
            while waited < delay and not should_stop():
                sleep(0.2)
                waited += 0.2
            if should_stop():
                raise StopRequested from exc
            delay = min(delay * 2, 60.0)
