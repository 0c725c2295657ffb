from django.core.management.base import BaseCommand

from tasks.roles import setup_roles


class Command(BaseCommand):
    help = "Create the viewer / operator / manager groups with the permissions API.md lists (idempotent)."

    def handle(self, *args, **options):
        for name, count in setup_roles().items():
            self.stdout.write(f"{name}: {count} permissions")
