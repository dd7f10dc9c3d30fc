from django.db import migrations

PRESETS = [
    # name, label, speed, pitch, energy, pause, description
    ("neutral", "中性", 1.0, 0.0, 1.0, 1.0, "Default reading voice."),
    ("calm", "平和安抚", 0.9, -1.0, 0.9, 1.2, "Slower, lower and softer: for complaints."),
    ("serious", "严肃专业", 0.95, -0.5, 1.0, 1.1, "Measured and clear: for inquiries and policies."),
    ("happy", "愉快", 1.08, 2.0, 1.1, 0.9, "Brighter and a little quicker: for praise."),
    ("warm", "亲切温暖", 1.0, 1.0, 1.0, 1.0, "Friendly: for greetings."),
]


def seed(apps, schema_editor):
    Voice = apps.get_model("tts", "Voice")
    EmotionPreset = apps.get_model("tts", "EmotionPreset")
    if not Voice.objects.exists():
        Voice.objects.create(
            engine_voice_id="baker", display_name="标贝女声 (Baker)", is_default=True
        )
    for name, label, speed, pitch, energy, pause, description in PRESETS:
        EmotionPreset.objects.get_or_create(
            name=name,
            defaults=dict(label=label, speed=speed, pitch=pitch, energy=energy, pause=pause,
                          description=description),
        )


def unseed(apps, schema_editor):
    apps.get_model("tts", "EmotionPreset").objects.filter(name__in=[p[0] for p in PRESETS]).delete()
    apps.get_model("tts", "Voice").objects.filter(engine_voice_id="baker", clips__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("tts", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
