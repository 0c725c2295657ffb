"""An example plug-in: copies a table from another database into taskcenter's, in batches.

Enable it with ``PYTHONPATH=examples TASKCENTER_PLUGINS=datasync`` (docs/examples.md).
"""
