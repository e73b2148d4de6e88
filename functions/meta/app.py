"""Service metadata: liveness and the OpenAPI document (no auth on /health)."""

from designer_ml import __version__
from designer_ml.api import create_app, lambda_entry
from designer_ml.openapi import load_document
from designer_ml.schemas import Health

app = create_app()


@app.get("/health", summary="Liveness", tags=["meta"])
def health() -> Health:
    return Health(version=__version__)


@app.get("/api/ml/openapi.json", summary="The OpenAPI document of this API", tags=["meta"])
def openapi() -> dict:
    return load_document()


lambda_handler = lambda_entry(app)
