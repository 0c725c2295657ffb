"""First-run set-up for ``python3 dev.py run``: the roles and an admin login."""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from tasks.roles import setup_roles


class Command(BaseCommand):
    help = "Create the roles and an 'admin' superuser (password kept in var/admin-password); print the login."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        setup_roles()
        password_file = Path(settings.VAR_DIR) / "admin-password"
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user_model.objects.create_superuser(username=username, email="", password=password)
            password_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # A new file, created owner-only: never readable by others, not even for a moment.
            password_file.unlink(missing_ok=True)
            fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(password)
        known = password_file.read_text().strip() if password_file.exists() else None
        user = user_model.objects.get(username=username)
        if known and user.check_password(known):
            self.stdout.write(self.style.SUCCESS(f"admin login: {username} / {known}"))
        else:
            self.stdout.write(f"admin login: {username} (password changed since it was generated)")
