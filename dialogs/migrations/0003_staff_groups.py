"""Groups "agents" and "supervisors" with their model permissions.

Permissions are normally created by a post_migrate signal, i.e. after this migration on a fresh
database, so they are created here first (create_permissions is idempotent).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# Agents work in the console; in the admin they only look. (Until 0006 they could also add
# messages and change conversations here: see that migration.)
AGENT_PERMS = [
    ("dialogs", "view_conversation"),
    ("dialogs", "view_message"),
    ("dialogs", "view_cannedphrase"),
    ("dialogs", "view_intent"),
    ("dialogs", "view_emotionrule"),
    ("tts", "view_emotionpreset"),
    ("tts", "view_audioclip"),
]

_MANAGED = {
    "dialogs": ["cannedphrase", "intent", "emotionrule"],
    "tts": ["emotionpreset", "pronunciationentry", "voice"],
}
_AUDIT = {
    "dialogs": ["historicalcannedphrase", "historicalintent", "historicalemotionrule"],
    "tts": [
        "synthesisrecord", "audioclip", "historicalemotionpreset",
        "historicalpronunciationentry", "historicalvoice",
    ],
}
SUPERVISOR_PERMS = (
    AGENT_PERMS
    + [("dialogs", "change_conversation")]  # status, priority, assignment; never the customer
    + [(app, f"{action}_{model}") for app, models in _MANAGED.items() for model in models
       for action in ("view", "add", "change", "delete")]
    + [(app, f"view_{model}") for app, models in _AUDIT.items() for model in models]
)
GROUPS = {"agents": AGENT_PERMS, "supervisors": SUPERVISOR_PERMS}


def create_groups(apps, schema_editor):
    for app_label in ("dialogs", "tts"):
        app_config = apps.get_app_config(app_label)
        if getattr(app_config, "models_module", None) is None:  # migration stubs have none
            app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, perms in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        for app_label, codename in perms:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_groups(apps, schema_editor):
    # Only the permissions granted here; the groups themselves also carry accounts' memberships.
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, perms in GROUPS.items():
        group = Group.objects.filter(name=group_name).first()
        if group is None:
            continue
        for app_label, codename in perms:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("dialogs", "0002_seed_intents_rules_phrases"),
        ("tts", "0002_seed_voice_and_presets"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_groups, remove_groups)]
