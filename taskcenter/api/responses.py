from rest_framework.response import Response


def ok(data=None, *, message: str | None = None, status: int = 200, headers: dict | None = None) -> Response:
    """A success response whose envelope carries ``message``."""
    response = Response(data, status=status, headers=headers)
    response.message = message
    return response
