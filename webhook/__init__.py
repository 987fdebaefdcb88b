"""imagegate: a Kubernetes admission webhook that pins image digests and verifies Sigstore signatures
and in-toto attestations against a policy file."""

__version__ = "0.1.0"

__all__ = ["__version__"]
