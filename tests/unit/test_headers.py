"""The gateway's parser of a request's headers (services/gateway/headers.py)
gives the message Python's own gives, for any block of lines: the same
fields in the same order, the same payload and defects, the same refusals."""
import email.parser
import http.client
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.gateway.headers import parse_headers


def python_parse(raw: bytes):
    """The standard library's own, whether or not the gateway's is installed in this process."""
    lines = http.client._read_headers(io.BytesIO(raw))
    return email.parser.Parser(_class=http.client.HTTPMessage).parsestr(b"".join(lines).decode("iso-8859-1"))


def same(raw: bytes, monkeypatch=None):
    """Our message for `raw`, once held to Python's; with `monkeypatch`, made without email.parser."""
    theirs = python_parse(raw)
    if monkeypatch is not None:
        monkeypatch.setattr(email.parser, "Parser", None)
    ours = parse_headers(io.BytesIO(raw))
    assert type(ours) is type(theirs)
    assert vars(ours) | {"defects": None, "policy": None} == vars(theirs) | {"defects": None, "policy": None}
    assert [type(d) for d in ours.defects] == [type(d) for d in theirs.defects]
    assert ours.items() == theirs.items()
    return ours


def test_a_clients_request_is_parsed_as_python_parses_it(monkeypatch):
    message = same(b"Host: 127.0.0.1:8000\r\nAuthorization: Bearer abc.def.ghi\r\n"
                   b"Content-Type: application/json; charset=utf-8\r\nContent-Length: 60\r\n"
                   b"Idempotency-Key: 5b1c0e1e-0a0e-4b43-9f3c-9e2b2f5b7a10\r\nX-Empty:\r\n"
                   b"X-Spaced:  \t value with spaces \t\r\nx-forwarded-for: 10.0.0.1\r\n"
                   b"X-Forwarded-For: 10.0.0.2\r\n\r\n", monkeypatch)
    assert message["content-length"] == "60" and message.get_all("X-Forwarded-For") == ["10.0.0.1", "10.0.0.2"]


@pytest.mark.parametrize("raw", [
    b"Host: a\r\n folded: on\r\n\r\n",              # a folded continuation
    b" Leading: space\r\nHost: a\r\n\r\n",          # a first line that continues nothing
    b"Host : a\r\n\r\n",                            # a space before the colon
    b"No colon here\r\nHost: a\r\n\r\n",            # a line that is not a field
    b": no name\r\nHost: a\r\n\r\n",
    b"Host: a\rInjected: b\r\n\r\n",                # a stray CR inside a line
    b"From someone\r\nHost: a\r\n\r\n",             # a mailbox's envelope line
    b"Host: a\r\nContent-Length: 5",                # the block never ends
    b"Host: \xe4\xbd\xa0\r\n\r\n",                  # bytes past ASCII, read as ISO-8859-1
    b"\r\n",
    b"",
])
def test_an_odd_block_is_parsed_as_python_parses_it(raw):
    same(raw)


def test_too_many_or_too_long_lines_are_refused_as_python_refuses_them():
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        parse_headers(io.BytesIO(b"X: y\r\n" * 101 + b"\r\n"))
    with pytest.raises(http.client.LineTooLong):
        parse_headers(io.BytesIO(b"X: " + b"y" * 70_000 + b"\r\n\r\n"))


LINE_BYTES = st.sampled_from([b"Host", b"X-A", b"a", b":", b" ", b"\t", b"\r", b"\n", b"\r\n", b"v", b"From ",
                              b"\xff", b"=", b"(", b"1"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(LINE_BYTES, max_size=8).map(b"".join), max_size=6),
       st.sampled_from([b"\r\n", b"\n", b""]))
def test_any_block_is_parsed_as_python_parses_it(parts, end):
    same(b"".join(part.replace(b"\n", b"") + b"\r\n" for part in parts) + end)
    same(b"".join(parts) + end)
