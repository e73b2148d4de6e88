"""Stage 5: the prompt most likely to please this designer (POST /api/ml/prompt/optimize)."""

from designer_ml.api import ERROR_RESPONSES, create_app, lambda_entry
from designer_ml.reward.optimize import optimize_prompt
from designer_ml.schemas import OptimizeRequest, OptimizeResponse
from designer_ml.storage import get_storage

app = create_app()


@app.post(
    "/api/ml/prompt/optimize",
    summary="Best prompt for a garment spec, given the designer's profile and learned preferences",
    tags=["prompt"],
    responses={200: {"description": "The chosen prompt, why, and how to replay the choice"}, **ERROR_RESPONSES},
)
def optimize(request: OptimizeRequest) -> OptimizeResponse:
    return optimize_prompt(request, get_storage())


lambda_handler = lambda_entry(app)
