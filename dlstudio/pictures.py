"""PNG answers for pixels the app makes (thumbnails, the mean image, heatmaps, filters): explicit
type, nosniff, and a private cache."""
import base64
import io

import numpy as np
from django.http import HttpResponse
from PIL import Image as PILImage


def png_bytes(array: np.ndarray) -> bytes:
    """H x W x C uint8 (C 1 or 3) to PNG."""
    pixels = array[:, :, 0] if array.shape[2] == 1 else array
    out = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(pixels)).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def png_data_url(array: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(array)).decode("ascii")


def png_response(array: np.ndarray, *, max_age: int = 3600) -> HttpResponse:
    response = HttpResponse(png_bytes(array), content_type="image/png")
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = "inline"
    # Only the signed-in browser may keep it.
    response["Cache-Control"] = f"private, max-age={max_age}"
    return response
