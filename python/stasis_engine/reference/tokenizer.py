"""A deterministic byte-level tokenizer: ids 0-255 are bytes, 256 BOS, 257 EOS, the rest print as ``<|id|>``.

A real model's vocabulary is not needed to exercise the engine; what matters is that text round-trips
(``decode(encode(s)) == s``), that any id the model can emit has a stable rendering, and that a prompt given
as text and the same prompt given as ids produce the same completion.
"""

from __future__ import annotations

BOS_ID = 256
EOS_ID = 257
_SPECIAL = {BOS_ID: "<|bos|>", EOS_ID: "<|eos|>"}


class ByteTokenizer:
    """``encode`` prepends BOS (as Llama tokenizers do); ``decode`` skips BOS/EOS like skip_special_tokens."""

    def __init__(self, vocab_size: int) -> None:
        if vocab_size < EOS_ID + 1:
            raise ValueError(f"vocab_size={vocab_size}: the byte tokenizer needs at least {EOS_ID + 1} ids")
        self.vocab_size = vocab_size

    def encode(self, text: str) -> list[int]:
        return [BOS_ID, *text.encode("utf-8")]

    def decode(self, ids: list[int]) -> str:
        out: list[str] = []
        run = bytearray()
        for i in ids:
            if 0 <= i < 256:
                run.append(i)
                continue
            if run:
                out.append(run.decode("utf-8", errors="replace"))
                run.clear()
            if i not in _SPECIAL:
                out.append(f"<|{i}|>")
        if run:
            out.append(run.decode("utf-8", errors="replace"))
        return "".join(out)

    def token_str(self, i: int) -> str:
        """One token's unique printable form (for logprobs): printable ASCII as itself, other bytes ``<0xAB>``."""
        if 32 <= i < 127:
            return chr(i)
        if 0 <= i < 256:
            return f"<0x{i:02X}>"
        return _SPECIAL.get(i, f"<|{i}|>")
