"""Configuration: every environment variable the functions read, validated once at cold start."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from designer_ml import __version__


class Settings(BaseModel):
    """The service's configuration; names come from the template (see template.yaml Globals)."""

    model_config = ConfigDict(frozen=True)

    profiles_table: str = Field(min_length=1, description="DynamoDB table of style profiles")
    feedback_table: str = Field(min_length=1, description="DynamoDB table of feedback events")
    artifacts_bucket: str = Field(min_length=1, description="S3 bucket of records and models")
    retrain_queue_url: str = Field(min_length=1, description="SQS queue of retrain requests")
    service_version: str = __version__
    # Coalescing window for retrain messages: many feedback events within it cause one retrain.
    retrain_coalesce_seconds: int = Field(default=30, ge=0, le=900)

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            profiles_table=env.get("PROFILES_TABLE", ""),
            feedback_table=env.get("FEEDBACK_TABLE", ""),
            artifacts_bucket=env.get("ARTIFACTS_BUCKET", ""),
            retrain_queue_url=env.get("RETRAIN_QUEUE_URL", ""),
            **(
                {"retrain_coalesce_seconds": int(env["RETRAIN_COALESCE_SECONDS"])}
                if env.get("RETRAIN_COALESCE_SECONDS")
                else {}
            ),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read from the environment on first use."""
    return Settings.from_env()
