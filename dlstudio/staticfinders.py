"""Serve plotly.js from the installed plotly package: the same version as the Python side, no CDN."""
from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PACKAGE_DATA = Path(plotly.__file__).parent / "package_data"
FILE = "plotly.min.js"
PREFIX = "plotly"


class PlotlyFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        self.storage = FileSystemStorage(location=str(PACKAGE_DATA))
        self.storage.prefix = PREFIX

    def check(self, **kwargs):
        return []

    def find(self, path, find_all=False, **kwargs):
        if path == f"{PREFIX}/{FILE}":
            match = str(PACKAGE_DATA / FILE)
            return [match] if (find_all or kwargs.get("all")) else match
        return []

    def list(self, ignore_patterns):
        yield FILE, self.storage
