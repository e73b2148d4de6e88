"""A designer's data: export everything stored about them, or erase it."""

from designer_ml.api import create_app, lambda_entry
from designer_ml.privacy import delete_user, export_user
from designer_ml.schemas import UserDeletion, UserExport, UserIdPath
from designer_ml.storage import get_storage

app = create_app()


@app.get("/api/ml/users/<user_id>/export", summary="Everything stored about a designer", tags=["users"])
def export(user_id: UserIdPath) -> UserExport:
    return UserExport(**export_user(get_storage(), user_id))


@app.delete("/api/ml/users/<user_id>", summary="Erase a designer's data everywhere", tags=["users"])
def delete(user_id: UserIdPath) -> UserDeletion:
    return UserDeletion(user_id=user_id, deleted=delete_user(get_storage(), user_id))


lambda_handler = lambda_entry(app)
