"""A JSON body read as it streams, with its base64 data URLs decoded on the way in.

A JSON edit of 16 large images is mostly base64 text. Parsing it whole would hold the body,
then a Python string per data URL, then the decoded bytes: three copies, and hundreds of
milliseconds of decoding on the event loop at the end. Instead ``JsonBodyScanner`` looks at the
body chunk by chunk, only as far as JSON's string syntax: every string value that starts
``data:<type>;base64,`` is base64-decoded piece by piece into a ``BlobWriter`` (the image's one
copy, spilled to disk past the threshold) and replaced, in the text kept for parsing, by a short
reference ``blob:<nonce>:<n>``. What remains is a few KB that ``orjson`` parses at once.

The nonce is random per body, so a client cannot write a reference to another image itself.
A data URL that cannot be decoded is not refused on the spot (the scanner does not yet know
which field it is in): its decoding stops, its bytes are dropped, and the failure is raised
with the right ``param`` when the parsed body names it.
"""

from __future__ import annotations

import binascii
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pybase64

from imagegate.core.blob import Blob, BlobWriter
from imagegate.core.errors import GatewayError, InvalidRequest, PayloadTooLarge
from imagegate.core.memory import MemoryLease
from imagegate.core.units import human_bytes
from imagegate.wire.limits import ByteBudget, WireLimits

_HEAD_MAX = 256  # how much of a string is read to tell whether it is a base64 data URL
_QUOTE_OR_ESCAPE = re.compile(rb'["\\]')
_URLSAFE = bytes.maketrans(b"-_", b"+/")
_ESCAPES_IN_BASE64 = ((b"\\/", b"/"), (b"\\n", b""), (b"\\r", b""), (b"\\t", b""))

Failure = Callable[[str], GatewayError]  # param -> the error to raise for it


@dataclass(slots=True)
class DataUrl:
    """One decoded data URL: its declared media type and its bytes, or why it failed."""

    media_type: str
    blob: Blob | None = None
    failure: Failure | None = None


class _DataUrlDecoder:
    """Base64 text in, bytes out to a writer, one chunk at a time."""

    def __init__(self, writer: BlobWriter, budget: ByteBudget) -> None:
        self.writer = writer
        self.budget = budget
        self.carry = b""  # characters short of a 4-character quad
        self.backslash = False  # the previous chunk ended inside an escape
        self.padded = False  # a quad with '=' was decoded: nothing may follow
        self.failure: Failure | None = None

    def feed(self, piece: bytes | memoryview) -> None:
        if self.failure is not None or not piece:
            return
        text = bytes(piece)
        if self.backslash:
            text = b"\\" + text
            self.backslash = False
        if b"\\" in text:
            trailing = len(text) - len(text.rstrip(b"\\"))
            if trailing % 2:  # an escape split across chunks: finish it with the next one
                text, self.backslash = text[:-1], True
            for escaped, plain in _ESCAPES_IN_BASE64:
                text = text.replace(escaped, plain)
            if b"\\" in text:
                self._fail_invalid()
                return
        if b"-" in text or b"_" in text or b" " in text:  # three memchr: cheaper than translate
            text = text.translate(_URLSAFE, b" ")
        if self.carry:
            text = self.carry + text
        whole = len(text) - len(text) % 4
        self.carry = text[whole:]
        self._decode(memoryview(text)[:whole])

    def finish(self) -> None:
        if self.failure is None and self.backslash:
            self._fail_invalid()
        if self.failure is not None:
            return
        if self.carry:
            if len(self.carry) == 1:
                self._fail_invalid()
                return
            self._decode(self.carry + b"=" * (-len(self.carry) % 4))  # unpadded base64

    def _decode(self, quads: bytes | memoryview) -> None:
        if not quads:
            return
        if self.padded:
            self._fail_invalid()
            return
        try:
            data = pybase64.b64decode(quads, validate=True)
        except (binascii.Error, ValueError):
            self._fail_invalid()
            return
        self.padded = quads[-1:] == b"="
        self.budget.spend(len(data))  # over the request's total: refused at once
        try:
            self.writer.write(data)
        except PayloadTooLarge as exc:
            limit_message = exc.message
            self.failure = lambda param: PayloadTooLarge(
                f"{param} {limit_message}", param=param, code="image_too_large"
            )

    def _fail_invalid(self) -> None:
        self.writer.discard()
        self.failure = lambda param: InvalidRequest(
            f"{param} has invalid base64 data.", param=param, code="invalid_base64"
        )


class JsonBodyScanner:
    """Feed the body's chunks in order, then ``finish()`` for the text to parse."""

    def __init__(self, limits: WireLimits, lease: MemoryLease) -> None:
        self.limits = limits
        self.lease = lease
        self.nonce = secrets.token_hex(8)
        self.urls: list[DataUrl] = []
        self.budget = ByteBudget(limits.max_request_bytes)  # shared with URL fetches
        self._text = bytearray()
        self._received = 0
        self._state = "out"  # out | head | string | data
        self._head = bytearray()
        self._escape = False
        self._decoder: _DataUrlDecoder | None = None

    @property
    def reference_prefix(self) -> str:
        return f"blob:{self.nonce}:"

    def lookup(self, value: str) -> DataUrl | None:
        """The data URL a reference string in the parsed body stands for, if it is one."""
        prefix = self.reference_prefix
        if not value.startswith(prefix):
            return None
        index = value[len(prefix) :]
        return self.urls[int(index)] if index.isdigit() and int(index) < len(self.urls) else None

    def feed(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self.limits.max_json_bytes:
            raise PayloadTooLarge(
                f"The JSON body is over the limit of {self.limits.max_json_bytes:,} bytes "
                f"({human_bytes(self.limits.max_json_bytes)}).",
                code="request_too_large",
            )
        pos, end = 0, len(chunk)
        while pos < end:
            if self._state == "out":
                quote = chunk.find(b'"', pos)
                stop = end if quote < 0 else quote + 1
                self._keep(memoryview(chunk)[pos:stop])
                pos = stop
                if quote >= 0:
                    self._state, self._head, self._escape = "head", bytearray(), False
            elif self._state == "head":
                pos = self._read_head(chunk, pos)
            elif self._state == "string":
                pos = self._read_string(chunk, pos)
            else:
                pos = self._read_data(chunk, pos)

    def finish(self) -> bytes:
        if self._state == "data":  # the body ended inside a data URL: orjson will refuse it
            self._end_data_url()
        elif self._state == "head":
            self._keep(self._head)
        return bytes(self._text)

    # -- states ------------------------------------------------------------------------------
    def _read_head(self, chunk: bytes, pos: int) -> int:
        """Collect a string's first bytes until it is clearly a data URL or clearly not."""
        head = self._head
        end = len(chunk)
        while pos < end:
            byte = chunk[pos]
            pos += 1
            if self._escape:
                self._escape = False
            elif byte == 0x5C:  # backslash
                self._escape = True
            elif byte == 0x22:  # the closing quote: a short string
                head.append(byte)
                self._keep(head)
                self._state = "out"
                return pos
            elif byte == 0x2C and self._is_base64_data_url(head):  # ',' ends the header
                self._start_data_url(head)
                return pos
            head.append(byte)
            if (len(head) >= 5 and head[:5].lower() != b"data:") or len(head) >= _HEAD_MAX:
                self._keep(head)
                self._state = "string"
                return pos
        return pos

    def _read_string(self, chunk: bytes, pos: int) -> int:
        end = len(chunk)
        if self._escape:
            self._keep(chunk[pos : pos + 1])
            self._escape = False
            return pos + 1
        match = _QUOTE_OR_ESCAPE.search(chunk, pos)
        if match is None:
            self._keep(memoryview(chunk)[pos:end])
            return end
        at = match.start()
        self._keep(memoryview(chunk)[pos : at + 1])
        if chunk[at] == 0x22:
            self._state = "out"
        else:
            self._escape = True
        return at + 1

    def _read_data(self, chunk: bytes, pos: int) -> int:
        assert self._decoder is not None
        quote = chunk.find(b'"', pos)
        if quote < 0:
            self._decoder.feed(memoryview(chunk)[pos:])
            return len(chunk)
        self._decoder.feed(memoryview(chunk)[pos:quote])
        self._end_data_url()
        self._keep(b'"')
        self._state = "out"
        return quote + 1

    # -- data URLs ---------------------------------------------------------------------------
    @staticmethod
    def _is_base64_data_url(head: bytearray) -> bool:
        header = bytes(head).replace(b"\\/", b"/").lower()
        if not header.startswith(b"data:") or b"\\" in header:
            return False  # other escapes in the header: parsed the slow way, as a string
        return b"base64" in (part.strip() for part in header[5:].split(b";")[1:])

    def _start_data_url(self, head: bytearray) -> None:
        header = bytes(head).replace(b"\\/", b"/")
        media_type = header[5:].split(b";")[0].strip().lower().decode("latin-1")
        url = DataUrl(media_type)
        self.urls.append(url)
        writer = BlobWriter(
            self.lease,
            spill_bytes=self.limits.spill_bytes,
            max_bytes=self.limits.max_image_bytes,
            on_limit=lambda limit: PayloadTooLarge(
                f"decodes to over {limit:,} bytes, the limit per image ({human_bytes(limit)})."
            ),
        )
        self._decoder = _DataUrlDecoder(writer, self.budget)
        self._keep(f"{self.reference_prefix}{len(self.urls) - 1}".encode())
        self._state = "data"

    def _end_data_url(self) -> None:
        decoder = self._decoder
        assert decoder is not None
        decoder.finish()
        url = self.urls[-1]
        if decoder.failure is not None:
            url.failure = decoder.failure
        else:
            url.blob = decoder.writer.finish()
        self._decoder = None

    def _keep(self, text: bytes | bytearray | memoryview) -> None:
        """Keep text for the parser: everything but data URLs, capped."""
        self.lease.reserve(len(text))
        self._text += text
        if len(self._text) > self.limits.max_json_text_bytes:
            raise PayloadTooLarge(
                "The JSON body has over "
                f"{human_bytes(self.limits.max_json_text_bytes)} of text outside its base64 "
                "data URLs; images go in images[].image_url as data URLs or http(s) URLs.",
                code="request_too_large",
            )
