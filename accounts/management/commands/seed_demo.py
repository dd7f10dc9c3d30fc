"""Demo data for `make run`: an admin, an agent, a supervisor and a customer. Idempotent.

Passwords are generated once, kept in var/demo_credentials.json (gitignored) and printed on
every run so a newcomer always sees how to log in.
"""

import json
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Role, User
from accounts.services import customer_dev_login, staff_user_create, staff_user_set_role

DEMO_STAFF = [("admin", Role.ADMIN), ("supervisor", Role.SUPERVISOR), ("agent", Role.AGENT)]


class Command(BaseCommand):
    help = "Create the demo admin, supervisor, agent and customer (idempotent)."

    def handle(self, *args, **options):
        path = settings.BASE_DIR / "var" / "demo_credentials.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        credentials = json.loads(path.read_text()) if path.exists() else {}
        with transaction.atomic():
            for username, role in DEMO_STAFF:
                password = credentials.get(username) or secrets.token_urlsafe(9)
                user = User.objects.filter(username=username).first()
                if user is None:
                    staff_user_create(username=username, password=password, role=role)
                else:
                    if not user.check_password(password):
                        user.set_password(password)
                        user.save(update_fields=["password"])
                    staff_user_set_role(user=user, role=role)
                credentials[username] = password
            customer_dev_login()
        path.write_text(json.dumps(credentials, indent=2))
        path.chmod(0o600)
        self.stdout.write(self.style.SUCCESS("Demo accounts (also in var/demo_credentials.json):"))
        for username, role in DEMO_STAFF:
            self.stdout.write(f"  {role.label:<14} {username} / {credentials[username]}")
        self.stdout.write("  Demo customer: POST /api/auth/dev-login/ (DEBUG=1 WECHAT_DEV_LOGIN=1)")
