"""Training: a pack and a config -> epochs of metrics through callbacks, checkpoints and an evaluation.

`archs`, `config` and `metrics` are pure Python (the web app validates configs with them); the rest
needs PyTorch.
"""
