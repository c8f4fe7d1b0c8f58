"""A request's header lines parsed to the same message as Python's own parser
gives, without the `email` package's general machinery for the lines every
client sends: `Name: value`, one to a line.

eventlet's HTTP server parses a request's headers with the standard
library's `http.client.parse_headers`, which reads the lines and hands them
to `email.parser`, a parser for whole mail messages: ~7 % of the gateway's
CPU under load, ~80 µs a request on a machine where this takes ~15. Here each
line that is a plain field (a token, a colon, a value with no CR or LF in it)
is stored as `email.parser` stores it (the compat32 policy's
`header_source_parse`, then `set_raw`); a block with any other line (a folded
continuation, a line without a colon or with a space before it, a stray CR,
an unfinished block) is handed to `email.parser` as before, so what the server
makes of an odd request does not change. `tests/unit/test_headers.py` holds
the two parsers to the same messages.

Installed by the gateway's web server when it is set up (`JsonWebServer.setup`):
`http.server` looks the function up on `http.client` for each request."""
from __future__ import annotations

import email.parser
import email.policy
import http.client
import re

# RFC 9110's token for the name; the value anything but CR and LF, then the line's end.
_PLAIN_FIELD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n]*\r?\n")
_END = (b"\r\n", b"\n")
_source_parse = email.policy.compat32.header_source_parse


def parse_headers(fp, _class=http.client.HTTPMessage):
    """What `http.client.parse_headers(fp, _class)` returns, as it reads and refuses."""
    lines = http.client._read_headers(fp)  # its limits: a line's length, the number of lines
    *fields, end = lines
    if end not in _END or not all(_PLAIN_FIELD.fullmatch(line) for line in fields):
        return email.parser.Parser(_class=_class).parsestr(b"".join(lines).decode("iso-8859-1"))
    message = _class()
    for line in fields:
        message.set_raw(*_source_parse([line.decode("iso-8859-1")]))
    message.set_payload("")  # as email.parser leaves a block that ends where its headers do
    return message


def install():
    http.client.parse_headers = parse_headers
