"""The errors a CDS service answers with: a status and, per problem, where and what."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class HookError(Exception):
    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(e["msg"]) for e in errors))
        self.status = status
        self.errors = errors


def fail(status: int, loc: list[Any], msg: str) -> HookError:
    return HookError(status, [{"loc": loc, "msg": msg}])


def pydantic_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e["loc"]), "msg": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
