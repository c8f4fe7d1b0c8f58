"""The OpenAPI 3 document, built from the routes' own schemas, so it cannot
drift from what the gateway validates."""
from __future__ import annotations

import inspect
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import fields

from services.common.idempotency import MAX_KEY_LENGTH
from services.common.schemas import Moment, UtcDateTime
from services.gateway.exports import CONTENT_TYPES, FORMATS
from services.gateway.http import ApiEntrypoint
from services.gateway.schemas import ErrorSchema, NotReadySchema, ServicesDegradedSchema

_PATH_PARAM = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")

_ERRORS = {
    "400": "Invalid input, field by field",
    "401": "Not logged in, or the token is not valid",
    "403": "The role may not do this",
    "404": "Not found",
    "409": "Conflicts with the current state",
    "413": "The body is too large",
    "415": "The body is not sent as JSON (Content-Type: application/json)",
    "422": "The Idempotency-Key was used before with a different request",
    "429": "Too many tries from this address (failed logins for a username, receipt lookups), "
           "or streams open for this account: wait Retry-After seconds",
    "503": "A service did not answer in time; or the gateway is busy (load shed): wait Retry-After seconds",
}
# Errors that only some operations answer, by operationId.
_OPERATION_ERRORS = {
    "issue_token": ("401", "429"),  # a wrong password; then a delay for this address and username
    "change_my_password": ("429",),  # a wrong current password counts as a failed login
    "get_receipt": ("429",),  # lookups per address are limited: codes cannot be guessed
    "stream_my_alerts": ("429",),   # the account's streams are all open
    "stream_events": ("429",),
}
_IDEMPOTENCY_KEY = {"in": "header", "name": "Idempotency-Key", "required": False,
                    "description": "The same key again returns the first answer and writes nothing twice",
                    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH}}
_IDEMPOTENCY_KEY_REQUIRED = {
    **_IDEMPOTENCY_KEY, "required": True,
    "description": "Required (else 400 `idempotency_key_required`): a new UUID per intended write, the same one "
                   "on a retry, which then returns the first answer and writes nothing twice"}
# An error answer with more than the one shape, by (operationId, status).
_ERROR_SCHEMAS = {("ready", "503"): "NotReady", ("services_health", "503"): "ServicesDegraded"}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again",
                                "schema": {"type": "integer", "minimum": 1}}}
_ACCESS_TOKEN = {"in": "query", "name": "access_token", "required": False,
                 "description": "The bearer token, for an EventSource (which cannot send headers)",
                 "schema": {"type": "string"}}


def error_statuses(name: str, route: ApiEntrypoint) -> list[str]:
    """The error statuses a route can answer: each in the one error shape."""
    statuses = {"400", "404", "503"}
    if route.roles is not None:
        statuses |= {"401", "403"}
    if route.method != "GET":
        statuses.add("409")
    if route.body_schema is not None:
        statuses |= {"413", "415"}
    if route.idempotent:
        statuses.add("422")
    statuses.update(_OPERATION_ERRORS.get(name, ()))
    return sorted(statuses)


def api_routes(service_cls) -> list[tuple[str, ApiEntrypoint]]:
    routes = []
    for name, method in inspect.getmembers(service_cls, inspect.isfunction):
        for entrypoint in getattr(method, "nameko_entrypoints", ()):
            if isinstance(entrypoint, ApiEntrypoint) and entrypoint.in_openapi:
                routes.append((name, entrypoint))
    return sorted(routes, key=lambda route: (route[1].path, route[1].method))


def build_spec(service_cls) -> dict:
    marshmallow = MarshmallowPlugin()
    spec = APISpec(title="Linli", version="1.0.0", openapi_version="3.0.3",
                   plugins=[marshmallow],
                   info={"description": "Coordinating a neighbourhood's volunteer work."})
    marshmallow.map_to_openapi_type(UtcDateTime, "string", "date-time")
    marshmallow.map_to_openapi_type(Moment, "string", None)
    marshmallow.map_to_openapi_type(fields.Url, "string", "uri")  # apispec says "url", which no validator knows
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.schema("NotReady", schema=NotReadySchema)
    spec.components.schema("ServicesDegraded", schema=ServicesDegradedSchema)
    for name, route in api_routes(service_cls):
        path = _PATH_PARAM.sub(r"{\1}", route.path)
        operation = {
            "operationId": name,
            "summary": route.summary or (inspect.getdoc(getattr(service_cls, name)) or "").split("\n")[0],
            "parameters": [{"in": "path", "name": param, "required": True, "schema": {"type": "string"}}
                           for param in _PATH_PARAM.findall(route.path)],
            "responses": {},
        }
        if route.query_schema is not None:
            operation["parameters"].append({"in": "query", "schema": route.query_schema})
        if route.idempotent:
            operation["parameters"].append(_IDEMPOTENCY_KEY_REQUIRED if route.key_required else _IDEMPOTENCY_KEY)
        if route.event_stream:
            operation["parameters"].append(_ACCESS_TOKEN)
        if route.body_schema is not None:
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": route.body_schema}}}
        if route.event_stream:
            content = {"text/event-stream": {"schema": {"type": "string"}}}
        elif route.download:  # JSON, or with ?format= one of these files
            content = {"application/json": {"schema": route.response_schema or {"type": "object"}},
                       **{CONTENT_TYPES[fmt].split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
                          for fmt in (route.download if isinstance(route.download, tuple) else FORMATS)}}
        else:
            content = {"application/json": {"schema": route.response_schema or {"type": "object"}}}
        operation["responses"][str(route.status)] = {"description": "OK", "content": content}
        if route.roles is not None:
            operation["security"] = [{"bearer": []}]
            operation["description"] = f"Roles: {', '.join(route.roles)}."
        for status in error_statuses(name, route):
            operation["responses"][status] = {
                "description": _ERRORS[status],
                "content": {"application/json": {"schema": _ERROR_SCHEMAS.get((name, status), "Error")}}}
            if status == "429" or (status == "503" and route.shed):
                operation["responses"][status]["headers"] = _RETRY_AFTER
        spec.path(path=path, operations={route.method.lower(): operation})
    return spec.to_dict()
