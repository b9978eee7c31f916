"""The exact JSON serializer: what the app stores and sends is the JSON it was given."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dapr.serializers import DefaultJSONSerializer


class ExactJSONSerializer(DefaultJSONSerializer):
    """Decodes JSON as plain JSON: the SDK's default decoder turns text that looks like a duration
    ("5s") or a date into timedelta/datetime objects (or fails on it); a chat keeps the text."""

    def deserialize(
        self,
        data: bytes,
        data_type: type | None = object,
        custom_hook: Callable[[Any], Any] | None = None,
    ) -> Any:
        obj = json.loads(data)
        return custom_hook(obj) if callable(custom_hook) else obj


# Stateless, so one instance serves every app in the process.
EXACT_JSON = ExactJSONSerializer()
