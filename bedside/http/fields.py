"""Field types the response models share: how a value looks in the JSON and the document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema

# ``datetime.isoformat()`` as the API has always written it (``+00:00``, not pydantic's ``Z``).
IsoDateTime = Annotated[
    datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
