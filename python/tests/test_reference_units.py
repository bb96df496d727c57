"""Reference engine pieces that need no model: tokenizer, wire framing, HTTP parsing, request validation."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
import torch

from stasis_engine.errors import StasisEngineError
from stasis_engine.reference import http11, wire
from stasis_engine.reference.api import ModelInfo, completion_response, parse_completion, status_for
from stasis_engine.reference.options import ServeOptions, parse_serve_args
from stasis_engine.reference.tokenizer import BOS_ID, EOS_ID, ByteTokenizer

INFO = ModelInfo("tiny", vocab_size=512, max_model_len=64, eos_token_id=EOS_ID)


def test_tokenizer_round_trips_text_and_renders_every_id_uniquely() -> None:
    tok = ByteTokenizer(512)
    text = "Grüße, world\n"
    ids = tok.encode(text)
    assert ids[0] == BOS_ID and tok.decode(ids) == text
    assert tok.decode([72, 105, 300, EOS_ID]) == "Hi<|300|>"
    assert len({tok.token_str(i) for i in range(512)}) == 512


def test_wire_frames_survive_a_socketpair() -> None:
    a, b = socket.socketpair()
    with a, b:
        wire.send(a, {"op": "x", "n": list(range(1000))})
        assert wire.recv(b) == {"op": "x", "n": list(range(1000))}
        a.close()
        assert wire.recv(b) is None


def _parse(raw: bytes) -> http11.Request | None:
    async def go() -> http11.Request | None:
        reader = asyncio.StreamReader(limit=http11.MAX_HEAD)
        reader.feed_data(raw)
        reader.feed_eof()
        return await http11.read_request(reader)

    return asyncio.run(go())


def test_http_request_with_query_and_body() -> None:
    req = _parse(b"POST /wake_up?tags=weights&tags=kv_cache HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    assert req is not None
    assert (req.method, req.path, req.query["tags"], req.body) == ("POST", "/wake_up", ["weights", "kv_cache"], b"{}")


def test_http_chunked_body_and_malformed_head() -> None:
    req = _parse(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    assert req is not None and req.body == b"{}"
    with pytest.raises(http11.HttpError) as e:
        _parse(b"NONSENSE\r\n\r\n")
    assert e.value.status == 400
    assert _parse(b"") is None


def test_completion_validation_accepts_the_prompt_forms() -> None:
    assert parse_completion(b'{"prompt": "hi"}', INFO).prompts == [[BOS_ID, 104, 105]]
    assert parse_completion(b'{"prompt": [1, 2, 3], "max_tokens": 4}', INFO).prompts == [[1, 2, 3]]
    req = parse_completion(b'{"prompt": ["a", "bc"], "logprobs": 2, "temperature": 0, "model": "tiny"}', INFO)
    assert req.prompts == [[BOS_ID, 97], [BOS_ID, 98, 99]] and req.logprobs == 2 and req.max_tokens == 16
    assert EOS_ID in req.stop_token_ids
    assert EOS_ID not in parse_completion(b'{"prompt": "a", "ignore_eos": true}', INFO).stop_token_ids


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        (b"{bad", "bad_request", 400),
        (b"[1]", "bad_request", 400),
        (b'{"prompt": "a", "model": "other"}', "model_not_found", 404),
        (b'{"prompt": "a", "max_tokens": 0}', "bad_request", 400),
        (b'{"prompt": "a", "max_tokens": 100}', "bad_request", 400),
        (b'{"prompt": [1, 512]}', "bad_request", 400),
        (b'{"prompt": []}', "bad_request", 400),
        (b'{"prompt": "a", "temperature": 0.8}', "unsupported", 400),
        (b'{"prompt": "a", "logprobs": 21}', "bad_request", 400),
        (b'{"prompt": "a", "n": 2}', "unsupported", 400),
        (b'{"prompt": "a", "stream": true}', "unsupported", 400),
    ],
)
def test_completion_validation_rejects_with_code_and_status(body: bytes, code: str, status: int) -> None:
    with pytest.raises(StasisEngineError) as e:
        parse_completion(body, INFO)
    assert e.value.code == code and status_for(e.value.code) == status


def test_completion_response_shape() -> None:
    req = parse_completion(b'{"prompt": "hi", "logprobs": 1}', INFO)
    res = [
        {
            "token_ids": [72, EOS_ID],
            "finish_reason": "stop",
            "stop_reason": EOS_ID,
            "logprobs": [
                {"token": 72, "logprob": -0.5, "top": [[72, -0.5]]},
                {"token": EOS_ID, "logprob": -1.0, "top": [[EOS_ID, -1.0]]},
            ],
        }
    ]
    out = completion_response(req, res, INFO)
    choice = out["choices"][0]
    assert choice["text"] == "H" and choice["token_ids"] == [72, EOS_ID] and choice["finish_reason"] == "stop"
    assert choice["logprobs"]["tokens"] == ["H", "<|eos|>"] and choice["logprobs"]["text_offset"] == [0, 1]
    assert out["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    json.dumps(out)


def test_serve_options_round_trip_and_defaults() -> None:
    opts = parse_serve_args(["--model-dir", "/m", "--port", "0", "--cuda-graph-sizes", "4,1,2"])
    assert opts.cuda_graph_sizes == (1, 2, 4) and opts.max_batch == 4 and opts.name == "/m"
    assert ServeOptions.from_json(opts.to_json()) == opts


@pytest.mark.parametrize("q_len", [1, 5])
@pytest.mark.parametrize("per_head_mask", [False, True])
def test_grouped_query_attention_equals_transformers_sdpa(q_len: int, per_head_mask: bool) -> None:
    """The engine's attention (query groups as rows, no KV copies) computes what transformers' sdpa does."""
    import types

    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from stasis_engine.reference.attention import gqa_attention_forward

    g = torch.Generator().manual_seed(q_len)
    b, heads, kv_heads, t, d = 3, 6, 2, 32, 16
    module = types.SimpleNamespace(num_key_value_groups=heads // kv_heads, is_causal=True)
    query = torch.randn(b, q_len, heads, d, generator=g).transpose(1, 2)  # non-contiguous, as the model passes it
    key, value = torch.randn(b, kv_heads, t, d, generator=g), torch.randn(b, kv_heads, t, d, generator=g)
    mask = torch.rand(b, heads if per_head_mask else 1, q_len, t, generator=g) < 0.7
    mask[..., 0] = True  # every row sees something
    ours, _ = gqa_attention_forward(module, query, key, value, mask, scaling=0.25)
    theirs, _ = sdpa_attention_forward(module, query, key, value, mask, scaling=0.25)
    assert ours.shape == theirs.shape == (b, q_len, heads, d)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
