"""The internet checksum against a word-by-word reference (RFC 1071), and incremental update (RFC 1624)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from midonet.packets import checksum


def reference_sum(data: bytes) -> int:
    """RFC 1071 section 4.1, literally: add 16-bit words with end-around carry."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


@given(st.binary(max_size=300))
def test_ones_sum_matches_the_reference(data: bytes) -> None:
    assert checksum.ones_sum(data) == reference_sum(data)


def test_the_two_zeros() -> None:
    assert checksum.ones_sum(b"") == 0 and checksum.ones_sum(bytes(10)) == 0
    assert checksum.ones_sum(b"\xff\xff") == 0xFFFF
    assert checksum.ones_sum(b"\x80\x00\x80\x00") == 0x0001
    assert checksum.checksum(bytes(4)) == 0xFFFF


def test_rfc1071_example() -> None:
    # RFC 1071 section 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
    assert checksum.ones_sum(bytes.fromhex("0001f203f4f5f6f7")) == 0xDDF2
    assert checksum.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


@given(st.binary(min_size=2, max_size=200).filter(lambda d: len(d) % 2 == 0))
def test_stored_checksum_verifies(data: bytes) -> None:
    value = checksum.checksum(data)
    assert checksum.is_valid(data + value.to_bytes(2, "big"))


@given(st.binary(min_size=8, max_size=120).map(lambda d: d[: len(d) // 2 * 2]), st.data())
def test_incremental_update_equals_recomputation(data: bytes, draw: st.DataObject) -> None:
    offset = draw.draw(st.integers(0, len(data) // 2 - 1)) * 2
    new_word = draw.draw(st.integers(0, 0xFFFF))
    stored = checksum.checksum(data)
    changed = data[:offset] + new_word.to_bytes(2, "big") + data[offset + 2 :]
    assume(any(data) and any(changed))  # all-zero data: see `checksum.update` (never a real header)
    old_word = int.from_bytes(data[offset : offset + 2], "big")
    updated = checksum.update(stored, old_word, new_word)
    assert checksum.is_valid(changed + updated.to_bytes(2, "big"))


@given(st.binary(min_size=12, max_size=60).map(lambda d: d[: len(d) // 2 * 2]), st.binary(min_size=4, max_size=4))
def test_update_bytes_for_an_address(data: bytes, new: bytes) -> None:
    stored = checksum.checksum(data)
    changed = new + data[4:]
    assume(any(data) and any(changed))
    assert checksum.is_valid(changed + checksum.update_bytes(stored, data[:4], new).to_bytes(2, "big"))


def test_pseudo_header_adds_up() -> None:
    src, dst, segment = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), b"\x04\xd2\x00\x35\x00\x09\x00\x00q"
    pseudo = src + dst + bytes([0, 17]) + len(segment).to_bytes(2, "big")
    assert checksum.l4_checksum(src, dst, 17, segment) == checksum.checksum(pseudo + segment)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        checksum.pseudo_header_sum(b"\x00", bytes(4), 6, 20)
    with pytest.raises(ValueError):
        checksum.update_bytes(0, b"ab", b"abc")
