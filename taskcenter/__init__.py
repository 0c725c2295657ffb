"""taskcenter: a Django admin-centric center for long background jobs."""
