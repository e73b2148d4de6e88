"""Logger, tracer and metrics, created once and imported by every handler.

``logger`` is created at import. ``tracer`` and ``metrics`` are created on first use: building
a Powertools ``Tracer`` imports the X-Ray SDK (and patches botocore), about 0.35 s of every cold
start whether or not anything is traced (bench/README.md, cold start); Lambda's active tracing
records the function's own segment without it. Only images that list ``aws-xray-sdk`` in their
requirements can use ``tracer``.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "designer-ml")

logger = Logger(service=SERVICE)
_lazy: dict[str, Any] = {}


def _tracer() -> Any:
    from aws_lambda_powertools import Tracer

    # Without a Lambda environment (local server, tests) the tracer is a no-op.
    return Tracer(service=SERVICE, disabled=os.environ.get("AWS_LAMBDA_FUNCTION_NAME") is None)


def _metrics() -> Any:
    from aws_lambda_powertools import Metrics

    return Metrics(service=SERVICE, namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "DesignerML"))


def __getattr__(name: str) -> Any:
    # PEP 562: `from designer_ml.observability import tracer` builds it on that first import.
    factories = {"tracer": _tracer, "metrics": _metrics}
    if name not in factories:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _lazy:
        _lazy[name] = factories[name]()
    return _lazy[name]
