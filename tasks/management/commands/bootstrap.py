"""First-run set-up for ``python3 dev.py run``: roles and an admin login."""

import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from tasks.roles import setup_roles


class Command(BaseCommand):
    help = "Create the roles, an 'admin' superuser (password kept in var/admin-password)."

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
            password_file.parent.mkdir(parents=True, exist_ok=True)
            password_file.write_text(password)
            password_file.chmod(0o600)
        known = password_file.read_text().strip() if password_file.exists() else None
        user = user_model.objects.get(username=username)
        if known and user.check_password(known):
            self.stdout.write(self.style.SUCCESS(f"admin login: {username} / {known}"))
        else:
            self.stdout.write(f"admin login: {username} (password changed since it was generated)")
