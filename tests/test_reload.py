"""Hot reload: valid changes swap in; invalid or half-written ones are rejected, the last good one stays."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from webhook.errors import ConfigError
from webhook.policy.model import Policy
from webhook.reload import PolicyStore

POLICY = """\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {{name: {name}}}
spec:
  registries: {{allow: [ghcr.io]}}
  quarantine: {{files: [quarantine.yaml]}}
  rules:
    - {{name: all, images: ["ghcr.io/**"]}}
"""
QUARANTINE = """\
apiVersion: imagegate.dev/v1alpha1
kind: Quarantine
entries: {entries}
"""
DIGEST = "sha256:" + "d" * 64


def _store(tmp_path: Path, reports: list[tuple[str, str | None]]) -> PolicyStore[str]:
    (tmp_path / "policy.yaml").write_text(POLICY.format(name="one"))
    (tmp_path / "quarantine.yaml").write_text(QUARANTINE.format(entries="[]"))

    def on_reload(result: str, policy: Policy | None) -> None:
        reports.append((result, policy.name if policy else None))

    store: PolicyStore[str] = PolicyStore(
        tmp_path / "policy.yaml", build=lambda p: p.name, on_reload=on_reload
    )
    store.load()
    return store


def _touch_later(path: Path, text: str) -> None:
    # Make sure the change is visible even on filesystems with coarse mtimes.
    path.write_text(text)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_valid_change_is_swapped_in(tmp_path: Path) -> None:
    reports: list[tuple[str, str | None]] = []
    store = _store(tmp_path, reports)
    assert store.check() is False  # nothing changed
    _touch_later(tmp_path / "policy.yaml", POLICY.format(name="two"))
    assert store.check() is True
    current = store.current()
    assert current is not None and current.policy.name == "two" and current.services == "two"
    assert reports == [("success", "two")]


def test_referenced_quarantine_file_change_is_picked_up(tmp_path: Path) -> None:
    store = _store(tmp_path, [])
    entry = f'[{{digest: "{DIGEST}", reason: "bad"}}]'
    _touch_later(tmp_path / "quarantine.yaml", QUARANTINE.format(entries=entry))
    assert store.check() is True
    current = store.current()
    assert current is not None and DIGEST in current.policy.quarantined


def test_invalid_change_keeps_last_good_policy_and_is_reported_once(tmp_path: Path) -> None:
    reports: list[tuple[str, str | None]] = []
    store = _store(tmp_path, reports)
    _touch_later(tmp_path / "policy.yaml", POLICY.format(name="two").replace("rules:", "rulez:"))
    assert store.check() is False
    assert store.check() is False  # the same rejected content is not re-reported
    current = store.current()
    assert current is not None and current.policy.name == "one"
    assert reports == [("rejected", None)]
    _touch_later(tmp_path / "policy.yaml", POLICY.format(name="three"))
    assert store.check() is True
    assert reports[-1] == ("success", "three")


def test_half_written_file_is_rejected_then_completed(tmp_path: Path) -> None:
    reports: list[tuple[str, str | None]] = []
    store = _store(tmp_path, reports)
    full = POLICY.format(name="two")
    _touch_later(tmp_path / "policy.yaml", full[: len(full) // 2])
    assert store.check() is False
    current = store.current()
    assert current is not None and current.policy.name == "one"
    _touch_later(tmp_path / "policy.yaml", full)
    assert store.check() is True
    assert [r for r, _ in reports] == ["rejected", "success"]


def test_configmap_style_symlink_swap(tmp_path: Path) -> None:
    # kubelet updates a ConfigMap volume by pointing ..data at a new directory.
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    for version, name in (("v1", "one"), ("v2", "two")):
        (tmp_path / version / "policy.yaml").write_text(POLICY.format(name=name))
        (tmp_path / version / "quarantine.yaml").write_text(QUARANTINE.format(entries="[]"))
    (tmp_path / "..data").symlink_to("v1")
    (tmp_path / "policy.yaml").symlink_to("..data/policy.yaml")
    (tmp_path / "quarantine.yaml").symlink_to("..data/quarantine.yaml")
    store: PolicyStore[str] = PolicyStore(tmp_path / "policy.yaml", build=lambda p: p.name)
    store.load()
    (tmp_path / "..data_tmp").symlink_to("v2")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
    assert store.check() is True
    current = store.current()
    assert current is not None and current.policy.name == "two"


def test_file_referenced_only_by_a_rejected_new_policy_is_watched(tmp_path: Path) -> None:
    # A new policy version names a quarantine list that is not there yet (its volume is updated
    # separately): the version is rejected, and it must load as soon as that file appears, without
    # the policy file itself changing again.
    reports: list[tuple[str, str | None]] = []
    store = _store(tmp_path, reports)
    new = POLICY.format(name="two").replace("[quarantine.yaml]", "[quarantine.yaml, later.yaml]")
    _touch_later(tmp_path / "policy.yaml", new)
    assert store.check() is False
    assert store.check() is False
    assert reports == [("rejected", None)]
    (tmp_path / "later.yaml").write_text(QUARANTINE.format(entries="[]"))
    assert store.check() is True
    current = store.current()
    assert current is not None and current.policy.name == "two"
    assert (tmp_path / "later.yaml") in current.watched


def test_file_that_blocked_the_first_load_is_watched(tmp_path: Path) -> None:
    # Nothing ever loaded (the referenced file was missing at start): creating it is enough.
    (tmp_path / "policy.yaml").write_text(POLICY.format(name="one"))
    store: PolicyStore[str] = PolicyStore(tmp_path / "policy.yaml", build=lambda p: p.name)
    assert store.check() is False
    assert store.current() is None
    (tmp_path / "quarantine.yaml").write_text(QUARANTINE.format(entries="[]"))
    assert store.check() is True


def test_file_that_breaks_the_adapters_is_watched(tmp_path: Path) -> None:
    # The policy checks pass but building the adapters fails on a referenced file's content; fixing
    # that file (only) brings the policy in.
    reports: list[tuple[str, str | None]] = []
    (tmp_path / "policy.yaml").write_text(POLICY.format(name="one"))
    (tmp_path / "quarantine.yaml").write_text(QUARANTINE.format(entries="[]"))

    def build(policy: Policy) -> str:
        if "broken" in (tmp_path / "quarantine.yaml").read_text():
            raise ConfigError("the adapters reject quarantine.yaml")
        return policy.name

    store: PolicyStore[str] = PolicyStore(
        tmp_path / "policy.yaml", build=build, on_reload=lambda r, p: reports.append((r, p and p.name))
    )
    store.load()
    _touch_later(tmp_path / "policy.yaml", POLICY.format(name="two"))
    _touch_later(tmp_path / "quarantine.yaml", QUARANTINE.format(entries="[]") + "# broken\n")
    assert store.check() is False
    _touch_later(tmp_path / "quarantine.yaml", QUARANTINE.format(entries="[]"))
    assert store.check() is True
    assert reports == [("rejected", None), ("success", "two")]


def test_fork_waits_for_a_reload_in_progress(tmp_path: Path) -> None:
    """A child forked while the watcher reloads gets the finished runtime, never a half-built one."""
    (tmp_path / "policy.yaml").write_text(POLICY.format(name="one"))
    (tmp_path / "quarantine.yaml").write_text(QUARANTINE.format(entries="[]"))
    entered, release = threading.Event(), threading.Event()

    def build(policy: Policy) -> str:
        if policy.name == "two":
            entered.set()
            release.wait(10)
        return policy.name

    store: PolicyStore[str] = PolicyStore(tmp_path / "policy.yaml", build=build)
    store.load()
    store.guard_forks()
    _touch_later(tmp_path / "policy.yaml", POLICY.format(name="two"))
    reloader = threading.Thread(target=store.check)
    reloader.start()
    assert entered.wait(10)
    threading.Timer(0.3, release.set).start()
    pid = os.fork()
    if pid == 0:  # the child: report what it inherited, then leave at once
        current = store.current()
        os._exit(0 if current is not None and current.services == "two" else 1)
    _, status = os.waitpid(pid, 0)
    reloader.join(10)
    assert os.waitstatus_to_exitcode(status) == 0
