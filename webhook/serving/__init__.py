"""How imagegate is served: a gunicorn worker with an asyncio HTTP/1.1 front, TLS with rotation, logs.

- :mod:`webhook.serving.worker`: the gunicorn worker class (``webhook.serving.worker.FrontWorker``);
- :mod:`webhook.serving.connection`: one client connection (TLS, HTTP/1.1 keep-alive, read deadlines);
- :mod:`webhook.serving.tls`: the server's SSLContext, rebuilt when the certificate files change;
- :mod:`webhook.serving.logs`: a log handler that writes whole lines without a shared lock.
"""
