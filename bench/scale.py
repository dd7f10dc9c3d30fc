"""Does the cost of a request grow with the tables? Grow a PostgreSQL database to size M or L, then
time the paths people use (wall ms, median of 5, Django's test client, queries counted).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cs_platform_scale \
        .venv/bin/python bench/scale.py grow --size L      # idempotent per size: drops and regrows
    DATABASE_URL=... .venv/bin/python bench/scale.py measure [--prune]

`grow` writes with set-based INSERT ... SELECT generate_series (valid foreign keys, a spread of
dates over 120 days, one 1,000-message conversation); columns it does not name get each model
field's Python default, so new nullable/defaulted fields never break it. `measure` prints the
table in bench/README.md's format; `--prune` also times the destructive retention commands
(run it last: it deletes what it measures).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
os.environ.setdefault("SECRET_KEY", "scale-bench-only-0123456789abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

SIZES = {
    # conversations, messages, synthesis records, clips, customers, history rows
    "S": dict(conversations=3_000, messages=30_000, records=10_000, clips=2_000, customers=1_000),
    "M": dict(
        conversations=30_000, messages=300_000, records=100_000, clips=20_000, customers=10_000
    ),
    "L": dict(
        conversations=300_000,
        messages=3_000_000,
        records=1_000_000,
        clips=200_000,
        customers=100_000,
    ),
}
SENTENCES = [
    "你好，我想查一下订单",
    "我的快递到哪里了？单号是SF1234567890",
    "我要退款，东西坏了",
    "请问退款多久到账",
    "你们的服务太差了，我要投诉！",
    "可以开发票吗",
    "会员积分怎么用",
    "谢谢，问题解决了",
    "您好，很高兴为您服务",
    "请提供一下您的订单号，我帮您查询",
    "非常抱歉给您带来不便，我们马上处理",
    "退款已经提交，预计三到五个工作日到账",
    "这个商品还有货吗",
    "客服电话是多少",
    "我想修改收货地址",
    "优惠券为什么用不了",
]
AGENTS = 20
DAYS = 120
LONG_CONVERSATION_MESSAGES = 1_000


def _setup() -> None:
    import django

    django.setup()


def _defaults(model, provided: set[str]) -> tuple[list[str], list]:
    """Columns the INSERT does not name, with each field's default as a parameter."""
    from django.db import connection

    columns, params = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.column in provided:
            continue
        if field.null and not field.has_default():
            continue
        value = field.get_default()
        columns.append(connection.ops.quote_name(field.column))
        params.append(field.get_db_prep_save(value, connection))
    return columns, params


def _insert_select(model, count: int, exprs: dict[str, str], extra_from: str = "") -> None:
    """INSERT INTO model SELECT <exprs> FROM generate_series(1, count) AS g(i)."""
    from django.db import connection

    columns, params = _defaults(model, set(exprs))
    names = [connection.ops.quote_name(c) for c in exprs] + columns
    # The expressions hold modulo operators, not placeholders: escape them for the driver.
    values = [e.replace("%", "%%") for e in exprs.values()] + ["%s"] * len(params)
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(names)}) "
        f"SELECT {', '.join(values)} FROM generate_series(1, {int(count)}) AS g(i) {extra_from}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def grow(size: str) -> None:
    _setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction

    from accounts.models import CustomerProfile
    from dialogs.models import Conversation, Message
    from tts.models import AudioClip, SynthesisRecord, Voice

    spec = SIZES[size]
    User = get_user_model()
    started = time.perf_counter()
    # Start from an empty schema: migrations bring back the seeds, everything else is generated.
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    call_command("migrate", verbosity=0)
    sentences = "ARRAY[" + ",".join(f"'{s}'" for s in SENTENCES) + "]"
    n_sent = len(SENTENCES)
    voice_id = Voice.objects.order_by("-is_default", "pk").values_list("pk", flat=True).first()
    from tts.adapters import engine_version

    current_engine = engine_version()

    def step(label):
        print(f"  {label} ({time.perf_counter() - started:.0f}s)", flush=True)

    with transaction.atomic():
        _insert_select(
            User,
            AGENTS,
            {
                "username": "'scale-agent-' || i",
                "password": "'!'",
                "role": "'agent'",
                "is_staff": "true",
                "is_active": "true",
                "date_joined": "now()",
            },
        )
        _insert_select(
            User,
            spec["customers"],
            {
                "username": "'scale-cust-' || i",
                "password": "'!'",
                "role": "'customer'",
                "is_active": "true",
                "date_joined": f"now() - (i % {DAYS}) * interval '1 day'",
            },
        )
        step("users")
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT min(id) FROM {User._meta.db_table} WHERE username LIKE 'scale-cust-%%'"
            )
            first_customer = cursor.fetchone()[0]
            cursor.execute(
                f"SELECT array_agg(id) FROM {User._meta.db_table} "
                "WHERE username LIKE 'scale-agent-%%'"
            )
            agent_ids = cursor.fetchone()[0]
        _insert_select(
            CustomerProfile,
            spec["customers"],
            {
                "user_id": f"{first_customer} + i - 1",
                "openid": "'scale-openid-' || i",
                "nickname": "'顾客' || i",
                "created_at": "now()",
            },
        )
        agents = "ARRAY[" + ",".join(str(a) for a in agent_ids) + "]::bigint[]"
        # Conversation i belongs to customer i % customers; newest conversations have the highest
        # ids; a tenth are unassigned and open (the queue), most are resolved.
        _insert_select(
            Conversation,
            spec["conversations"],
            {
                "customer_id": f"{first_customer} + (i % {spec['customers']})",
                "assigned_agent_id": f"CASE WHEN i % 10 = 0 THEN NULL ELSE "
                f"({agents})[1 + i % {AGENTS}] END",
                "status": "CASE WHEN i % 10 = 0 THEN 'open' WHEN i % 10 = 1 THEN 'pending' "
                "ELSE 'resolved' END",
                "priority": "1 + i % 4",
                "created_at": f"now() - ({spec['conversations']} - i) * "
                f"interval '{DAYS * 86400 / spec['conversations']:.3f} seconds'",
                "updated_at": "now()",
                "last_message_at": f"now() - ({spec['conversations']} - i) * "
                f"interval '{DAYS * 86400 / spec['conversations']:.3f} seconds'",
            },
        )
        step("conversations")
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT min(id), max(id) FROM {Conversation._meta.db_table}")
            first_conv, last_conv = cursor.fetchone()
        per_conv = spec["messages"] // spec["conversations"]
        regular = spec["messages"] - LONG_CONVERSATION_MESSAGES
        span = DAYS * 86400 / spec["messages"]
        _insert_select(
            Message,
            regular,
            {
                "conversation_id": f"{first_conv} + ((i - 1) / {per_conv})",
                "sender_kind": "(ARRAY['customer','bot','customer','agent'])[1 + i % 4]",
                "author_id": f"CASE WHEN i % 4 IN (0, 2) THEN {first_customer} + "
                f"((((i - 1) / {per_conv}) + 1) % {spec['customers']}) "
                f"WHEN i % 4 = 3 THEN ({agents})[1 + i % {AGENTS}] END",
                "text": f"({sentences})[1 + i % {n_sent}] || ' #' || i",
                "audio_status": "CASE WHEN i % 4 IN (1, 3) THEN 'ready' ELSE 'none' END",
                "created_at": f"now() - ({spec['messages']} - i) * interval '{span:.4f} seconds'",
            },
        )
        # The long conversation: the newest one gets 1,000 more messages.
        _insert_select(
            Message,
            LONG_CONVERSATION_MESSAGES,
            {
                "conversation_id": str(last_conv),
                "sender_kind": "(ARRAY['customer','agent'])[1 + i % 2]",
                "text": f"({sentences})[1 + i % {n_sent}] || ' L' || i",
                "audio_status": "'none'",
                "created_at": f"now() - ({LONG_CONVERSATION_MESSAGES} - i) * interval '1 second'",
            },
        )
        step("messages")
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Conversation._meta.db_table} c SET last_message_id = m.last_id "
                f"FROM (SELECT conversation_id, max(id) AS last_id FROM {Message._meta.db_table} "
                "GROUP BY conversation_id) m WHERE m.conversation_id = c.id"
            )
        step("last messages")
        _insert_select(
            AudioClip,
            spec["clips"],
            {
                "cache_key": "md5('scale-clip-' || i)",
                "text": f"({sentences})[1 + i % {n_sent}] || i",
                "voice_id": str(voice_id),
                "emotion": "''",
                "controls": "'{}'::jsonb",
                # Every other clip is from an older engine: stale for the prune commands.
                "engine_version": f"CASE WHEN i % 2 = 0 THEN 'old-engine' ELSE '{current_engine}' END",
                "file": "'clips/scale/' || i || '.mp3'",
                "format": "'mp3'",
                "duration_ms": "1500 + i % 3000",
                "size_bytes": "20000 + i % 10000",
                "created_at": f"now() - (i % {DAYS}) * interval '1 day'",
                "last_used_at": f"now() - (i % {DAYS}) * interval '1 day'",
            },
        )
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT min(id) FROM {AudioClip._meta.db_table}")
            first_clip = cursor.fetchone()[0]
        step("clips")
        span = DAYS * 86400 / spec["records"]
        _insert_select(
            SynthesisRecord,
            spec["records"],
            {
                "source": "(ARRAY['reply','api','precompute'])[1 + i % 3]",
                "text_excerpt": f"({sentences})[1 + i % {n_sent}]",
                "text_digest": "md5('rec-' || i)",
                "text_length": "10 + i % 40",
                "voice": "'baker'",
                "emotion": "(ARRAY['neutral','calm','serious'])[1 + i % 3]",
                "controls": "'{}'::jsonb",
                "cache_hit": "i % 3 = 0",
                "latency_ms": "i % 900",
                "status": "CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'ok' END",
                "client_ip": "'127.0.0.1'::inet",
                "clip_id": f"CASE WHEN i % 2 = 0 THEN {first_clip} + i % {spec['clips']} END",
                "user_id": f"{first_customer} + i % {spec['customers']}",
                "created_at": f"now() - ({spec['records']} - i) * interval '{span:.4f} seconds'",
            },
        )
        step("synthesis records")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    step(f"done: size {size}")


def _median_ms(fn, repeat: int = 5) -> tuple[float, int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries, size = [], 0, 0
    fn()  # warm
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = fn()
            body = b"".join(response.streaming_content) if response.streaming else response.content
            times.append((time.perf_counter() - started) * 1000)
        queries, size = len(ctx.captured_queries), len(body)
        assert response.status_code < 400, (response.status_code, body[:300])
    return statistics.median(times), queries, size


def measure(prune: bool, out: Path | None, skip: list[str], repeat: int) -> None:
    _setup()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import RefreshToken

    from dialogs.models import Conversation, Message

    User = get_user_model()
    admin, _ = User.objects.get_or_create(
        username="scale-admin",
        defaults=dict(role="admin", is_staff=True, is_superuser=True),
    )
    agent = User.objects.filter(username="scale-agent-1").first()
    conversation = Conversation.objects.filter(
        customer__username__startswith="scale-cust-"
    ).order_by("id")[100]
    customer = conversation.customer
    long_conversation = Conversation.objects.order_by("-id").first()

    def jwt(user):
        return {"HTTP_AUTHORIZATION": f"Bearer {RefreshToken.for_user(user).access_token}"}

    cust, staff = Client(), Client()
    admin_client = Client()
    admin_client.force_login(admin)
    staff.force_login(agent)
    counter = iter(range(10**9))
    since = (timezone.localdate() - timedelta(days=30)).isoformat()
    records_ids = None

    def csv_export():
        nonlocal records_ids
        return admin_client.post(
            f"/admin/tts/synthesisrecord/?created_at__gte={since}",
            {"action": "export_csv", "select_across": "1", "index": "0", "_selected_action": ["0"]},
        )

    paths = [
        (
            "customer message list",
            lambda: cust.get(f"/api/conversations/{conversation.pk}/messages/", **jwt(customer)),
        ),
        (
            "customer message post",
            lambda: cust.post(
                f"/api/conversations/{conversation.pk}/messages/",
                {"text": f"查询一下订单 {next(counter)}"},
                content_type="application/json",
                **jwt(customer),
            ),
        ),
        ("agent queue API", lambda: staff.get("/api/agent/conversations/", **jwt(agent))),
        (
            "1,000-message conversation, first page",
            lambda: cust.get(
                f"/api/conversations/{long_conversation.pk}/messages/",
                **jwt(long_conversation.customer),
            ),
        ),
        ("console index as agent", lambda: staff.get("/console/")),
        (
            "admin conversations, search 退款",
            lambda: admin_client.get("/admin/dialogs/conversation/", {"q": "退款"}),
        ),
        ("admin messages", lambda: admin_client.get("/admin/dialogs/message/")),
        ("admin synthesis records", lambda: admin_client.get("/admin/tts/synthesisrecord/")),
        ("CSV export of synthesis records, 30 days", csv_export),
    ]
    rows = {}
    counts = {
        "messages": Message.objects.count(),
        "conversations": Conversation.objects.count(),
    }
    print(f"database: {connection.settings_dict['NAME']} {counts}")
    print("| path | wall ms (median of 5) | queries | bytes |")
    print("| --- | --- | --- | --- |")
    for label, fn in paths:
        if any(word in label for word in skip):
            print(f"| {label} | skipped | | |")
            continue
        ms, queries, size = _median_ms(fn, repeat)
        rows[label] = {"ms": round(ms, 1), "queries": queries, "bytes": size}
        print(f"| {label} | {ms:.0f} | {queries} | {size:,} |", flush=True)
    if prune:
        for label, command, kwargs in (
            ("tts_prune_clips (stale only)", "tts_prune_clips", {}),
            ("tts_prune_clips --unused-days 90", "tts_prune_clips", {"unused_days": 90}),
            ("audit_prune --older-than 90", "audit_prune", {"older_than": 90}),
        ):
            started = time.perf_counter()
            call_command(command, stdout=open(os.devnull, "w"), **kwargs)
            ms = (time.perf_counter() - started) * 1000
            rows[label] = {"ms": round(ms, 1)}
            print(f"| {label} | {ms:.0f} (once) | | |", flush=True)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"counts": counts, "paths": rows}, ensure_ascii=False, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grow")
    g.add_argument("--size", choices=sorted(SIZES), default="M")
    m = sub.add_parser("measure")
    m.add_argument("--prune", action="store_true")
    m.add_argument("--skip", action="append", default=[], help="skip paths containing this")
    m.add_argument("--repeat", type=int, default=5)
    m.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "scale.json")
    args = parser.parse_args()
    if args.command == "grow":
        grow(args.size)
    else:
        measure(args.prune, args.out, args.skip, args.repeat)


if __name__ == "__main__":
    main()
