#!/usr/bin/env python3
"""Generates the malformed/malicious request corpus: one raw file per case + cases.tsv.

The case list below is the source of truth; the ``*.http`` files and ``cases.tsv`` are
generated from it and committed, so the Rust tests read plain files.
Re-generate with ``python3 hardening/corpus/make_corpus.py`` (``--check`` verifies
the committed files are up to date).

cases.tsv columns: id, file, level, tags, expect, split, description.

level: ``strict`` = a MUST of RFC 9112/9110 or a safety rule of
``../shared/docs/proxy-security.md`` §1.1 (counted in scorecard row S1);
``lenient`` = SHOULD/MAY rules where several behaviours are safe (reported, not gating).

expect: alternatives separated by `` | ``; each is ``kind[:arg;arg...]``:
- ``reject:400,501`` the proxy answers one of these statuses (``none`` = closes without
  answering), closes the connection, and the origin receives no byte for this case;
- ``deny:403`` the proxy answers one of these statuses and the origin receives nothing
  (the connection may stay open);
- ``fwd[:n=N;body=S;path=P;host=H;noh=NAME;has=NAME;hasv=NAME=VALUE;close]`` the origin
  receives exactly N (default 1) well-formed requests and the client gets N 2xx responses;
  ``body``/``bodylen``/``path``/``host`` check the (first) request the origin parsed, ``noh`` a
  header the origin must not see, ``has``/``hasv`` one it must see (``hasw``: value compared with
  whitespace runs collapsed, for obs-fold replaced by SP); ``close``: the
  proxy must close the client connection after answering;
- ``incomplete`` the request never completes: the origin must not see a complete
  request and the client must not get a 2xx.
Every case additionally requires: the origin never parses a request whose target contains
``/smuggled``, the origin's strict parser never fails, and a fresh probe request after the
case is answered by the origin with its own path (the upstream pool is not poisoned).

In cases.tsv, ``expect`` escapes ``\\`` and every byte outside 0x20-0x7e as ``\\xNN``.

split: ``-`` or a byte offset: send bytes[:offset], wait for one response, send the rest.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = b"Host: example.com\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n"


def req(line: bytes, headers: list[bytes] | bytes = b"", body: bytes = b"", host: bool = True) -> bytes:
    if isinstance(headers, list):
        headers = b"".join(h + b"\r\n" for h in headers)
    return line + b"\r\n" + (HOST if host else b"") + headers + b"\r\n" + body


def post(headers: list[bytes], body: bytes, line: bytes = b"POST / HTTP/1.1") -> bytes:
    return req(line, headers, body)


def cl_post(body: bytes, extra: list[bytes] | None = None) -> bytes:
    return post([b"Content-Length: %d" % len(body)] + (extra or []), body)


def te_cl_smuggle(te_lines: list[bytes]) -> bytes:
    """CL covers the whole body; a TE-reader sees `0` then a smuggled request."""
    body = b"0\r\n\r\n" + SMUGGLED
    return post([b"Content-Length: %d" % len(body)] + te_lines, body)


def chunked(body_bytes: bytes, extra: list[bytes] | None = None) -> bytes:
    return post([b"Transfer-Encoding: chunked"] + (extra or []), body_bytes)


def hdr(h: bytes) -> bytes:
    return req(b"GET / HTTP/1.1", [h])


OK_CHUNKS = b"5\r\nhello\r\n0\r\n\r\n"
REJ = "reject:400"
REJ_TE = "reject:400,422,501"
FWD_TE_CLOSE = "fwd:body=;close"

# (id, level, tags, expect, split, description, raw)
CASES: list[tuple[str, str, str, str, str, str, bytes]] = []


def case(cid: str, level: str, expect: str, desc: str, raw: bytes, tags: str = "-", split: str = "-") -> None:
    CASES.append((cid, level, tags, expect, split, desc, raw))


# ---------------------------------------------------------------- A: controls
case("A01", "strict", "fwd:path=/", "plain GET", req(b"GET / HTTP/1.1"))
case("A02", "strict", "fwd:body=hello", "POST with Content-Length", cl_post(b"hello"))
case("A03", "strict", "fwd:body=hello", "POST chunked", chunked(OK_CHUNKS))
case("A04", "strict", "deny:403", "ACL control: /internal is denied", req(b"GET /internal HTTP/1.1"), "acl")
case("A05", "strict", "fwd:n=2", "two pipelined GETs", req(b"GET /a HTTP/1.1") + req(b"GET /b HTTP/1.1"))
case("A06", "strict", "fwd:path=/", "HTTP/1.0 without Host", req(b"GET / HTTP/1.0", host=False))
case("A07", "strict", "fwd:host=a.example", "absolute-form target", req(b"GET http://a.example/ HTTP/1.1", [b"Host: a.example"], host=False))
case("A08", "lenient", "fwd:hasv=x-a=caf\xe9", "obs-text in a value is forwarded unchanged", hdr(b"X-A: caf\xe9"))
case("A09", "strict", "fwd:body=hello", "chunk extension", chunked(b"5;foo=bar\r\nhello\r\n0\r\n\r\n"))
case("A10", "strict", "fwd:body=hello", "Transfer-Encoding: CHUNKED (case-insensitive)", post([b"Transfer-Encoding: CHUNKED"], OK_CHUNKS))
case("A11", "strict", "fwd:body=hello", "Content-Length with leading zeros", post([b"Content-Length: 0005"], b"hello"))
case("A12", "lenient", "fwd:body=hello | reject:400", "two identical Content-Length lines", post([b"Content-Length: 5", b"Content-Length: 5"], b"hello"))
case("A13", "strict", "fwd:body=hello", "Expect: 100-continue with body", cl_post(b"hello", [b"Expect: 100-continue"]))
case("A14", "strict", "fwd", "empty header value", hdr(b"X-Empty:"))
case("A15", "strict", "fwd:body=hello", "chunked with a trailer", chunked(b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"))
case("A16", "strict", "fwd", "HEAD request", req(b"HEAD / HTTP/1.1"))
case("A17", "strict", "fwd", "Host with port", req(b"GET / HTTP/1.1", [b"Host: example.com:8080"], host=False))
case("A18", "strict", "fwd:hasv=x-a=a\tb", "HTAB inside a value", hdr(b"X-A: a\tb"))
case("A19", "strict", "fwd:body=helloworld", "chunk-size in uppercase hex", chunked(b"A\r\nhelloworld\r\n0\r\n\r\n"))
case("A20", "strict", "fwd:body=hello", "chunk-size with leading zeros", chunked(b"0005\r\nhello\r\n0\r\n\r\n"))
case("A21", "strict", "fwd", "IPv6 literal Host", req(b"GET / HTTP/1.1", [b"Host: [::1]:80"], host=False))

# ------------------------------------------------------ B: Content-Length / TE conflicts
case("B01", "strict", f"{REJ} | {FWD_TE_CLOSE}", "CL.TE: CL then TE, smuggled request after the last chunk", te_cl_smuggle([b"Transfer-Encoding: chunked"]))
case("B02", "strict", f"{REJ} | {FWD_TE_CLOSE}", "TE.CL: TE then CL", post([b"Transfer-Encoding: chunked", b"Content-Length: %d" % (5 + len(SMUGGLED))], b"0\r\n\r\n" + SMUGGLED))
case("B03", "strict", f"{REJ} | fwd:body=hello;close", "TE.CL with CL shorter than the chunked body", post([b"Transfer-Encoding: chunked", b"Content-Length: 3"], OK_CHUNKS))
case("B04", "strict", REJ_TE, "CL + Transfer-Encoding: identity", te_cl_smuggle([b"Transfer-Encoding: identity"]))
case("B05", "strict", REJ, "two different Content-Length lines", post([b"Content-Length: 5", b"Content-Length: 6"], b"hello!"))
case("B06", "strict", REJ, "Content-Length list 5, 6", post([b"Content-Length: 5, 6"], b"hello!"))
case("B07", "lenient", "fwd:body=hello | reject:400", "Content-Length list 5, 5", post([b"Content-Length: 5, 5"], b"hello"))
case("B08", "strict", REJ, "Content-Length +5", post([b"Content-Length: +5"], b"hello"))
case("B09", "strict", REJ, "Content-Length -1", post([b"Content-Length: -1"], b"hello"))
case("B10", "strict", REJ, "Content-Length 0x5", post([b"Content-Length: 0x5"], b"hello"))
case("B11", "strict", REJ, "Content-Length 1_0", post([b"Content-Length: 1_0"], b"helloworld"))
case("B12", "strict", REJ, "Content-Length '1 0'", post([b"Content-Length: 1 0"], b"helloworld"))
case("B13", "strict", REJ, "empty Content-Length (CVE-2023-40225)", post([b"Content-Length:"], b"0\r\n\r\n" + SMUGGLED))
case("B14", "strict", "reject:400,413", "Content-Length beyond u64", post([b"Content-Length: 99999999999999999999"], b"hello"))
case("B15", "strict", REJ, "Content-Length 5a", post([b"Content-Length: 5a"], b"hello"))
case("B16", "strict", "reject:400,501,505", "HTTP/1.0 with Transfer-Encoding: chunked", post([b"Transfer-Encoding: chunked"], OK_CHUNKS, b"POST / HTTP/1.0"))
case("B17", "strict", "reject:400,501,505", "HTTP/1.0 with TE and CL", post([b"Transfer-Encoding: chunked", b"Content-Length: 5"], OK_CHUNKS, b"POST / HTTP/1.0"))
case("B18", "strict", f"{REJ} | {FWD_TE_CLOSE}", "GET with CL and TE", req(b"GET / HTTP/1.1", [b"Content-Length: %d" % (5 + len(SMUGGLED)), b"Transfer-Encoding: chunked"], b"0\r\n\r\n" + SMUGGLED))
case("B19", "strict", REJ, "Content-Length with a comma only", post([b"Content-Length: ,"], b"hello"))
case("B20", "strict", REJ, "Content-Length 5 and an empty one", post([b"Content-Length: 5", b"Content-Length:"], b"hello"))
case("B21", "lenient", "fwd:body=hello | reject:400", "Content-Length with trailing OWS", post([b"Content-Length: 5 \t"], b"hello"))
case("B22", "strict", "fwd:body=;close | reject:400", "Connection: close then more bytes (must not be processed)", req(b"GET / HTTP/1.1", [b"Connection: close"]) + SMUGGLED)

# ---------------------------------------------------------------- C: TE value tricks
case("C01", "strict", REJ_TE, "Transfer-Encoding: chunked, chunked", te_cl_smuggle([b"Transfer-Encoding: chunked, chunked"]))
case("C02", "strict", REJ_TE, "two Transfer-Encoding: chunked lines", te_cl_smuggle([b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"]))
case("C03", "strict", REJ_TE, "Transfer-Encoding: xchunked", te_cl_smuggle([b"Transfer-Encoding: xchunked"]))
case("C04", "strict", REJ_TE, "chunked, identity (chunked not last)", te_cl_smuggle([b"Transfer-Encoding: chunked, identity"]))
case("C05", "strict", REJ_TE, "identity, chunked (identity no longer exists)", te_cl_smuggle([b"Transfer-Encoding: identity, chunked"]))
case("C06", "lenient", f"{REJ_TE} | fwd:body=;close", "gzip, chunked with CL", te_cl_smuggle([b"Transfer-Encoding: gzip, chunked"]))
case("C07", "strict", REJ_TE + " | fwd:bodylen=%d" % (5 + len(SMUGGLED)), "TE as an obs-fold continuation", te_cl_smuggle([b"X-A: b", b" Transfer-Encoding: chunked"]))
case("C08", "strict", REJ_TE, "space before the colon in Transfer-Encoding", te_cl_smuggle([b"Transfer-Encoding : chunked"]))
case("C09", "strict", f"{REJ} | {FWD_TE_CLOSE}", "HTAB as OWS before chunked", te_cl_smuggle([b"Transfer-Encoding:\tchunked"]))
case("C10", "strict", REJ_TE, 'Transfer-Encoding: "chunked"', te_cl_smuggle([b'Transfer-Encoding: "chunked"']))
case("C11", "lenient", "fwd:bodylen=%d | reject:400" % (5 + len(SMUGGLED)), "Transfer_Encoding (underscore) is not TE", te_cl_smuggle([b"Transfer_Encoding: chunked"]))
case("C12", "strict", REJ_TE, "VT after chunked", te_cl_smuggle([b"Transfer-Encoding: chunked\x0b"]))
case("C13", "strict", REJ_TE, "NUL after chunked", te_cl_smuggle([b"Transfer-Encoding: chunked\x00"]))
case("C14", "strict", REJ_TE, "FF before chunked", te_cl_smuggle([b"Transfer-Encoding: \x0cchunked"]))
case("C15", "strict", REJ_TE, "chunked with a parameter", te_cl_smuggle([b"Transfer-Encoding: chunked;q=1"]))
case("C16", "strict", REJ_TE, "unknown coding before chunked", te_cl_smuggle([b"Transfer-Encoding: cow, chunked"]))
case("C17", "strict", REJ_TE, "bare CR hides TE inside another field", te_cl_smuggle([b"X-A: x\rTransfer-Encoding: chunked"]))
case("C18", "strict", f"{REJ_TE} | {FWD_TE_CLOSE}", "TE value on an obs-fold line", te_cl_smuggle([b"Transfer-Encoding:", b" chunked"]))
case("C19", "lenient", f"{REJ_TE} | {FWD_TE_CLOSE}", "empty list element before chunked", te_cl_smuggle([b"Transfer-Encoding: ,chunked"]))
case("C20", "strict", f"{REJ_TE} | {FWD_TE_CLOSE}", "trailing empty list element after chunked", te_cl_smuggle([b"Transfer-Encoding: chunked,"]))
case("C21", "strict", f"{REJ} | {FWD_TE_CLOSE}", "Transfer-Encoding: Chunked (mixed case)", te_cl_smuggle([b"Transfer-Encoding: Chunked"]))
case("C22", "strict", REJ_TE, "two TE lines: chunked then gzip", te_cl_smuggle([b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip"]))
case("C23", "strict", REJ_TE, "0xff after the TE name", te_cl_smuggle([b"Transfer-Encoding\xff: chunked"]))
case("C24", "strict", REJ_TE, "TE without CL: chunked, identity", post([b"Transfer-Encoding: chunked, identity"], OK_CHUNKS))
case("C25", "strict", REJ_TE, "TE without CL: unknown coding only", post([b"Transfer-Encoding: foo"], b"hello"))
case("C26", "strict", REJ_TE, "TE without CL: chunked twice", post([b"Transfer-Encoding: chunked, chunked"], b"a\r\n5\r\nhello\r\n\r\n0\r\n\r\n"))
case("C27", "strict", REJ_TE, "leading SP before the TE name on the first field line", b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: example.com\r\n\r\n" + OK_CHUNKS)
case("C28", "strict", REJ_TE, "NUL inside the TE name", te_cl_smuggle([b"Transfer\x00Encoding: chunked"]))

# -------------------------------------------------------------- D: chunked body syntax
case("D01", "strict", REJ, "chunk-size +5", chunked(b"+5\r\nhello\r\n0\r\n\r\n"))
case("D02", "strict", REJ, "chunk-size 0x5", chunked(b"0x5\r\nhello\r\n0\r\n\r\n"))
case("D03", "strict", REJ, "chunk-size -5", chunked(b"-5\r\nhello\r\n0\r\n\r\n"))
case("D04", "strict", REJ, "leading SP before chunk-size", chunked(b" 5\r\nhello\r\n0\r\n\r\n"))
case("D05", "lenient", "fwd:body=hello | reject:400", "trailing SP after chunk-size", chunked(b"5 \r\nhello\r\n0\r\n\r\n"))
case("D06", "strict", REJ, "empty chunk-size", chunked(b"\r\nhello\r\n0\r\n\r\n"))
case("D07", "strict", "reject:400,413", "chunk-size wraps u64 (10000000000000005)", chunked(b"10000000000000005\r\nhello\r\n0\r\n\r\n"))
case("D08", "strict", "reject:400,413", "chunk-size ffffffffffffffffff", chunked(b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n"))
case("D09", "strict", REJ, "bare LF after chunk-size", chunked(b"5\nhello\r\n0\r\n\r\n"))
case("D10", "strict", REJ, "chunk-data longer than chunk-size", chunked(b"5\r\nhelloX\r\n0\r\n\r\n"))
case("D11", "strict", REJ, "bare LF after chunk-data", chunked(b"5\r\nhello\n0\r\n\r\n"))
case("D12", "strict", REJ, "bare LF in last-chunk", chunked(b"5\r\nhello\r\n0\n\n"))
case("D13", "strict", REJ, "chunk-ext without ';'", chunked(b"5 foo\r\nhello\r\n0\r\n\r\n"))
case("D14", "lenient", "fwd:body=hello | reject:400", "BWS before ';' in chunk-ext", chunked(b"5 ;foo=bar\r\nhello\r\n0\r\n\r\n"))
case("D15", "strict", "fwd:body=hello", "quoted-string chunk-ext value", chunked(b'5;a="b c"\r\nhello\r\n0\r\n\r\n'))
case("D16", "strict", REJ, "NUL in chunk-ext", chunked(b"5;a=\x00\r\nhello\r\n0\r\n\r\n"))
case("D17", "strict", REJ, "bare CR in chunk-ext", chunked(b"5;a\rb\r\nhello\r\n0\r\n\r\n"))
case("D18", "strict", "incomplete | reject:400,408", "chunk shorter than its size, then silence", chunked(b"5\r\nhel"))
case("D19", "strict", "incomplete | reject:400,408", "missing last-chunk", chunked(b"5\r\nhello\r\n"))
case("D20", "strict", "fwd:body=hello", "Content-Length in a trailer", chunked(b"5\r\nhello\r\n0\r\nContent-Length: 50\r\n\r\n"))
case("D21", "strict", "fwd:body=hello", "Transfer-Encoding in a trailer", chunked(b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"))
case("D22", "lenient", "fwd:body=hello | reject:400,413", "8 KB chunk extension", chunked(b"5;" + b"a" * 8192 + b"\r\nhello\r\n0\r\n\r\n"))
case("D23", "strict", "incomplete | reject:400,408", "last-chunk without the final CRLF", chunked(b"5\r\nhello\r\n0\r\n"))
case("D24", "strict", REJ, "bare LF ends a trailer line", chunked(b"5\r\nhello\r\n0\r\nX-A: y\n\r\n"))
case("D25", "strict", REJ, "obs-fold in a trailer", chunked(b"5\r\nhello\r\n0\r\nX-A: y\r\n z\r\n\r\n"))
case("D26", "strict", REJ, "chunk-size in non-ASCII digits", chunked(b"\xd9\xa5\r\nhello\r\n0\r\n\r\n"))
case("D27", "strict", REJ, "chunk-data followed by bare CR", chunked(b"5\r\nhello\r0\r\n\r\n"))
case("D28", "strict", "fwd:body=hello;n=2", "chunked body then a pipelined GET", chunked(OK_CHUNKS) + req(b"GET /next HTTP/1.1"))

# ------------------------------------------------- E: field syntax, CTLs, line endings
case("E01", "strict", REJ, "SP before the colon", req(b"GET / HTTP/1.1", [b"X-A : b"]))
case("E02", "strict", REJ, "HTAB before the colon", req(b"GET / HTTP/1.1", [b"X-A\t: b"]))
case("E03", "strict", "reject:400 | fwd:hasw=x-a=a b", "obs-fold in a field", req(b"GET / HTTP/1.1", [b"X-A: a", b" b"]))
case("E04", "strict", REJ, "obs-fold in Host", req(b"GET / HTTP/1.1", [b"Host: example.com", b" .evil"], host=False))
case("E05", "strict", "reject:400 | fwd", "bare LF line endings throughout", b"GET / HTTP/1.1\nHost: example.com\n\n")
case("E06", "strict", "reject:400 | fwd:hasv=x-b=c", "bare LF ending one field line", b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: b\nX-B: c\r\n\r\n")
case("E07", "strict", "reject:400 | fwd:hasw=x-a=a b", "bare CR inside a value", hdr(b"X-A: a\rb"))
case("E08", "strict", REJ, "bare CR ends the request line", b"GET / HTTP/1.1\rHost: example.com\r\n\r\n")
case("E09", "strict", REJ, "NUL in a value", hdr(b"X-A: a\x00b"))
case("E10", "strict", REJ, "0x01 in a value", hdr(b"X-A: a\x01b"))
case("E11", "strict", REJ, "0x7f in a value", hdr(b"X-A: a\x7fb"))
case("E12", "strict", REJ, "0x1f in a value", hdr(b"X-A: a\x1fb"))
case("E13", "strict", REJ, "VT in a value", hdr(b"X-A: a\x0bb"))
case("E14", "strict", REJ, "NUL in a name", hdr(b"X-\x00A: b"))
case("E15", "strict", REJ, "SP inside a name", hdr(b"X A: b"))
case("E16", "strict", REJ, "0x80 in a name", hdr(b"X-\x80A: b"))
case("E17", "strict", REJ, "empty name", hdr(b": b"))
case("E18", "strict", REJ, "field line without a colon", hdr(b"X-A"))
case("E19", "strict", "reject:400 | fwd:host=example.com", "whitespace before the first field line", b"GET / HTTP/1.1\r\n Host: example.com\r\nHost: example.com\r\n\r\n")
case("E20", "strict", REJ, "'(' in a name", hdr(b"X(A): b"))
case("E21", "strict", REJ, "0x7f in a name", hdr(b"X-A\x7f: b"))
case("E22", "lenient", "fwd | reject:400", "empty line before the request line", b"\r\n" + req(b"GET / HTTP/1.1"))
case("E23", "strict", REJ, "FF in a value", hdr(b"X-A: \x0c"))
case("E24", "strict", REJ, "ESC in a value", hdr(b"X-A: \x1b[31m"))
case("E25", "strict", REJ, "NUL in Host", req(b"GET / HTTP/1.1", [b"Host: example.com\x00.evil"], host=False))
case("E26", "strict", REJ, "NUL in Content-Length", post([b"Content-Length: 5\x00"], b"hello"))
case("E27", "strict", "reject:400 | fwd:host=example.com", "CR LF CR LF split by SP (header section ends early?)", b"GET / HTTP/1.1\r\nHost: example.com\r\n \r\n\r\n")

# ------------------------------------------------------- F: request line and target
case("F01", "strict", "reject:400,505,none", "HTTP/0.9 request", b"GET /\r\n")
case("F02", "strict", "reject:400,505", "lower-case version", b"GET / http/1.1\r\nHost: example.com\r\n\r\n")
case("F03", "strict", "reject:400,505", "HTTP/1.32", b"GET / HTTP/1.32\r\nHost: example.com\r\n\r\n")
case("F04", "strict", "reject:400,505", "HTTP/2.0 on HTTP/1", b"GET / HTTP/2.0\r\nHost: example.com\r\n\r\n")
case("F05", "strict", REJ, "SP after the version", b"GET / HTTP/1.1 \r\nHost: example.com\r\n\r\n")
case("F06", "lenient", "reject:400 | fwd:path=/", "two SPs after the method", b"GET  / HTTP/1.1\r\nHost: example.com\r\n\r\n")
case("F07", "lenient", "reject:400 | fwd:path=/", "HTAB as separator", b"GET\t/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
case("F08", "strict", "reject:400,501", "'(' in the method", req(b"G(ET / HTTP/1.1"))
case("F09", "strict", REJ, "SP inside the target", req(b"GET /a b HTTP/1.1"))
case("F10", "strict", "reject:400 | fwd:path=/a", "'#' in the target (CVE-2023-45539)", req(b"GET /a#b HTTP/1.1"))
case("F11", "strict", REJ, "NUL in the target", req(b"GET /a\x00b HTTP/1.1"))
case("F12", "strict", REJ, "0x01 in the target", req(b"GET /a\x01b HTTP/1.1"))
case("F13", "strict", "deny:403,400", "ACL bypass: /%69nternal", req(b"GET /%69nternal HTTP/1.1"), "acl")
case("F14", "strict", "reject:400,403", "'*' with GET", req(b"GET * HTTP/1.1"))
case("F15", "strict", "deny:403,400", "ACL bypass: /x/../internal", req(b"GET /x/../internal HTTP/1.1"), "acl")
case("F16", "strict", "deny:403,400", "ACL bypass: //internal", req(b"GET //internal HTTP/1.1"), "acl")
case("F17", "strict", "deny:403,400", "ACL on absolute-form: http://example.com/internal", req(b"GET http://example.com/internal HTTP/1.1"), "acl")
case("F18", "strict", "deny:403,400", "ACL bypass: /x/%2e%2e/internal", req(b"GET /x/%2e%2e/internal HTTP/1.1"), "acl")
case("F19", "strict", "deny:403,400", "ACL bypass: /./internal", req(b"GET /./internal HTTP/1.1"), "acl")
case("F20", "strict", "reject:400,403,405,501", "authority-form with GET", req(b"GET example.com:80 HTTP/1.1"))
case("F21", "lenient", "reject:400,403,405,501 | fwd", "CONNECT", req(b"CONNECT example.com:443 HTTP/1.1"))
case("F22", "lenient", "reject:400 | fwd", "userinfo in absolute-form", req(b"GET http://user@example.com/ HTTP/1.1"))
case("F23", "strict", "reject:400,414,431", "64 KB request line", req(b"GET /" + b"a" * 65536 + b" HTTP/1.1"), "limit")
case("F24", "lenient", "fwd | reject:400,405,501", "lower-case method", req(b"get / HTTP/1.1"))
case("F25", "strict", REJ, "target without leading '/'", req(b"GET index.html HTTP/1.1"))
case("F26", "lenient", "fwd | reject:400", "invalid percent-encoding in the path", req(b"GET /%zz HTTP/1.1"))
case("F27", "strict", REJ, "NUL after the version", b"GET / HTTP/1.1\x00\r\nHost: example.com\r\n\r\n")
case("F28", "lenient", "fwd | reject:400", "https absolute-form", req(b"GET https://example.com/ HTTP/1.1"))
case("F29", "lenient", "reject:400,501", "ftp absolute-form", req(b"GET ftp://example.com/ HTTP/1.1"))
case("F30", "strict", "reject:400,505", "version HTTP/1", b"GET / HTTP/1\r\nHost: example.com\r\n\r\n")
case("F31", "strict", "reject:400,501", "empty method", b" / HTTP/1.1\r\nHost: example.com\r\n\r\n")
case("F32", "strict", REJ, "0x80 in the target", req(b"GET /caf\xe9 HTTP/1.1"))
case("F33", "strict", "deny:403,400", "ACL bypass: /%2e/internal", req(b"GET /%2e/internal HTTP/1.1"), "acl")
case("F34", "strict", "deny:403,400", "ACL bypass: stray % completed by an escape: /%6%39nternal", req(b"GET /%6%39nternal HTTP/1.1"), "acl")

# ---------------------------------------------------------------------- G: Host rules
case("G01", "strict", REJ, "HTTP/1.1 without Host", req(b"GET / HTTP/1.1", host=False))
case("G02", "strict", REJ, "two identical Host lines", req(b"GET / HTTP/1.1", [b"Host: example.com"]))
case("G03", "strict", REJ, "two different Host lines", req(b"GET / HTTP/1.1", [b"Host: evil.example"]))
case("G04", "strict", REJ, "SP in Host", req(b"GET / HTTP/1.1", [b"Host: a b"], host=False))
case("G05", "strict", REJ, "'/' in Host", req(b"GET / HTTP/1.1", [b"Host: a/b"], host=False))
case("G06", "strict", REJ, "'@' in Host", req(b"GET / HTTP/1.1", [b"Host: user@a"], host=False))
case("G07", "lenient", "fwd | reject:400", "empty Host", req(b"GET / HTTP/1.1", [b"Host:"], host=False))
case("G08", "strict", "fwd:host=a.example | reject:400", "absolute-form and a different Host", req(b"GET http://a.example/ HTTP/1.1", [b"Host: b.example"], host=False))
case("G09", "strict", REJ, "',' in Host", req(b"GET / HTTP/1.1", [b"Host: a, b"], host=False))
case("G10", "strict", REJ, "non-numeric port in Host", req(b"GET / HTTP/1.1", [b"Host: a:xyz"], host=False))
case("G11", "lenient", "fwd | reject:400", "port 99999 in Host", req(b"GET / HTTP/1.1", [b"Host: a:99999"], host=False))
case("G12", "strict", REJ, "two Host lines in HTTP/1.0", req(b"GET / HTTP/1.0", [b"Host: evil.example"]))
case("G13", "strict", REJ, "'?' in Host", req(b"GET / HTTP/1.1", [b"Host: a?b"], host=False))
case("G14", "strict", REJ, "'#' in Host", req(b"GET / HTTP/1.1", [b"Host: a#b"], host=False))
case("G15", "strict", REJ, "unclosed IPv6 literal in Host", req(b"GET / HTTP/1.1", [b"Host: [::1"], host=False))
case("G16", "strict", REJ, "two Host lines, the second empty", req(b"GET / HTTP/1.1", [b"Host:"]))

# ------------------------------------------- H: connection management, Expect, Upgrade
case("H01", "strict", "fwd:body=hello", "Connection names Content-Length", cl_post(b"hello", [b"Connection: content-length"]))
case("H02", "lenient", "fwd:has=x-forwarded-for", "Connection names X-Forwarded-For", hdr(b"Connection: x-forwarded-for"))
case("H03", "lenient", "fwd:noh=x-secret", "Connection names a custom header (hop-by-hop)", req(b"GET / HTTP/1.1", [b"Connection: keep-alive, X-Secret", b"X-Secret: 1"]))
case("H04", "lenient", "fwd:noh=proxy-connection", "Proxy-Connection is hop-by-hop", hdr(b"Proxy-Connection: keep-alive"))
case("H05", "strict", "fwd:body=hello | reject:417", "obfuscated Expect does not change framing", cl_post(b"hello", [b"Expect: y 100-continue"]))
case("H06", "strict", "fwd:body=hello | reject:417", "Expect: 100-continue, x", cl_post(b"hello", [b"Expect: 100-continue, x"]))
ws = req(b"GET /ws HTTP/1.1", [b"Upgrade: websocket", b"Connection: Upgrade", b"Sec-WebSocket-Version: 1337", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="])
case("H07", "strict", "fwd:path=/ws", "WebSocket smuggling: origin refuses the upgrade, next request must still pass the ACL", ws + req(b"GET /internal HTTP/1.1"), "acl", str(len(ws)))
case("H08", "strict", "reject:400 | fwd:noh=http2-settings;noh=upgrade", "h2c upgrade is stripped or refused", req(b"GET / HTTP/1.1", [b"Upgrade: h2c", b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA", b"Connection: Upgrade, HTTP2-Settings"]))
case("H09", "lenient", "reject:400 | fwd:noh=upgrade", "Upgrade: h2c without Connection: upgrade", hdr(b"Upgrade: h2c"))
case("H10", "strict", "fwd", "Expect: 100-continue on a GET without body", hdr(b"Expect: 100-continue"))
case("H11", "lenient", "fwd:noh=te", "TE: trailers is hop-by-hop", req(b"GET / HTTP/1.1", [b"TE: trailers", b"Connection: TE"]))
case("H12", "strict", "fwd:n=1", "valid GET then an invalid request (bare CR)", req(b"GET /a HTTP/1.1") + b"GET /b HTTP/1.1\r\nHost: example.com\r\nX: a\rb\r\n\r\n")
case("H13", "strict", REJ, "invalid request then a valid one", req(b"GET / HTTP/1.1", [b"X-A : b"]) + req(b"GET /a HTTP/1.1"))
case("H14", "strict", "fwd:body=hello", "Connection names Transfer-Encoding", chunked(OK_CHUNKS, [b"Connection: transfer-encoding"]))
case("H15", "lenient", "fwd:noh=keep-alive", "Keep-Alive is hop-by-hop", req(b"GET / HTTP/1.1", [b"Keep-Alive: timeout=5", b"Connection: keep-alive"]))
case("H16", "strict", "fwd:body=hello;n=2", "HTTP/1.0 keep-alive POST then a GET", post([b"Content-Length: 5", b"Connection: keep-alive"], b"hello", b"POST / HTTP/1.0") + req(b"GET /next HTTP/1.1"))
case("H17", "strict", "fwd:path=/ws | reject:400", "Upgrade: websocket on HTTP/1.0 is not an upgrade", req(b"GET /ws HTTP/1.0", [b"Upgrade: websocket", b"Connection: Upgrade"]) + b"", split="-")

# ------------------------------------------------------------------------ I: limits
case("I01", "strict", "reject:400,431", "one 20 KB header", hdr(b"X-Big: " + b"a" * 20480), "limit")
case("I02", "strict", "reject:400,431", "150 headers", req(b"GET / HTTP/1.1", [b"X-H%d: v" % i for i in range(150)]), "limit")
case("I03", "strict", "reject:400,431", "100 KB header section of small fields", req(b"GET / HTTP/1.1", [b"X-H: " + b"v" * 1000 for _ in range(100)]), "limit")
case("I04", "lenient", "fwd | reject:400,431", "9 KB Cookie", hdr(b"Cookie: a=" + b"c" * 9216), "limit")


def render() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    lines = ["# generated by make_corpus.py: id\tfile\tlevel\ttags\texpect\tsplit\tdescription"]
    seen = set()
    for cid, level, tags, expect, split, desc, raw in CASES:
        assert cid not in seen, cid
        seen.add(cid)
        assert "\t" not in desc, cid
        fname = "%s.http" % cid
        files[fname] = raw
        esc = "".join(c if 0x20 <= ord(c) < 0x7F and c != "\\" else "\\x%02x" % ord(c) for c in expect)
        lines.append("\t".join([cid, fname, level, tags, esc, split, desc]))
    files["cases.tsv"] = ("\n".join(lines) + "\n").encode("latin-1")
    return files


def main() -> int:
    files = render()
    check = "--check" in sys.argv
    stale = []
    for name, data in files.items():
        path = os.path.join(HERE, name)
        old = open(path, "rb").read() if os.path.exists(path) else None
        if old != data:
            stale.append(name)
            if not check:
                with open(path, "wb") as f:
                    f.write(data)
    if check and stale:
        print("corpus out of date:", ", ".join(stale))
        return 1
    print("%d cases (%d strict)" % (len(CASES), sum(1 for c in CASES if c[1] == "strict")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
