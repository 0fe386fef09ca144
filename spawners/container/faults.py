"""Engine faults: which errors are worth another try, and the retry policy.

A transient API error (no answer, a connection reset, a 429/502/503/504, a 5xx of a call safe
to repeat) is tried again, bounded, with a backoff, and logged; a permanent one is raised at
once. `engine_message` gives an error's own words on one line, for the task's reason.
"""

from __future__ import annotations

import http.client
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import requests
import tenacity
import urllib3

__all__ = ["EngineError", "RetryPolicy", "engine_message", "is_transient", "status_code"]

LOG = logging.getLogger(__name__)

T = TypeVar("T")


class EngineError(Exception):
    """An engine refused an operation and said why in its own words (a pull, a build)."""


# -- errors ----------------------------------------------------------------------------------

_CONNECTION_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
)

# A 500 from an engine is usually the operation failing for good (a runtime error, a bad
# command); these words in its message say the engine or a registry only stumbled.
_TRANSIENT_WORDS = re.compile(
    r"timeout|timed out|temporar|connection reset|connection refused|broken pipe|EOF|"
    r"TLS handshake|too many requests|try again|unavailable",
    re.IGNORECASE,
)


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [current.__cause__, current.__context__]
        todo += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)


def status_code(exc: BaseException) -> int | None:
    """The HTTP status of an SDK error, None when there was no answer."""
    code = getattr(exc, "status_code", None)
    if isinstance(code, int):
        return code
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def _no_answer(exc: BaseException) -> bool:
    """The engine did not answer at all (refused, reset, timed out)."""
    return status_code(exc) is None and any(isinstance(e, _CONNECTION_ERRORS) for e in _chain(exc))


def is_transient(exc: BaseException, *, idempotent: bool) -> bool:
    """Worth another try: no answer, a gateway or overload status, or (for a call that is safe
    to repeat) any server error."""
    code = status_code(exc)
    if code is None:
        return _no_answer(exc) or (
            isinstance(exc, EngineError) and bool(_TRANSIENT_WORDS.search(str(exc)))
        )
    if code in (429, 502, 503, 504):
        return True
    if code >= 500:
        return idempotent or bool(_TRANSIENT_WORDS.search(engine_message(exc)))
    return False


def engine_message(exc: BaseException) -> str:
    """The engine's own words for an error, on one line."""
    if _no_answer(exc):
        for cause in _chain(exc):
            if isinstance(cause, OSError) and cause.strerror:
                return cause.strerror
    text: Any = getattr(exc, "explanation", None) or str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text).split())


class RetryPolicy:
    """How an engine call is tried again: at most `attempts` tries, an exponential backoff
    up to `max_wait` seconds, and none once `stopping()` says the job is stopping (a stop
    must not wait on a round of retries). `sleep` is injected, so tests wait for nothing."""

    def __init__(
        self,
        engine: str,
        *,
        attempts: int = 4,
        max_wait: float = 2.0,
        stopping: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.attempts = attempts
        self.max_wait = max_wait
        self.stopping = stopping
        self.sleep = sleep

    def call(self, fn: Callable[..., T], *args: Any, idempotent: bool, **kwargs: Any) -> T:
        """Call `fn`, trying transient failures again (bounded, with backoff, logged)."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda e: is_transient(e, idempotent=idempotent)),
            stop=tenacity.stop_after_attempt(self.attempts) | _StopWhen(self.stopping),
            wait=tenacity.wait_exponential(multiplier=0.1, max=self.max_wait),
            before_sleep=self._log_retry,
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(fn, *args, **kwargs)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        what = getattr(state.fn, "__name__", "call")
        LOG.info(
            "%s: %s failed (%s), try %d of %d",
            self.engine, what, engine_message(exc) if exc else "?",
            state.attempt_number + 1, self.attempts,
        )


class _StopWhen(tenacity.stop.stop_base):
    """No more tries once `check()` is true (the job is stopping)."""

    def __init__(self, check: Callable[[], bool]) -> None:
        self._check = check

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self._check()
