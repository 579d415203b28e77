"""Reading HTML form posts without a multipart library: the dashboard only sends urlencoded."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import Request

MAX_FORM_BYTES = 1024 * 1024


class Form:
    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: str = "") -> str:
        values = self._fields.get(name)
        return values[0] if values else default

    def all(self, name: str) -> list[str]:
        return self._fields.get(name, [])


async def read_form(request: Request) -> Form:
    body = await request.body()
    text = body[:MAX_FORM_BYTES].decode("utf-8", "replace")
    return Form(parse_qs(text, keep_blank_values=True, max_num_fields=20_000))
