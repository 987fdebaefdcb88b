"""imagegate's benchmarks: admission throughput, tag resolution and signature verification, cold and warm.

Run them with ``make bench`` (``python -m bench --out bench/results.json``); ``python -m bench --help``
lists the knobs. Everything runs on this machine against 127.0.0.1 only: ``imagegate serve`` under
gunicorn over TLS, Debian's ``docker-registry`` and a local test Sigstore. See bench/README.md.

Modules: :mod:`bench.results` (summaries, machine facts, output), :mod:`bench.load` (``wrk``/``hey``),
:mod:`bench.world` (registries, signed images, policy, review bodies), :mod:`bench.admission`,
:mod:`bench.resolution`, :mod:`bench.verification` (the benchmarks).
"""

__all__: list[str] = []
