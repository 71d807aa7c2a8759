"""The package's version: one place, read by ``maskcli/__init__.py``, the formats that record it and the build
(``pyproject.toml`` takes it as a dynamic attribute), so that no module below the package's front imports it."""

__version__ = "0.3.0"
