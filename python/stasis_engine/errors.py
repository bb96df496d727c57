"""The one error type of the engine side.

Every failure a caller can act on is a ``StasisEngineError`` with a stable ``code`` (what the product keys
on), a one-line ``message`` (what went wrong, naming the thing) and a ``hint`` (what to do about it).

Example::

    raise StasisEngineError(
        "weights_missing", f"no weights file at {path}", hint="dump the weights first (stasis_dump_weights)"
    )
"""

from __future__ import annotations

from typing import Any


class StasisEngineError(Exception):
    """A failure with a stable code, a one-line message and a hint."""

    def __init__(
        self, code: str, message: str, hint: str | None = None, *, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(code, message, hint)
        self.code = code
        self.message = message
        self.hint = hint
        self.details = dict(details or {})

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep details across pickling (vLLM ships worker results between processes).
        return (_rebuild, (self.code, self.message, self.hint, self.details))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, for RPC results and logs."""
        out: dict[str, Any] = {"code": self.code, "message": self.message, "hint": self.hint}
        if self.details:
            out["details"] = self.details
        return out


def _rebuild(code: str, message: str, hint: str | None, details: dict[str, Any]) -> StasisEngineError:
    return StasisEngineError(code, message, hint, details=details)
