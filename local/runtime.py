"""Load handlers the way Lambda does and call them with a Lambda context.

Each function's module is imported from its code folder by file path under a unique module
name (``functions/meta/app.py`` and ``functions/profile/app.py`` coexist), lazily, once per
function, like one warm container per function.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from local.cloud import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, FunctionSpec

__all__ = ["LambdaContext", "LambdaFunction", "load_module"]

Handler = Callable[[dict[str, Any], Any], Any]

# sys.path is process-wide: one module load at a time.
_IMPORT_LOCK = threading.RLock()


class LambdaContext:
    """The attributes and method of Lambda's context object that handlers and Powertools use."""

    def __init__(
        self,
        function_name: str = "local-function",
        *,
        memory_limit_in_mb: int = 128,
        timeout_s: float = 3.0,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        aws_request_id: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"local/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_module(code_dir: Path, module: str, unique_name: str) -> ModuleType:
    """Import ``code_dir/<module>.py`` as ``unique_name``.

    The code folder is first on ``sys.path`` while the module executes, as
    ``LAMBDA_TASK_ROOT`` is in Lambda, so that it can import its sibling files.
    """
    file = code_dir.joinpath(*module.split(".")).with_suffix(".py")
    if not file.is_file():
        raise FileNotFoundError(f"handler module {module!r} not found: {file}")
    with _IMPORT_LOCK:
        spec = importlib.util.spec_from_file_location(unique_name, file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {file}")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[unique_name] = loaded
        sys.path.insert(0, str(code_dir))
        try:
            spec.loader.exec_module(loaded)
        except BaseException:
            sys.modules.pop(unique_name, None)
            raise
        finally:
            sys.path.remove(str(code_dir))
    return loaded


class LambdaFunction:
    """One function of the template: its handler, imported on first use, and its invocations."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        function_name: str | None = None,
        module_name: str | None = None,
    ) -> None:
        self.spec = spec
        self.region = region
        self.account_id = account_id
        self.function_name = function_name or spec.logical_id
        self.module_name = module_name or f"_local_lambda_{spec.logical_id}_{spec.handler_module.replace('.', '_')}"
        self._module: ModuleType | None = None
        self._handler: Handler | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the handler has been imported (the container is warm)."""
        return self._handler is not None

    @property
    def module(self) -> ModuleType:
        self._load()
        assert self._module is not None
        return self._module

    @property
    def handler(self) -> Handler:
        self._load()
        assert self._handler is not None
        return self._handler

    def _load(self) -> None:
        if self._handler is not None:
            return
        with self._lock:
            if self._handler is None:
                module = load_module(self.spec.code_dir, self.spec.handler_module, self.module_name)
                handler = getattr(module, self.spec.handler_attr, None)
                if not callable(handler):
                    raise AttributeError(
                        f"{self.spec.logical_id}: {self.spec.handler_module}.{self.spec.handler_attr} is not a function"
                    )
                self._module, self._handler = module, handler

    def context(self, request_id: str | None = None) -> LambdaContext:
        return LambdaContext(
            self.function_name,
            memory_limit_in_mb=self.spec.memory_mb,
            timeout_s=self.spec.timeout_s,
            region=self.region,
            account_id=self.account_id,
            aws_request_id=request_id,
        )

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> Any:
        """Call the handler with ``event`` and a fresh context; exceptions propagate."""
        return self.handler(event, self.context(request_id))
