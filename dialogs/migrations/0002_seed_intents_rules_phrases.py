from django.db import migrations

# name, label, priority, keywords. Priorities: urgency and complaints beat the politeness words
# that usually come with them ("你好，我要投诉" is a complaint, not a greeting).
INTENTS = [
    ("urgent", "紧急", 90, "紧急\n马上\n立刻\n赶紧\n急\n尽快"),
    ("complaint", "投诉", 80, "投诉\n太差\n不满意\n生气\n差评\n垃圾\n失望\n骗"),
    ("refund", "退款", 70, "退款\n退货\n退钱\n退费\n返还"),
    ("inquiry", "咨询", 50, "请问\n怎么\n如何\n多少\n哪里\n什么时候\n能不能"),
    ("praise", "表扬", 40, "谢谢\n感谢\n很好\n满意\n点赞\n棒\n给力"),
    ("greeting", "问候", 10, "你好\n您好\n在吗\n哈喽\nhello\n早上好\n晚上好"),
]

# intent (None = fallback), preset, priority
RULES = [
    ("complaint", "calm", 50),
    ("refund", "calm", 50),
    ("urgent", "serious", 50),
    ("inquiry", "serious", 50),
    ("praise", "happy", 50),
    ("greeting", "warm", 50),
    (None, "neutral", 0),
]

# short code, title, text, category, emotions, triggers
PHRASES = [
    ("hello", "问候", "您好，很高兴为您服务，请问有什么可以帮您？", "通用", ["warm", "neutral"],
     "你好\n您好\n在吗"),
    ("thanks", "致谢", "感谢您的耐心等待，祝您生活愉快！", "通用", ["happy", "warm"], ""),
    ("sorry", "致歉", "非常抱歉给您带来不便，我们会尽快为您处理。", "投诉", ["calm"], ""),
    ("refund", "退款说明", "退款将在三到五个工作日内原路退回，请您留意账户变动。", "售后",
     ["calm", "serious"], "怎么退款\n退款多久"),
    ("greet", "称呼问候", "{{customer.nickname}}您好，我是客服{{agent.name}}，请问有什么可以帮您？",
     "通用", ["warm"], ""),
]


def seed(apps, schema_editor):
    Intent = apps.get_model("dialogs", "Intent")
    EmotionRule = apps.get_model("dialogs", "EmotionRule")
    CannedPhrase = apps.get_model("dialogs", "CannedPhrase")
    EmotionPreset = apps.get_model("tts", "EmotionPreset")
    presets = {p.name: p for p in EmotionPreset.objects.all()}
    intents = {}
    for name, label, priority, keywords in INTENTS:
        intents[name], _ = Intent.objects.get_or_create(
            name=name, defaults=dict(label=label, priority=priority, keywords=keywords)
        )
    for intent_name, preset_name, priority in RULES:
        if preset_name not in presets:
            continue
        EmotionRule.objects.get_or_create(
            intent=intents.get(intent_name) if intent_name else None,
            preset=presets[preset_name],
            defaults=dict(priority=priority),
        )
    for code, title, text, category, emotions, triggers in PHRASES:
        phrase, created = CannedPhrase.objects.get_or_create(
            short_code=code,
            defaults=dict(title=title, text=text, category=category, trigger_keywords=triggers),
        )
        if created:
            phrase.emotions.set([presets[e] for e in emotions if e in presets])


def unseed(apps, schema_editor):
    # Plain SQL: the ORM's deletion collector trips over historical (simple-history) models
    # in migration state ("Must be Intent instance"), and only seeded rows must go.
    codes = [p[0] for p in PHRASES]
    intents = [i[0] for i in INTENTS]
    in_codes = "IN (" + ", ".join(["%s"] * len(codes)) + ")"  # portable: PostgreSQL and SQLite
    in_intents = "IN (" + ", ".join(["%s"] * len(intents)) + ")"
    statements = [
        ("UPDATE dialogs_message SET canned_phrase_id = NULL WHERE canned_phrase_id IN "
         "(SELECT id FROM dialogs_cannedphrase WHERE short_code " + in_codes + ")", codes),
        ("DELETE FROM dialogs_cannedphrase_emotions WHERE cannedphrase_id IN "
         "(SELECT id FROM dialogs_cannedphrase WHERE short_code " + in_codes + ")", codes),
        ("DELETE FROM dialogs_cannedphrase WHERE short_code " + in_codes, codes),
        ("UPDATE dialogs_message SET intent_id = NULL WHERE intent_id IN "
         "(SELECT id FROM dialogs_intent WHERE name " + in_intents + ")", intents),
        ("DELETE FROM dialogs_emotionrule WHERE intent_id IN "
         "(SELECT id FROM dialogs_intent WHERE name " + in_intents + ")", intents),
        ("DELETE FROM dialogs_emotionrule WHERE intent_id IS NULL AND preset_id IN "
         "(SELECT id FROM tts_emotionpreset WHERE name = 'neutral')", []),
        ("DELETE FROM dialogs_intent WHERE name " + in_intents, intents),
    ]
    with schema_editor.connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)


class Migration(migrations.Migration):
    dependencies = [("dialogs", "0001_initial"), ("tts", "0002_seed_voice_and_presets")]
    operations = [migrations.RunPython(seed, unseed)]
