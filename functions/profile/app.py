"""Style profiles (stage 2): create, update and read a designer's style modes."""

from designer_ml.api import ERROR_RESPONSES, create_app, lambda_entry
from designer_ml.schemas import (
    CreateProfileRequest,
    Profile,
    ProfileResponse,
    UpdateProfileRequest,
    UserIdPath,
)
from designer_ml.storage import get_storage
from designer_ml.style import profile as profiles

app = create_app()


@app.post(
    "/api/ml/style-profile/create",
    summary="Build a user's style profile from portfolio records",
    tags=["profile"],
    responses={201: {"description": "The new profile"}, **ERROR_RESPONSES},
)
def create(body: CreateProfileRequest) -> tuple[ProfileResponse, int]:
    document = profiles.create_profile(
        get_storage(), body.user_id, [r.raw() for r in body.vlt_records], body.n_clusters
    )
    return ProfileResponse(profile=Profile(**document)), 201


@app.post(
    "/api/ml/style-profile/update",
    summary="Add records to a profile and refit, keeping cluster ids",
    tags=["profile"],
    responses=ERROR_RESPONSES,
)
def update(body: UpdateProfileRequest) -> ProfileResponse:
    document = profiles.update_profile(get_storage(), body.user_id, [r.raw() for r in body.vlt_records])
    return ProfileResponse(profile=Profile(**document))


@app.get(
    "/api/ml/style-profile/<user_id>",
    summary="The user's current style profile",
    tags=["profile"],
    responses=ERROR_RESPONSES,
)
def read(user_id: UserIdPath) -> ProfileResponse:
    return ProfileResponse(profile=Profile(**profiles.get_profile(get_storage(), user_id)))


lambda_handler = lambda_entry(app)
