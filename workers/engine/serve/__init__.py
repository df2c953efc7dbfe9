"""Serving a trained model: predictions from a checkpoint with the preprocessing it was trained with,
and an ONNX export."""
