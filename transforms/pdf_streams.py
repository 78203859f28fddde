"""Bounded measurement of how large a PDF stream becomes once decoded, without ever holding it decoded.

A content stream of a few hundred kB can inflate to gigabytes (a "zip bomb"); rendering it would
make MuPDF allocate all of it. :func:`decoded_size` inflates FlateDecode incrementally in chunks of
at most 1 MiB and stops as soon as the budget is passed, so memory stays bounded by the raw size plus
a chunk.
"""
from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Iterator, Sequence

_CHUNK = 1 << 20
_FLATE = {"FlateDecode", "Fl"}
_HEX = {"ASCIIHexDecode", "AHx"}
_A85 = {"ASCII85Decode", "A85"}
# Worst-case expansion of filters we do not decode here: RunLength repeats a byte at most 128 times for
# 2 input bytes; an LZW code (>= 9 bits) stands for at most 4096 bytes. Other filters (DCT, JPX, CCITT,
# JBIG2, Crypt) do not belong on content streams: their raw size is counted.
_WORST_EXPANSION = {"RunLengthDecode": 64, "RL": 64, "LZWDecode": 4096 * 8 // 9, "LZW": 4096 * 8 // 9}


class StreamTooLarge(Exception):
    """The decoded stream would exceed the byte budget (the message says by how much, and why)."""


def _inflate_chunks(data: bytes, budget: int) -> Iterator[bytes]:
    """``data`` inflated in chunks of at most 1 MiB; :class:`StreamTooLarge` once past ``budget`` bytes.

    Never calls ``flush()``, which would return all the remaining output at once.
    """
    inflater = zlib.decompressobj()
    total = 0
    pending = data
    while not inflater.eof:
        chunk = inflater.decompress(pending, _CHUNK)
        pending = inflater.unconsumed_tail
        total += len(chunk)
        if total > budget:
            raise StreamTooLarge(f"inflates past {budget} bytes ({len(data)} bytes compressed)")
        if not chunk and not pending:
            break  # truncated stream: MuPDF renders what inflates, so do we
        yield chunk


def _inflate_size(data: bytes, budget: int) -> int:
    """The inflated size of zlib ``data``, never holding more than one chunk of it."""
    return sum(len(chunk) for chunk in _inflate_chunks(data, budget))


def _inflate(data: bytes, budget: int) -> bytes:
    """``data`` inflated (at most ``budget`` bytes are ever held)."""
    return b"".join(_inflate_chunks(data, budget))


def _ascii_hex(data: bytes) -> bytes:
    digits = bytes(c for c in data.split(b">", 1)[0] if chr(c) in "0123456789abcdefABCDEF")
    return binascii.unhexlify(digits + b"0" * (len(digits) % 2))


def _ascii85(data: bytes) -> bytes:
    body = data.strip()
    body = body[2:] if body.startswith(b"<~") else body
    return base64.a85decode(body.split(b"~>", 1)[0], adobe=False, ignorechars=b" \t\n\r\x0b\x0c")


def decoded_size(raw: bytes, filters: Sequence[str], budget: int) -> int:
    """Bytes that ``raw`` decodes to through the PDF ``filters`` (applied in order), at most ``budget``.

    Raises :class:`StreamTooLarge` when the decoded size, or for filters decoded only by MuPDF their
    worst-case size, exceeds ``budget``. Undecodable data counts as its raw size (MuPDF then reports it).
    """
    data = raw
    for position, name in enumerate(filters):
        last = position == len(filters) - 1
        try:
            if name in _FLATE:
                if last:
                    return _inflate_size(data, budget)
                data = _inflate(data, budget)
            elif name in _HEX:
                data = _ascii_hex(data)
            elif name in _A85:
                data = _ascii85(data)
            elif name in _WORST_EXPANSION:
                worst = len(data) * _WORST_EXPANSION[name]
                if worst > budget:
                    raise StreamTooLarge(f"uses {name} on {len(data)} bytes, which may decode to {worst} bytes, "
                                         f"more than {budget}; not decoded")
                return worst
            else:
                break
        except (zlib.error, ValueError):  # binascii.Error is a ValueError
            break  # corrupt encoding: MuPDF decides what, if anything, renders
    if len(data) > budget:
        raise StreamTooLarge(f"decodes to {len(data)} bytes, more than {budget}")
    return len(data)
