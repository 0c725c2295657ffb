def rows_or_changes(cursor) -> list[tuple]:
    """What the statement just run on ``cursor`` returned, or, when it returns nothing (no
    ``RETURNING``), an empty row per row it changed: either way, no row means nothing changed."""
    return cursor.fetchall() if cursor.description else [()] * max(cursor.rowcount, 0)
