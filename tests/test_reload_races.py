"""Hot reload when a file changes while it is being loaded: the change must not be lost.

``PolicyStore.load`` reads the policy and every file it names, builds the adapters (trust material,
registry client: the slow part), and only then records the state of those files as the version it
serves. A quarantine list the kubelet swaps in between (an atomic rename, a new inode) is recorded as
served although its old content was read, so no later poll ever loads it: the new entries are never
enforced by that worker until some watched file changes again. The operator guide promises that the
server "reloads the policy, quarantine list and trust files without a rollout".
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from webhook.policy.model import Policy
from webhook.reload import PolicyStore

DIGEST = "sha256:" + "e" * 64
POLICY = """\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {{name: races}}
spec:
  registries: {{allow: [ghcr.io]}}
  quarantine: {{files: [{files}]}}
  rules:
    - {{name: all, images: ["ghcr.io/**"]}}
"""
EMPTY = "apiVersion: imagegate.dev/v1alpha1\nkind: Quarantine\nentries: []\n"
LISTED = (
    "apiVersion: imagegate.dev/v1alpha1\nkind: Quarantine\n"
    f'entries: [{{digest: "{DIGEST}", reason: "CVE-2026-4242"}}]\n'
)


def _swap(path: Path, text: str) -> None:
    """Replace ``path`` as the kubelet updates a mounted ConfigMap: a new file renamed over it."""
    fresh = path.with_name(f".{path.name}.new")
    fresh.write_text(text)
    os.replace(fresh, path)


def _swapping_once(path: Path, text: str) -> Callable[[Policy], str]:
    """A ``build`` that swaps ``path`` to ``text`` the first time it runs (the files were read by then)."""
    done: list[bool] = []

    def build(policy: Policy) -> str:
        if not done:
            done.append(True)
            _swap(path, text)
        return policy.name

    return build


def test_a_quarantine_list_swapped_during_the_first_load_is_loaded_at_the_next_poll(tmp_path: Path) -> None:
    quarantine = tmp_path / "quarantine.yaml"
    quarantine.write_text(EMPTY)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(files="quarantine.yaml"))
    store: PolicyStore[str] = PolicyStore(policy, build=_swapping_once(quarantine, LISTED), interval=0)

    first = store.load()
    assert DIGEST not in first.policy.quarantined  # the old list was read: expected for this load
    store.check()  # the next poll

    current = store.current()
    assert current is not None
    assert DIGEST in current.policy.quarantined, (
        "the quarantine list changed while the first load built its adapters, and no later poll loads it"
    )


def test_a_list_named_by_a_new_policy_and_swapped_during_its_reload_is_loaded_at_the_next_poll(
    tmp_path: Path,
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(files=""))
    quarantine = tmp_path / "quarantine.yaml"
    quarantine.write_text(EMPTY)
    builds: list[Policy] = []
    swap = _swapping_once(quarantine, LISTED)

    def build(loaded: Policy) -> str:
        builds.append(loaded)
        if len(builds) == 2:  # the reload of the version that names the list
            swap(loaded)
        return loaded.name

    store: PolicyStore[str] = PolicyStore(policy, build=build, interval=0)
    store.load()
    _swap(policy, POLICY.format(files="quarantine.yaml"))
    assert store.check() is True
    store.check()  # the next poll

    current = store.current()
    assert current is not None
    assert DIGEST in current.policy.quarantined, (
        "the quarantine list a reloaded policy names changed during the reload, and no later poll loads it"
    )
