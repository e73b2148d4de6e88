"""Stage 8: validation of generated images, POST /api/ml/validate (API.md)."""

from designer_ml.api import ERROR_RESPONSES, create_app, lambda_entry
from designer_ml.schemas import ValidateRequest, ValidateResponse
from designer_ml.validation.service import validate

app = create_app()


@app.post(
    "/api/ml/validate",
    summary="Check generated images against the target spec and the designer's style",
    tags=["validate"],
    responses=ERROR_RESPONSES,
)
def validate_images(request: ValidateRequest) -> ValidateResponse:
    return validate(request)


lambda_handler = lambda_entry(app)
