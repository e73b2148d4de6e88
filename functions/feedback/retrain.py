"""Stage 10: retrain designers' reward models from the retrain queue (SQS, partial batch failures).

A message that fails (bad body, storage down, lost races) is reported in
``batchItemFailures``: SQS retries it and, after the queue's maxReceiveCount, moves it to the
DLQ; the other messages of the batch succeed. Retraining is idempotent, so a retried or
duplicated message makes no second model version.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, Field

from designer_ml.observability import logger
from designer_ml.reward.retrain import retrain_user
from designer_ml.schemas import UserId
from designer_ml.storage import get_storage

# A batch whose every message fails is reported like any partial failure (all of them in
# batchItemFailures), not raised: SQS retries them and moves them to the DLQ all the same, and
# the function's Errors alarm is left for real crashes (timeouts, out of memory), while the
# DLQ depth alarm covers messages that keep failing. (Powertools raises by default, which made
# one poison message alone in its batch fire the Errors alarm.)
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class RetrainMessage(BaseModel):
    user_id: UserId
    requested_at: int | None = Field(default=None, ge=0)
    reason: str | None = Field(default=None, max_length=64)


def record_handler(record: SQSRecord) -> dict[str, Any]:
    message = RetrainMessage.model_validate_json(record.body)
    result = retrain_user(get_storage(), message.user_id, message.requested_at)
    logger.info("retrain done", extra={"user_id": result.user_id, "status": result.status, "version": result.version})
    return {"user_id": result.user_id, "status": result.status, "version": result.version}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
