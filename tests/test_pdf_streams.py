"""Tests for transforms/pdf_streams.py: decoded sizes measured exactly, bombs refused early."""
from __future__ import annotations

import base64
import binascii
import random
import zlib

import pytest

from transforms.pdf_streams import StreamTooLarge, decoded_size

BODY = b"BT /F1 12 Tf 72 700 Td (Signed by) Tj ET\n" * 1000


def test_unfiltered_and_flate_sizes_are_exact() -> None:
    assert decoded_size(BODY, [], 1 << 20) == len(BODY)
    assert decoded_size(zlib.compress(BODY), ["FlateDecode"], 1 << 20) == len(BODY)
    assert decoded_size(zlib.compress(BODY), ["Fl"], 1 << 20) == len(BODY)


def test_filter_chains_decode_in_order() -> None:
    a85 = b"<~" + base64.a85encode(zlib.compress(BODY)) + b"~>"
    assert decoded_size(a85, ["ASCII85Decode", "FlateDecode"], 1 << 20) == len(BODY)
    hexed = binascii.hexlify(zlib.compress(BODY)) + b">"
    assert decoded_size(hexed, ["ASCIIHexDecode", "FlateDecode"], 1 << 20) == len(BODY)
    double = zlib.compress(zlib.compress(BODY))
    assert decoded_size(double, ["FlateDecode", "FlateDecode"], 1 << 20) == len(BODY)


def test_flate_bomb_is_refused_once_past_the_budget() -> None:
    bomb = zlib.compress(b"\0" * (50 << 20), 9)
    with pytest.raises(StreamTooLarge, match="inflates past 1000000 bytes"):
        decoded_size(bomb, ["FlateDecode"], 1_000_000)
    with pytest.raises(StreamTooLarge):
        decoded_size(zlib.compress(bomb), ["FlateDecode", "FlateDecode"], 1_000_000)


def test_truncated_flate_counts_what_inflates() -> None:
    noise = random.Random(0).randbytes(20_000)  # incompressible: 200 bytes in stand for about 200 out
    size = decoded_size(zlib.compress(noise)[:200], ["FlateDecode"], 1 << 20)
    assert 100 < size < 300


def test_broken_encoding_counts_the_raw_size() -> None:
    assert decoded_size(b"not zlib at all", ["FlateDecode", "FlateDecode"], 1 << 20) == 15


def test_filters_without_decoder_use_their_worst_case() -> None:
    assert decoded_size(b"\x01" * 100, ["RunLengthDecode"], 1 << 20) == 6400
    with pytest.raises(StreamTooLarge, match="LZWDecode on 100000 bytes"):
        decoded_size(b"\x80" * 100_000, ["LZWDecode"], 1 << 20)
    assert decoded_size(b"\x80" * 100, ["DCTDecode"], 1 << 20) == 100
