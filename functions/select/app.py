"""Stage 9: diverse selection, POST /api/ml/select/diverse (API.md)."""

from designer_ml.api import ERROR_RESPONSES, create_app, lambda_entry
from designer_ml.schemas import SelectRequest, SelectResponse
from designer_ml.selection.service import select_diverse

app = create_app()


@app.post(
    "/api/ml/select/diverse",
    summary="Choose a diverse, high-quality subset of images (greedy DPP MAP or an exact k-DPP sample)",
    tags=["select"],
    responses=ERROR_RESPONSES,
)
def select(request: SelectRequest) -> SelectResponse:
    # The images go back as sent (every field the client gave), so the handler hands over the raw list.
    return select_diverse(request, raw_images=app.current_event.json_body.get("images"))


lambda_handler = lambda_entry(app)
