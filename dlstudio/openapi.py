"""What the OpenAPI schema says about errors, once for every endpoint.

Views name the errors particular to them (`errors(400, 403, 404)`); `common_errors`, a drf-spectacular
postprocessing hook, adds what every endpoint that needs credentials can answer (401, 429).
"""
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

WHY = {
    400: "Bad input: `error` says what is wrong in one sentence, `field` names the field when one is.",
    401: "No credentials: sign in, or send `Authorization: Token <key>`.",
    403: "You are a viewer of the object's team: only editors and owners may do this.",
    404: "No such object, or it belongs to a team you are not in.",
    413: "The upload is larger than DLSTUDIO_MAX_UPLOAD_MB.",
    429: "Too many requests: `Retry-After` says in how many seconds to try again.",
}


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="One sentence a person can act on.")
    field = serializers.CharField(required=False, help_text="The field that is wrong, when one is (`config.lr`).")


def errors(*codes: int, **why: str) -> dict:
    """{status: the error response} for `@extend_schema(responses=...)`; `why` overrides a status's sentence
    (keys like `_404`)."""
    return {code: OpenApiResponse(ErrorSerializer, description=why.get(f"_{code}", WHY[code])) for code in codes}


def common_errors(result, generator, request, public):
    """Every operation that needs credentials can answer 401 and 429; every one can answer 429."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path in result.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            needs_credentials = {} not in operation.get("security", [{}])
            for code in (401, 429) if needs_credentials else (429,):
                responses.setdefault(str(code), {"description": WHY[code], "content": error})
    return result
