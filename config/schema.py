"""OpenAPI schema plumbing: the error answers every endpoint shares, documented once.

DRF answers 401 (no or bad credentials) and 403 (a role without the permission) on every
authenticated endpoint, 404 for an id outside the caller's scope (or a page past the end),
and 400 for a filter value it cannot read; writing that on each
view would repeat it everywhere and be forgotten on the next one. Views that document these
answers themselves keep their own wording.
"""

from typing import Any

# The body of config.api.exception_handler.
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "fields": {
            "type": "object",
            "additionalProperties": {},
            "description": "Per-field messages when the input was invalid.",
        },
    },
    "required": ["error"],
}
_REF = {"$ref": "#/components/schemas/Error"}
_AUTH_SCHEMES = {"tokenAuth", "cookieAuth"}


def _answer(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _REF}}}


def error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict:
    """drf-spectacular postprocessing hook: add the shared 400/401/403/404 answers."""
    used = False
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            schemes = {name for entry in operation.get("security", []) for name in entry}
            if schemes & _AUTH_SCHEMES:
                responses.setdefault("401", _answer("Not authenticated (token or session)."))
                responses.setdefault(
                    "403", _answer("The caller's roles lack the permission this needs.")
                )
                places = {p.get("in") for p in operation.get("parameters", [])}
                if "path" in places:
                    responses.setdefault("404", _answer("No such row in the caller's scope."))
                if "query" in places:
                    responses.setdefault(
                        "400", _answer("A query parameter is invalid (named in `fields`).")
                    )
                used = True
    if used:
        result.setdefault("components", {}).setdefault("schemas", {}).setdefault(
            "Error", ERROR_SCHEMA
        )
    return result
