"""Logger, tracer and metrics, created once and imported by every handler."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "designer-ml")

logger = Logger(service=SERVICE)
# The X-Ray SDK is optional: without it (local server, tests) the tracer is a no-op.
tracer = Tracer(service=SERVICE, disabled=os.environ.get("AWS_LAMBDA_FUNCTION_NAME") is None)
metrics = Metrics(service=SERVICE, namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "DesignerML"))
