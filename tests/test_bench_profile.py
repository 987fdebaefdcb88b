"""The benchmark's profile attribution: py-spy's short module names land in the right area."""

from __future__ import annotations

from bench.profile import _parse

# py-spy --format raw: "process;thread;frame;...;leaf count", root first, each frame
# "function (file:line)" with the file named below its sys.path entry.
_RAW = "\n".join(
    (
        "process 1;thread (0x1);_bootstrap (threading.py:1002);handle (webhook/serving/worker.py:50);"
        "wsgi_app (flask/app.py:1500);dispatch_request (flask/app.py:880);validate (webhook/app.py:90);"
        "review (webhook/admission/review.py:40);loads (json/__init__.py:346);"
        "raw_decode (json/decoder.py:353) 7",
        "process 1;thread (0x1);_bootstrap (threading.py:1002);handle (webhook/serving/worker.py:50);"
        "wsgi_app (flask/app.py:1500);full_dispatch_request (flask/app.py:917) 3",
        "process 1;thread (0x2);run_forever (asyncio/base_events.py:607);"
        "_run_once (asyncio/base_events.py:1922);recv_into (ssl.py:1270) 2",
        "process 1;thread (0x3);emit (logging/__init__.py:1100);write (webhook/serving/logs.py:80) 1",
        "process 1;thread (0x1);_decide (webhook/decision.py:200) 4",
    )
)


def test_short_module_names_are_attributed_to_their_package() -> None:
    areas, leaves, total = _parse(_RAW)

    assert total == 17
    assert areas == {
        "json (encode/decode)": 7,
        "flask / werkzeug": 3,
        "server front (HTTP, TLS, event loop)": 2,
        "logging (audit line)": 1,
        "decision": 4,
    }
    assert leaves["raw_decode (json/decoder.py)"] == 7


def test_a_name_only_containing_a_package_name_is_not_that_package() -> None:
    areas, _, _ = _parse("process 1;thread (0x1);answer (webhook/notjson/x.py:1) 5")

    assert areas == {"other": 5}
