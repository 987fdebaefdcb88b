"""Minimal admission-webhook stand-in for the TLS stall benchmark: parse an AdmissionReview, answer ~300 B."""

from __future__ import annotations

import base64
import json
from typing import Any

from flask import Flask, request

__all__ = ["app"]

app = Flask(__name__)


@app.post("/mutate")
def mutate() -> Any:
    review = request.get_json(force=True)
    req = review["request"]
    image = req["object"]["spec"]["containers"][0]["image"]
    patch = [{"op": "replace", "path": "/spec/containers/0/image", "value": image + "@sha256:" + "0" * 64}]
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": req["uid"],
            "allowed": True,
            "patchType": "JSONPatch",
            "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
        },
    }


@app.get("/healthz")
def healthz() -> Any:
    return {"ok": True}
