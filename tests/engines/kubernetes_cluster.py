"""The Kubernetes cluster as the tests look at it from outside spawnkit: through `kubectl`
($SPAWNKIT_KUBECTL, else the one on PATH) and the KUBECONFIG that `.ci/kubernetes.sh` exports."""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

from spawnkit.spawners.container.spec import LABEL_JOB, LABEL_MANAGED

__all__ = ["POD_NAME", "TEST_IMAGE_REF", "ensure_image", "forget_image", "import_image",
           "kubectl", "kubernetes_objects", "kubernetes_problem", "pod_json"]

#: A task's handle: its Pod's name, `sk-<job id>-<task>-<hash>`.
POD_NAME = re.compile(r"sk-[0-9]{8}-[0-9]{6}-[0-9a-f]{6}-[a-z0-9-]*[0-9a-f]{8}")
#: How the node lists the test image once .ci/kubernetes.sh imported it.
TEST_IMAGE_REF = "docker.io/library/spawnkit-busybox:latest"


def kubectl(*args: str, check: bool = True, timeout: float = 60) -> str:
    argv = [os.environ.get("SPAWNKIT_KUBECTL", "kubectl"), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def kubernetes_problem() -> str | None:
    """Why the cluster cannot serve the tests: the API server answers, a node is Ready, and
    the test image is on it (`source .ci/kubernetes.sh` does all three)."""
    hint = "(run: source .ci/kubernetes.sh)"
    try:
        out = kubectl("get", "nodes", "-o", "json", check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"kubectl: {exc} {hint}"
    try:
        nodes = json.loads(out)["items"]
    except (ValueError, KeyError):
        words = " ".join(kubectl("get", "nodes", check=False, timeout=30).split())
        return f"the API server does not answer: {words or 'no answer'} {hint}"
    ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                     for c in n["status"].get("conditions", []))]
    if not ready:
        return f"no node is Ready {hint}"
    images = {name for n in ready for i in n["status"].get("images") or []
              for name in i.get("names") or []}
    # A node lists its 50 largest images at most (the kubelet's nodeStatusMaxImages): on a
    # machine that built many, the small test image is there but not listed. containerd says.
    if TEST_IMAGE_REF not in images and not _in_containerd(TEST_IMAGE_REF):
        return f"test image {TEST_IMAGE_REF} is not on the node {hint}"
    return None


def _in_containerd(ref: str) -> bool:
    if not os.environ.get("SPAWNKIT_CONTAINERD_ADDRESS"):
        return False
    listed = subprocess.run([*_ctr(), "images", "ls", "-q", f"name=={ref}"],
                            capture_output=True, text=True, timeout=60, check=False)
    return bool(listed.stdout.strip())


def kubernetes_objects(job_id: str | None = None) -> list[str]:
    """`pod/NAME` and `secret/NAME` of spawnkit's objects (of one job, if given)."""
    label = f"{LABEL_JOB}={job_id}" if job_id else f"{LABEL_MANAGED}=true"
    out = kubectl("get", "pods,secrets", "-l", label, "-o", "name")
    return out.split()


def pod_json(name: str) -> dict[str, Any] | None:
    out = kubectl("get", "pod", name, "-o", "json", "--ignore-not-found")
    return json.loads(out) if out.strip() else None


def _ctr() -> list[str]:
    """The CI cluster's containerd, in the namespace of Kubernetes' images."""
    return ["ctr", "--address", os.environ["SPAWNKIT_CONTAINERD_ADDRESS"], "-n", "k8s.io"]


def import_image(image: str) -> bool:
    """Docker's `image` onto the node of the CI cluster, as .ci/kubernetes.sh imports the
    test image (the node has no registry): whether it is there now."""
    if not os.environ.get("SPAWNKIT_CONTAINERD_ADDRESS"):
        return False
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    try:
        load = subprocess.run([*_ctr(), "images", "import", "--snapshotter", "overlayfs", "-"],
                              stdin=save.stdout, capture_output=True, timeout=300, check=False)
    finally:
        if save.stdout is not None:
            save.stdout.close()
    return save.wait(timeout=60) == 0 and load.returncode == 0


def _ref(image: str) -> str:
    return image if "/" in image else f"docker.io/library/{image}"


def forget_image(image: str) -> None:
    """Remove an image `import_image` brought onto the node (`name:tag` as Docker says it)."""
    subprocess.run([*_ctr(), "images", "rm", _ref(image)], capture_output=True, timeout=60,
                   check=False)


def ensure_image(image: str) -> str | None:
    """Docker's `image` on the node (imported once, then kept, as the test image is), or why
    it cannot be."""
    if not os.environ.get("SPAWNKIT_CONTAINERD_ADDRESS"):
        return "SPAWNKIT_CONTAINERD_ADDRESS is not set (run: source .ci/kubernetes.sh)"
    listed = subprocess.run([*_ctr(), "images", "ls", "-q", f"name=={_ref(image)}"],
                            capture_output=True, text=True, timeout=60, check=False)
    if listed.stdout.strip() or import_image(image):
        return None
    return f"{image} could not be imported from Docker into the cluster's containerd"
