"""Process-level endpoints that live outside the versioned API."""

from django.http import JsonResponse


def healthz(request):
    """Liveness: answers 200 while the process can serve requests (no dependency is checked)."""
    return JsonResponse({"status": "ok"})
