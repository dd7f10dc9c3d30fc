"""Messages are facts and a conversation's customer never changes (issue 13, item 1); intent
patterns are RE2 (item 9: only the help text changes here).

Databases migrated before this kept the old grants: agents could add messages and change
conversations in the admin (an agent forged a customer's message and moved a conversation to
another customer), supervisors could delete conversations. Take those grants back; the admin
classes refuse the same actions to everyone regardless of grants.
"""

from django.db import migrations, models

REVOKE = {
    "agents": ["add_message", "change_message", "delete_message", "change_conversation",
               "add_conversation", "delete_conversation"],
    "supervisors": ["add_message", "change_message", "delete_message", "add_conversation",
                    "delete_conversation"],
}


PATTERNS_HELP = (
    "One regular expression per line (RE2 syntax, case-insensitive; no backreferences "
    "or lookaround)."
)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codenames in REVOKE.items():
        group = Group.objects.filter(name=group_name).first()
        if group is not None:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label="dialogs", codename__in=codenames)
            )


def grant_supervisors_change(apps, schema_editor):
    # Supervisors keep (or, on an old database, get) the conversation change grant they had
    # through the agents' list.
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="supervisors").first()
    perm = Permission.objects.filter(
        content_type__app_label="dialogs", codename="change_conversation"
    ).first()
    if group is not None and perm is not None:
        group.permissions.add(perm)


class Migration(migrations.Migration):
    dependencies = [("dialogs", "0006_message_text_trigram")]
    operations = [
        migrations.RunPython(revoke, migrations.RunPython.noop),
        migrations.RunPython(grant_supervisors_change, migrations.RunPython.noop),
        *(
            migrations.AlterField(
                model_name=model_name,
                name="patterns",
                field=models.TextField(
                    blank=True,
                    help_text=PATTERNS_HELP,
                    verbose_name="regular expressions",
                ),
            )
            for model_name in ("historicalintent", "intent")
        ),
    ]
