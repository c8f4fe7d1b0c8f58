"""The OpenAPI 3 document, built from the routes' own schemas, so it cannot
drift from what the gateway validates."""
from __future__ import annotations

import inspect
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from services.common.schemas import Moment, UtcDateTime
from services.gateway.http import ApiEntrypoint
from services.gateway.schemas import ErrorSchema

_PATH_PARAM = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")

_ERRORS = {
    "400": "Invalid input, field by field",
    "401": "Not logged in, or the token is not valid",
    "403": "The role may not do this",
    "404": "Not found",
    "409": "Conflicts with the current state",
    "413": "The body is too large",
    "503": "A service did not answer in time",
}


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
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    spec.components.schema("Error", schema=ErrorSchema)
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
        if route.body_schema is not None:
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": route.body_schema}}}
        success = {"description": "OK"}
        if route.response_schema is not None:
            success["content"] = {"application/json": {"schema": route.response_schema}}
        operation["responses"][str(route.status)] = success
        if route.roles is not None:
            operation["security"] = [{"bearer": []}]
            operation["description"] = f"Roles: {', '.join(route.roles)}."
        for status, description in _ERRORS.items():
            operation["responses"][status] = {
                "description": description,
                "content": {"application/json": {"schema": "Error"}}}
        spec.path(path=path, operations={route.method.lower(): operation})
    return spec.to_dict()
