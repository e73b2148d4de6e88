"""Documented request limits (README "Limits"); over a limit the answer is 413 naming it."""

# API Gateway accepts 10 MB and Lambda 6 MB synchronous payloads; stay under both.
MAX_BODY_BYTES = 6_000_000
# Portfolio records per create/update request: 5,000 are served synchronously (bench/README.md).
MAX_RECORDS = 5_000
# Generated images per validate request.
MAX_VALIDATE_IMAGES = 200
# Candidate images per select request.
MAX_SELECT_IMAGES = 10_000
# Feedback entries carried inline by an optimize request.
MAX_FEEDBACK_HISTORY = 1_000
# Prompt candidates per optimize request.
MAX_CANDIDATES = 512
# Characters of a prompt or a free-text field.
MAX_PROMPT_CHARS = 4_000
# Keys per VLT record (all groups together) and characters per value.
MAX_VLT_KEYS = 200
MAX_VALUE_CHARS = 200
# Records one style profile holds after updates (the fit stays synchronous up to here).
MAX_PORTFOLIO_RECORDS = 20_000
# Dimensions of an optional image embedding (CLIP-like models give 512 to 1,024; 2,048 leaves room).
MAX_EMBEDDING_DIM = 2_048
