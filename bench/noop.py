"""The bare django-q2 baseline: an empty function that only leaves a byte to count."""

import os


def noop(counter_path: str) -> None:
    fd = os.open(counter_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)
