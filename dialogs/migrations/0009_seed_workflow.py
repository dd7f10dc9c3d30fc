"""Workflow defaults: complaints go to a human (high priority), the two voiced notices as
editable canned phrases, SLA targets per priority, 9:00–21:00 every day, and the staff groups'
permissions on the new models."""

import datetime

from django.contrib.auth.management import create_permissions
from django.db import migrations

HANDOFF_INTENTS = {"complaint": 3}  # intent name -> conversation priority (3 = high)

# short code, title, text, emotions. No triggers: the workflow sends them, not keywords.
PHRASES = [
    ("handoff", "转人工确认", "已为您转接人工客服，请稍候。", ["calm", "warm"]),
    (
        "offhours",
        "非工作时间",
        "您好，现在是非工作时间（每天九点至二十一点），客服上班后会第一时间回复您。",
        ["calm", "warm"],
    ),
]

# priority -> (first response, next response) in minutes
SLA = {4: (2, 5), 3: (5, 10), 2: (10, 15), 1: (30, 60)}
HOURS = (datetime.time(9, 0), datetime.time(21, 0))

AGENT_PERMS = ["view_csatresponse", "view_conversationevent", "view_agentprofile"]
SUPERVISOR_PERMS = AGENT_PERMS + [
    f"{action}_{model}"
    for model in ("agentprofile", "businesshours", "holiday", "slapolicy")
    for action in ("view", "add", "change", "delete")
]


def seed(apps, schema_editor):
    Intent = apps.get_model("dialogs", "Intent")
    CannedPhrase = apps.get_model("dialogs", "CannedPhrase")
    EmotionPreset = apps.get_model("tts", "EmotionPreset")
    SlaPolicy = apps.get_model("dialogs", "SlaPolicy")
    BusinessHours = apps.get_model("dialogs", "BusinessHours")
    for name, priority in HANDOFF_INTENTS.items():
        Intent.objects.filter(name=name).update(needs_human=True, handoff_priority=priority)
    presets = {p.name: p for p in EmotionPreset.objects.all()}
    for code, title, text, emotions in PHRASES:
        phrase, created = CannedPhrase.objects.get_or_create(
            short_code=code, defaults=dict(title=title, text=text, category="系统")
        )
        if created:
            phrase.emotions.set([presets[e] for e in emotions if e in presets])
    for priority, (first, following) in SLA.items():
        SlaPolicy.objects.get_or_create(
            priority=priority,
            defaults=dict(first_response_minutes=first, next_response_minutes=following),
        )
    if not BusinessHours.objects.exists():
        BusinessHours.objects.bulk_create(
            BusinessHours(weekday=day, opens_at=HOURS[0], closes_at=HOURS[1]) for day in range(7)
        )
    _grant(apps)


def _grant(apps):
    app_config = apps.get_app_config("dialogs")
    if getattr(app_config, "models_module", None) is None:
        app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, codenames in (("agents", AGENT_PERMS), ("supervisors", SUPERVISOR_PERMS)):
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="dialogs", codename__in=codenames)
        )


def unseed(apps, schema_editor):
    Intent = apps.get_model("dialogs", "Intent")
    Intent.objects.filter(name__in=list(HANDOFF_INTENTS)).update(
        needs_human=False, handoff_priority=None
    )


class Migration(migrations.Migration):
    dependencies = [("dialogs", "0008_workflow")]

    operations = [migrations.RunPython(seed, unseed)]
