"""Stage 10: feedback in, retrain requests out, the designer's reward model (API side)."""

from designer_ml.api import ERROR_RESPONSES, create_app, lambda_entry
from designer_ml.reward.feedback import model_info, request_retrain, submit_feedback
from designer_ml.schemas import (
    FeedbackRequest,
    FeedbackResponse,
    RewardModelInfo,
    TrainRequest,
    TrainResponse,
    UserIdPath,
)
from designer_ml.storage import get_storage

app = create_app()


@app.post(
    "/api/ml/feedback/submit",
    summary="Record a like, dislike or outlier on a generated asset",
    tags=["feedback"],
    responses={
        202: {"description": "Stored (once per user, generation and asset) and a retrain queued"},
        **ERROR_RESPONSES,
    },
)
def submit(request: FeedbackRequest) -> tuple[FeedbackResponse, int]:
    return submit_feedback(request, get_storage()), 202


@app.post(
    "/api/ml/rlhf/train",
    summary="Ask for the designer's reward model to be retrained now",
    tags=["feedback"],
    responses={202: {"description": "Retrain queued"}, **ERROR_RESPONSES},
)
def train(request: TrainRequest) -> tuple[TrainResponse, int]:
    return request_retrain(request, get_storage()), 202


@app.get(
    "/api/ml/rlhf/model/<user_id>",
    summary="The designer's current reward model: version, events, metrics, liked and disliked phrases",
    tags=["feedback"],
    responses={200: {"description": "The serving reward model"}, **ERROR_RESPONSES},
)
def model(user_id: UserIdPath) -> RewardModelInfo:
    return model_info(user_id, get_storage())


lambda_handler = lambda_entry(app)
