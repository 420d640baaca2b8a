"""Writes for the ingestion app, by topic: ``datasets`` (which uses ``grants``), ``raw_files``, ``sources``."""
