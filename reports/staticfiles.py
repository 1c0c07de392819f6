"""Serve plotly.js from the plotly package itself: same version as our Python, no CDN."""

import os
from collections.abc import Iterator
from typing import Any

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_STATIC_PATH = "vendor/plotly/plotly.min.js"
_PACKAGE_DATA = os.path.join(os.path.dirname(plotly.__file__), "package_data")


class PlotlyJsFinder(BaseFinder):
    """A staticfiles finder that knows one file: vendor/plotly/plotly.min.js."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.storage = FileSystemStorage(location=_PACKAGE_DATA)
        self.storage.prefix = os.path.dirname(PLOTLY_STATIC_PATH)

    def check(self, **kwargs: Any) -> list:
        return []

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> str | list[str]:
        if kwargs.get("all"):
            find_all = True
        if path == PLOTLY_STATIC_PATH:
            match = os.path.join(_PACKAGE_DATA, "plotly.min.js")
            return [match] if find_all else match
        # Nothing, as Django's own finders say it: an empty list (a "" would be taken for a
        # match, and the development server would answer a missing file with a 500).
        return []

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        yield "plotly.min.js", self.storage
