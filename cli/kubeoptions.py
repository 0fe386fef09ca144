"""`--namespace` and `--kubeconfig`: where the kubernetes backend makes its Pods.

They are handed to the backend through its environment variables (the ones it reads when the
command line says nothing), so that no other backend, and no part of core, carries them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

import click

__all__ = ["kubernetes_options"]

F = TypeVar("F", bound=Callable[..., object])

# The names the backend reads (spawnkit.spawners.kubernetes.api): not imported from there, so
# that the command line does not load the Kubernetes client unless the backend is picked.
_NAMESPACE = "SPAWNKIT_KUBERNETES_NAMESPACE"
_KUBECONFIG = "KUBECONFIG"


def _export(variable: str) -> Callable[[click.Context, click.Parameter, str | None], None]:
    def callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value:
            os.environ[variable] = value

    return callback


def kubernetes_options(command: F) -> F:
    """Add the two options to a command (`run`, `gc`)."""
    command = click.option(
        "--kubeconfig", metavar="FILE", expose_value=False, callback=_export(_KUBECONFIG),
        help="kubeconfig of the cluster (--spawner kubernetes) [default: $KUBECONFIG, "
             "~/.kube/config, or the in-cluster configuration in a Pod].")(command)
    return click.option(
        "--namespace", metavar="NAME", expose_value=False, callback=_export(_NAMESPACE),
        envvar=_NAMESPACE,
        help="Namespace of the tasks' Pods (--spawner kubernetes) [default: the "
             "kubeconfig context's, else default].")(command)
