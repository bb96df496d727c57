"""The OpenAI/vLLM request and response shapes: validation of ``/v1/completions`` bodies, errors as JSON."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from ..errors import StasisEngineError
from .tokenizer import ByteTokenizer

MAX_LOGPROBS = 20
MAX_PROMPTS = 64
_STATUS = {
    "bad_request": 400,
    "bad_argument": 400,
    "unsupported": 400,
    "rpc_unknown_method": 400,
    "rpc_bad_args": 400,
    "not_found": 404,
    "model_not_found": 404,
    "method_not_allowed": 405,
    "weights_io": 500,
    "cuda_error": 500,
    "engine_asleep": 503,
    "weights_not_loaded": 503,
    "engine_dead": 503,
    "engine_busy": 503,
}


def status_for(code: str) -> int:
    """HTTP status for an error code; weights-file problems are the caller's (400), unknown codes are ours (500)."""
    if code in _STATUS:
        return _STATUS[code]
    return 400 if code.startswith("weights_") else 500


def error_body(status: int, code: str, message: str, hint: str | None = None) -> dict[str, Any]:
    """vLLM's error shape (``{"error": {message, type, param, code}}``) plus our stable code and hint."""
    phrase = HTTPStatus(status).phrase.replace(" ", "") if status in HTTPStatus._value2member_map_ else "Unknown"
    return {
        "error": {
            "message": message,
            "type": f"{phrase}Error",
            "param": None,
            "code": status,
            "stasis_code": code,
            "hint": hint,
        }
    }


@dataclass(frozen=True)
class ModelInfo:
    served_name: str
    vocab_size: int
    max_model_len: int
    eos_token_id: int

    @property
    def tokenizer(self) -> ByteTokenizer:
        return ByteTokenizer(self.vocab_size)


@dataclass(frozen=True)
class CompletionRequest:
    prompts: list[list[int]]
    max_tokens: int
    logprobs: int | None
    stop_token_ids: list[int]


def _bad(message: str, hint: str | None = None, code: str = "bad_request") -> StasisEngineError:
    return StasisEngineError(code, message, hint)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_completion(raw: bytes, info: ModelInfo) -> CompletionRequest:
    """Validate a completions body once, at the boundary; every rejection names the field and what was expected."""
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as e:
        raise _bad(f"request body is not valid JSON: {e}") from e
    if not isinstance(body, dict):
        raise _bad("request body must be a JSON object")
    model = body.get("model")
    if model is not None and model != info.served_name:
        raise StasisEngineError(
            "model_not_found",
            f"The model `{model}` does not exist.",
            f"this server serves {info.served_name!r} (GET /v1/models)",
        )
    _check_unsupported(body)
    prompts = _prompts(body.get("prompt"), info)
    max_tokens = body.get("max_tokens", 16)
    if max_tokens is None:
        max_tokens = 16
    if not _is_int(max_tokens) or max_tokens < 1:
        raise _bad(f"max_tokens={max_tokens!r}, expected an integer >= 1")
    longest = max(len(p) for p in prompts)
    if longest + max_tokens > info.max_model_len:
        raise _bad(
            f"This model's maximum context length is {info.max_model_len} tokens. However, you requested "
            f"{longest + max_tokens} tokens ({longest} in the prompt, {max_tokens} in the completion).",
            "shorten the prompt or lower max_tokens",
        )
    logprobs = body.get("logprobs")
    if logprobs is not None and (not _is_int(logprobs) or not 0 <= logprobs <= MAX_LOGPROBS):
        raise _bad(f"logprobs={logprobs!r}, expected null or an integer in [0, {MAX_LOGPROBS}]")
    stop_ids = body.get("stop_token_ids") or []
    if not isinstance(stop_ids, list) or not all(_is_int(t) and 0 <= t < info.vocab_size for t in stop_ids):
        raise _bad(f"stop_token_ids={stop_ids!r}, expected a list of token ids in [0, {info.vocab_size})")
    ignore_eos = body.get("ignore_eos", False)
    if not isinstance(ignore_eos, bool):
        raise _bad(f"ignore_eos={ignore_eos!r}, expected true or false")
    if not ignore_eos and info.eos_token_id not in stop_ids:
        stop_ids = [*stop_ids, info.eos_token_id]
    return CompletionRequest(prompts, max_tokens, logprobs, stop_ids)


def _check_unsupported(body: dict[str, Any]) -> None:
    temperature = body.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))):
        raise _bad(f"temperature={temperature!r}, expected a number")
    if temperature not in (None, 0, 0.0):
        raise _bad(
            f"temperature={temperature!r}: only greedy decoding (temperature 0) is supported",
            "send temperature 0 (or omit it)",
            "unsupported",
        )
    for name, ok in _DEFAULT_ONLY.items():
        value = body.get(name)
        if value is not None and not ok(value):
            raise _bad(
                f"{name}={json.dumps(value)} is not supported by the reference engine (greedy, one choice, "
                "no streaming, echo, penalties, logit bias or stop strings)",
                code="unsupported",
            )


def _num(value: Any, target: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == target


_DEFAULT_ONLY = {
    "n": lambda v: _num(v, 1),
    "best_of": lambda v: _num(v, 1),
    "stream": lambda v: v is False,
    "echo": lambda v: v is False,
    "presence_penalty": lambda v: _num(v, 0),
    "frequency_penalty": lambda v: _num(v, 0),
    "repetition_penalty": lambda v: _num(v, 1),
    "suffix": lambda v: v == "",
    "logit_bias": lambda v: v == {},
    "stop": lambda v: v in ("", []),
}


def _prompts(prompt: Any, info: ModelInfo) -> list[list[int]]:
    tok = info.tokenizer
    if isinstance(prompt, str):
        out = [tok.encode(prompt)]
    elif isinstance(prompt, list) and prompt and all(_is_int(t) for t in prompt):
        out = [list(prompt)]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        out = [tok.encode(p) for p in prompt]
    elif (
        isinstance(prompt, list)
        and prompt
        and all(isinstance(p, list) and p and all(_is_int(t) for t in p) for p in prompt)
    ):
        out = [list(p) for p in prompt]
    else:
        raise _bad("prompt must be a string, a non-empty list of token ids, or a list of either")
    if len(out) > MAX_PROMPTS:
        raise _bad(f"{len(out)} prompts in one request, at most {MAX_PROMPTS}")
    for p in out:
        bad = next((t for t in p if not 0 <= t < info.vocab_size), None)
        if bad is not None:
            raise _bad(f"token id {bad} is out of range [0, {info.vocab_size})")
    return out


def completion_response(req: CompletionRequest, results: list[dict[str, Any]], info: ModelInfo) -> dict[str, Any]:
    """The OpenAI ``text_completion`` object; ``token_ids``/``prompt_token_ids`` as vLLM's return_token_ids gives."""
    tok = info.tokenizer
    choices = []
    for i, (prompt, res) in enumerate(zip(req.prompts, results, strict=True)):
        ids = res["token_ids"]
        choices.append(
            {
                "index": i,
                "text": tok.decode(ids),
                "logprobs": _logprobs(res["logprobs"], tok) if req.logprobs is not None else None,
                "finish_reason": res["finish_reason"],
                "stop_reason": res.get("stop_reason"),
                "token_ids": ids,
                "prompt_token_ids": prompt,
            }
        )
    prompt_tokens = sum(len(p) for p in req.prompts)
    completion_tokens = sum(len(r["token_ids"]) for r in results)
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": info.served_name,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _logprobs(steps: list[dict[str, Any]], tok: ByteTokenizer) -> dict[str, Any]:
    tokens, token_logprobs, top_logprobs, offsets = [], [], [], []
    ids: list[int] = []
    for step in steps:
        offsets.append(len(tok.decode(ids)))
        ids.append(step["token"])
        tokens.append(tok.token_str(step["token"]))
        token_logprobs.append(step["logprob"])
        top_logprobs.append({tok.token_str(t): lp for t, lp in step["top"]})
    return {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": top_logprobs, "text_offset": offsets}
