"""The exact JSON serializer keeps text as written; the SDK's default would not."""

from __future__ import annotations

from datetime import timedelta

import pytest
from dapr.serializers import DefaultJSONSerializer

from lab_plumbing import EXACT_JSON

TRICKY_TEXT = ["5s", "1h30m", "2024-01-02 is a date", "2024-01-02T10:00:00Z", "12", "null", "ünï ✓"]


@pytest.mark.parametrize("text", TRICKY_TEXT)
def test_exact_serializer_keeps_text_as_written(text: str) -> None:
    data = EXACT_JSON.serialize({"content": text})
    assert EXACT_JSON.deserialize(data) == {"content": text}


def test_the_sdk_default_decoder_would_not() -> None:
    # Why the lab has its own serializer: the SDK turns duration-looking text into a timedelta.
    assert DefaultJSONSerializer().deserialize(b'{"content": "5s"}') == {
        "content": timedelta(seconds=5)
    }
