"""Keeping pinned Sigstore trusted roots fresh: ``imagegate trust refresh``.

The server never fetches trust material; this package does, out of band (a person, a CI job or a
CronJob), and hands the server a file it can load. Modules (import them directly):

* :mod:`~webhook.trust_refresh.repository`: the TUF update (python-tuf's ngclient) that yields a
  verified ``trusted_root.json``, with the embedded initial roots of Sigstore's public-good and staging
  repositories;
* :mod:`~webhook.trust_refresh.http_reads`: the HTTP reads behind it, with deadlines and byte caps;
* :mod:`~webhook.trust_refresh.changes`: what changed between two trusted roots (keys by log id, CA and
  TSA chains, validity windows);
* :mod:`~webhook.trust_refresh.files`: replacing a file atomically;
* :mod:`~webhook.trust_refresh.configmap`: reading and patching one ConfigMap key from inside a cluster.
"""

__all__: list[str] = []
