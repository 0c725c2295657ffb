from django.core.management.base import BaseCommand

from tasks.roles import setup_roles


class Command(BaseCommand):
    help = "Create the viewer / operator / manager groups, each with exactly its role's permissions (idempotent)."

    def handle(self, *args, **options):
        for name, count in setup_roles().items():
            self.stdout.write(f"{name}: {count} permissions")
