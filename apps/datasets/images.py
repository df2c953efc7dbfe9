"""Pack pixels as pictures."""
import numpy as np


def mean_image_uint8(mean_image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(mean_image * 255.0), 0, 255).astype(np.uint8)
