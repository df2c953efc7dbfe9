"""Ingest: an archive or folder of labelled images -> a pack (every image decoded once into one uint8
array, with labels, splits and statistics) and a health report. `pipeline.build_pack` runs the stages.

Imports nothing heavy: the web process lists an upload's entries without PyTorch.
"""
