"""End to end over real HTTPS: an UPDATE that changes no image of a running object always passes.

The operator guide: "An UPDATE never newly denies an image the object already runs ... labels and
annotations of running pods and workloads can still change, the Job controller can still remove its
finalizer". ``IMAGEGATE_MAX_IMAGES`` is a knob an operator may lower after pods are running (or that
a new version introduces), and the object-wide ``[too-many-images]`` denial then refuses the
finalizer removal of a Pod whose images were all admitted when it was created: the Pod stays in
Terminating. The service checks the count before it looks at the old object (webhook/service.py,
``_decide``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from tests.support.reviews import review
from tests.support.server import Server, running_server

pytestmark = pytest.mark.e2e

POLICY = """\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: running-updates}
spec:
  unmatched: allow
  registries: {allow: [ghcr.io]}
"""
IMAGES = [f"ghcr.io/acme/part-{n}@sha256:{n:x}" + "0" * 63 for n in range(1, 4)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("running-updates")
    policy = directory / "policy.yaml"
    policy.write_text(POLICY)
    # The limit was lowered to 2 while a Pod with 3 distinct images was running.
    with running_server(directory, policy, env={"IMAGEGATE_MAX_IMAGES": "2"}) as running:
        yield running


def test_removing_the_finalizer_of_a_running_pod_over_the_image_limit_is_allowed(server: Server) -> None:
    created = server.admit("/validate", review("Pod", IMAGES))
    assert created["allowed"] is False  # the limit is in force: a new Pod like it is refused
    assert "[too-many-images]" in created["status"]["message"]

    body = review("Pod", IMAGES, operation="UPDATE", name="job-pod")
    request = body["request"]
    request["oldObject"]["metadata"]["finalizers"] = ["batch.kubernetes.io/job-tracking"]
    request["object"] = copy.deepcopy(request["oldObject"])
    del request["object"]["metadata"]["finalizers"]

    for path in ("/mutate", "/validate"):
        answer = server.admit(path, body)
        assert answer["allowed"] is True, f"{path}: {answer.get('status', {}).get('message')}"
