"""Signature and attestation verification: discovery, sigstore adapter, legacy cosign, policy checks.

Modules (import them directly; this package imports nothing, so light users such as the policy loader
do not pay for sigstore):

* :mod:`~webhook.verify.trust`: pinned trusted roots and keys, built once per policy load;
* :mod:`~webhook.verify.discovery`: what is stored next to a digest (bundle referrers, ``.sig``/``.att``);
* :mod:`~webhook.verify.bundles`: sigstore-python adapter for Sigstore bundles;
* :mod:`~webhook.verify.legacy`: legacy cosign layers, verified offline with the Rekor SET;
* :mod:`~webhook.verify.certificates`: Fulcio certificates against a trusted root's validity windows;
* :mod:`~webhook.verify.signatures`: public keys and the one signature verifier;
* :mod:`~webhook.verify.dsse`: DSSE envelopes;
* :mod:`~webhook.verify.rekor`: Rekor transparency-log evidence (SETs and entry bodies);
* :mod:`~webhook.verify.keys`: Sigstore bundles signed with a key; a trusted root's Rekor keys;
* :mod:`~webhook.verify.evidence`: strict reading of signature evidence (JSON, base64, integers);
* :mod:`~webhook.verify.identity`: keyless signer identity policies;
* :mod:`~webhook.verify.statements`, :mod:`~webhook.verify.predicates`: in-toto statements and predicates;
* :mod:`~webhook.verify.crypto`: the cryptographic step as a port (Sigstore, or declared facts in tests);
* :mod:`~webhook.verify.verifier`: the per-rule orchestrator (k-of-n signatures, attestations);
* :mod:`~webhook.verify.cached`: verification cache and the service's entry point ``verify_image``.
"""

__all__: list[str] = []
