"""The Kubernetes API as the backend uses it: a few calls, each bounded and off the event loop.

The official client blocks, and with its defaults a call to an API server that accepts
connections but never answers blocks for ever, then is retried three times by urllib3. So
urllib3's retries are off, every call carries `_request_timeout`, and the few calls that are
safe to repeat are retried here, a bounded number of times, never once a stop has begun.
Answers are read as raw JSON (`_preload_content=False`): a listing of 100 Pods decodes in
5 ms that way, against 25 ms through the client's models.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client as _client
from kubernetes import config as _config
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream
from kubernetes.stream.ws_client import ERROR_CHANNEL

from spawnkit.core.errors import EngineUnavailable
from spawnkit.spawners.container.threads import DaemonThreadPool
from spawnkit.spawners.kubernetes.execstatus import exec_status

__all__ = [
    "API_THREADS",
    "KubeApi",
    "MissingNamespace",
    "api_message",
    "connect",
    "is_gone",
    "load_api",
    "status_of",
]

LOG = logging.getLogger(__name__)

T = TypeVar("T")

# The client's own hints say a call with `_preload_content=False` returns a model, and leave
# its configuration functions untyped: it is used through Any, its raw answers checked here.
client: Any = _client
config: Any = _config

#: Threads for API calls: a follower of each running Pod's log holds one for its life.
API_THREADS = 64
#: (connect, read) seconds of one call. The TLS handshake counts against the first.
CALL_TIMEOUT = (5.0, 15.0)
#: (connect, read) seconds of the first call, which says whether the server is there.
CHECK_TIMEOUT = (3.0, 5.0)
#: Read timeout of a followed log, in seconds.
FOLLOW_READ_TIMEOUT = 86400.0
#: Tries of a call that is safe to repeat, and the pause before each new try.
RETRY_PAUSES = (0.2, 0.5)
#: Environment variables read when the command line says nothing.
NAMESPACE_VARIABLE = "SPAWNKIT_KUBERNETES_NAMESPACE"
KUBECONFIG_VARIABLE = "KUBECONFIG"
_IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a refused call; None when no answer came at all."""
    return exc.status if isinstance(exc, ApiException) and exc.status else None


def is_gone(exc: BaseException) -> bool:
    return status_of(exc) == 404


def api_message(exc: BaseException) -> str:
    """The API server's own words for a failed call, on one line."""
    if isinstance(exc, ApiException):
        body = exc.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        if body:
            try:
                message = json.loads(body).get("message")
            except (ValueError, AttributeError):
                message = None
            if message:
                return f"{message} (HTTP {exc.status})"
        return f"HTTP {exc.status}: {exc.reason}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) < 400 else text[:400] + "..."


def _transient(exc: BaseException) -> bool:
    status = status_of(exc)
    if status is None:
        return not isinstance(exc, ValueError | TypeError)
    return status == 429 or status >= 500


def _read(response: Any) -> bytes:
    """The whole body of a raw answer, then its connection back to the pool (put back
    unread, its bytes would be read as the next call's answer)."""
    try:
        return bytes(response.data)
    finally:
        response.release_conn()


@dataclass(frozen=True)
class Target:
    """Which cluster and namespace, and how the configuration was found (for messages)."""

    configuration: Any  # kubernetes.client.Configuration
    namespace: str
    source: str


def load_api(kubeconfig: str | None = None, namespace: str | None = None,
             host: str | None = None) -> Target:
    """The cluster from `kubeconfig` (else $KUBECONFIG, else ~/.kube/config), or the
    in-cluster configuration when spawnkit runs in a Pod and there is no kubeconfig; its
    server at `host` when given (--engine-url), with the configuration's credentials."""
    configuration = client.Configuration()
    path = kubeconfig or os.environ.get(KUBECONFIG_VARIABLE) or None
    default = Path.home() / ".kube" / "config"
    context_namespace: str | None = None
    if path is None and not default.exists() and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException as exc:
            raise EngineUnavailable("no usable in-cluster Kubernetes configuration",
                                    spawner="kubernetes", engine_message=str(exc)) from None
        source = "the in-cluster configuration"
        try:
            context_namespace = _IN_CLUSTER_NAMESPACE.read_text().strip() or None
        except OSError:
            context_namespace = None
    else:
        where = path or str(default)
        try:
            config.load_kube_config(config_file=path, client_configuration=configuration)
            _contexts, active = config.list_kube_config_contexts(config_file=path)
        except Exception as exc:  # whatever the loader meets in the file
            # The client reads a file that is not a YAML mapping as if it were one: its
            # TypeError or AttributeError says nothing to a user. Broken YAML is the YAML
            # parser's error, which names the line.
            words = (" ".join(str(exc).split()) if not isinstance(exc, TypeError | AttributeError)
                     else "not a kubeconfig (a YAML mapping of clusters, users and contexts)")
            raise EngineUnavailable(
                f"no usable kubeconfig at {where} (give --kubeconfig, or set KUBECONFIG)",
                spawner="kubernetes", engine_message=words,
            ) from None
        source = f"kubeconfig {where}"
        context_namespace = (active or {}).get("context", {}).get("namespace")
    # Retries are ours (bounded, and none once a stop has begun), not urllib3's.
    configuration.retries = 0
    if host:
        _pin_host(configuration, host)
    chosen = namespace or os.environ.get(NAMESPACE_VARIABLE) or context_namespace or "default"
    return Target(configuration, chosen, source)


def _pin_host(configuration: Any, host: str) -> None:
    """The loader's credential refresh, run before each call, writes the kubeconfig's server
    back into the configuration: the host given is written again after it."""
    configuration.host = host
    refresh = configuration.refresh_api_key_hook
    if refresh is None:
        return

    def refresh_then_pin(conf: Any) -> None:
        refresh(conf)
        conf.host = host

    configuration.refresh_api_key_hook = refresh_then_pin


class MissingNamespace(Exception):
    """The namespace the tasks' Pods would go to does not exist. Holds the server's words."""


async def connect(engine_url: str | None, spawner: str, *,
                  for_tasks: bool) -> tuple[KubeApi, str]:
    """An API that answers, for the namespace chosen (`load_api`), and the server's version.
    Raises EngineUnavailable: no server answers at the URL, or (`for_tasks`: a job's Pods are
    to be made there) the namespace does not exist. `spawnkit gc` on a namespace already torn
    down finds nothing to remove, and says so."""
    target = load_api(os.environ.get(KUBECONFIG_VARIABLE), host=engine_url)
    api = KubeApi(target)
    try:
        return api, await api(api.check, for_tasks, retry=False)
    except MissingNamespace as exc:
        api.close()
        raise EngineUnavailable(
            f"namespace '{target.namespace}' does not exist on the Kubernetes API server at "
            f"{api.url} ({target.source}; another is chosen with --namespace)",
            spawner=spawner, engine_message=str(exc)) from None
    except Exception as exc:
        api.close()
        raise EngineUnavailable(
            f"cannot reach the Kubernetes API server at {api.url} ({target.source}, "
            f"namespace {target.namespace})", spawner=spawner,
            engine_message=api_message(exc)) from None


class KubeApi:
    """The calls of one spawner, each in a daemon thread (a call stuck on a server that
    never answers holds neither the job nor the runner's exit)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.namespace = target.namespace
        self.url = str(target.configuration.host)
        self._client = client.ApiClient(configuration=target.configuration)
        self.core = client.CoreV1Api(self._client)
        self._pool: DaemonThreadPool | None = None
        #: Set once a stop has begun: no call is tried again after that.
        self.stopping = False

    async def __call__(self, fn: Callable[..., T], *args: Any, retry: bool = True) -> T:
        if self._pool is None:
            self._pool = DaemonThreadPool(API_THREADS, thread_name_prefix="spawnkit-k8s")
        call = functools.partial(self._retrying, fn, *args) if retry else functools.partial(
            fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def _retrying(self, fn: Callable[..., T], *args: Any) -> T:
        for pause in (*RETRY_PAUSES, None):
            try:
                return fn(*args)
            except Exception as exc:
                if pause is None or self.stopping or not _transient(exc):
                    raise
                LOG.debug("kubernetes: %s: %s; trying again", fn.__name__, api_message(exc))
                time.sleep(pause)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        try:
            self._client.close()
        except Exception as exc:  # a pool of connections that will not close is let go
            LOG.debug("kubernetes: closing the client: %s", exc)

    # -- blocking calls (run them through __call__) -----------------------------------------

    def _json(self, response: Any) -> Any:
        return json.loads(_read(response))

    def check(self, namespace_exists: bool = True) -> str:
        """The server's version: it answers, the namespace can be listed and (asked for)
        exists. Raises MissingNamespace, or the client's error."""
        # Short: `spawnkit gc` asks every backend, and a server that hangs must not hold it.
        version = self._json(client.VersionApi(self._client).get_code(
            _preload_content=False, _request_timeout=CHECK_TIMEOUT))
        _read(self.core.list_namespaced_pod(self.namespace, limit=1, _preload_content=False,
                                            _request_timeout=CHECK_TIMEOUT))
        if not namespace_exists:
            return str(version.get("gitVersion", "?"))
        # A listing in a namespace that does not exist is merely empty: asked by its name, the
        # server says so (or refuses, to an account that may not read namespaces: no answer).
        try:
            _read(self.core.read_namespace(self.namespace, _preload_content=False,
                                           _request_timeout=CHECK_TIMEOUT))
        except ApiException as exc:
            if exc.status == 404:
                raise MissingNamespace(api_message(exc)) from None
            if exc.status != 403:
                raise
        return str(version.get("gitVersion", "?"))

    def pods(self, selector: str, read_timeout: float = CALL_TIMEOUT[1]) -> list[dict[str, Any]]:
        data = self._json(self.core.list_namespaced_pod(
            self.namespace, label_selector=selector, _preload_content=False,
            _request_timeout=(CALL_TIMEOUT[0], read_timeout)))
        return list(data.get("items") or [])

    def secrets(self, selector: str) -> list[dict[str, Any]]:
        data = self._json(self.core.list_namespaced_secret(
            self.namespace, label_selector=selector, _preload_content=False,
            _request_timeout=CALL_TIMEOUT))
        return list(data.get("items") or [])

    def pod(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self._json(self.core.read_namespaced_pod(
                name, self.namespace, _preload_content=False, _request_timeout=CALL_TIMEOUT)))
        except ApiException as exc:
            if is_gone(exc):
                return None
            raise

    def create_pod(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._json(self.core.create_namespaced_pod(
            self.namespace, body, _preload_content=False, _request_timeout=CALL_TIMEOUT)))

    def set_deadline(self, name: str, seconds: int) -> None:
        """The Pod's activeDeadlineSeconds (one of the few fields a running Pod may change)."""
        _read(self.core.patch_namespaced_pod(
            name, self.namespace, {"spec": {"activeDeadlineSeconds": seconds}},
            _preload_content=False, _request_timeout=CALL_TIMEOUT))

    def create_secret(self, body: dict[str, Any]) -> None:
        _read(self.core.create_namespaced_secret(self.namespace, body, _preload_content=False,
                                                 _request_timeout=CALL_TIMEOUT))

    def delete_pod(self, name: str, grace: int, uid: str | None = None) -> bool:
        """False when it was gone already. `uid`: only that very Pod, not a namesake."""
        options = client.V1DeleteOptions(
            grace_period_seconds=grace,
            preconditions=client.V1Preconditions(uid=uid) if uid else None,
        )
        try:
            _read(self.core.delete_namespaced_pod(name, self.namespace, body=options,
                                                  _preload_content=False,
                                                  _request_timeout=CALL_TIMEOUT))
        except ApiException as exc:
            if is_gone(exc) or (uid and exc.status == 409):
                return False
            raise
        return True

    def delete_secret(self, name: str) -> bool:
        try:
            _read(self.core.delete_namespaced_secret(name, self.namespace,
                                                     _preload_content=False,
                                                     _request_timeout=CALL_TIMEOUT))
        except ApiException as exc:
            if is_gone(exc):
                return False
            raise
        return True

    def log(self, name: str, container: str, *, follow: bool) -> Iterator[bytes]:
        """The container's output (stdout and stderr as one stream: the v1 log API merges
        them), raw bytes as they come."""
        response = self.core.read_namespaced_pod_log(
            name, self.namespace, container=container, follow=follow, _preload_content=False,
            # A quiet task may write nothing for long: a day's read timeout while following
            # (the client takes no "none"), the complete read at the end makes up for a break.
            _request_timeout=(CALL_TIMEOUT[0], FOLLOW_READ_TIMEOUT) if follow else CALL_TIMEOUT)
        try:
            yield from response.stream(64 * 1024, decode_content=False)
        finally:
            # Closed, not put back: a stream left half read would hand its rest to the next
            # call made on the same connection.
            response.close()

    def exec(self, name: str, container: str, argv: list[str],
             within: float) -> tuple[int | None, str]:
        """Run `argv` in the container: (its exit status, or None if unknown; its stdout).

        A refusal propagates: ExecRefused with the runtime's words when it could not run
        the command (no such program in the image, say).
        """
        # `stream` swaps the request method of the client it is given for a websocket one
        # while it runs: on the shared client, every other thread's call would go astray.
        core = client.CoreV1Api(client.ApiClient(configuration=self.target.configuration))
        ws = stream(core.connect_get_namespaced_pod_exec, name, self.namespace,
                    command=argv, container=container, stdin=False, stdout=True,
                    stderr=True, tty=False, _preload_content=False,
                    _request_timeout=CALL_TIMEOUT[0])
        out: list[str] = []
        try:
            deadline = time.monotonic() + within
            while ws.is_open() and time.monotonic() < deadline:
                ws.update(timeout=min(0.2, max(deadline - time.monotonic(), 0.01)))
                if ws.peek_stdout():
                    out.append(ws.read_stdout())
            if ws.peek_stdout():
                out.append(ws.read_stdout())
            code = None if ws.is_open() else exec_status(ws.read_channel(ERROR_CHANNEL))
        finally:
            ws.close()
        return code, "".join(out)

