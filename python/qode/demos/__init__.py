"""Runnable demonstrations (``python -m qode.demos.<name>``)."""
