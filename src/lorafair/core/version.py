"""lorafair's version, in core so that every layer can name it without importing the package root (the API)."""

VERSION = "0.1.0"
