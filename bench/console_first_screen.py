"""The agent console's first screen at scale: what a browser fetches before an agent can work.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cs_platform_scale \
        REDIS_URL=redis://127.0.0.1:6379/12 .venv/bin/python bench/console_first_screen.py

Reads a database grown by `bench/scale.py grow` and leaves it unchanged (opening a conversation
marks it read, as the console does: the run is rolled back). The first screen is three requests — the page shell, one page of
the queue, the newest page of the open conversation — so each is timed (median of 5, queries
counted) and their sum is the figure to hold at <= 300 ms with 3M messages. The old console
rendered every open conversation into the page (18 s at L); this one reads pages only.

At L (3M messages, 300k conversations; shared 2-core box, 2026-12-03): shell 59 ms / 5 queries,
queue page 152 ms / 28 queries (the list API's per-row queries, fixed on the workflow branch),
newest 50 messages 68 ms / 7 queries, scroll-back page 80 ms / 7 queries: first screen 279 ms.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import _median_ms, _setup  # bench/ is not a package: imported by path


def main() -> None:
    _setup()
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.test import Client

    from dialogs.models import Conversation, Message

    agent = get_user_model().objects.filter(username="scale-agent-1").first()
    assert agent is not None, "grow the database first: bench/scale.py grow --size L"
    long_conversation = Conversation.objects.order_by("-id").first()
    staff = Client()
    staff.force_login(agent)
    paths = [
        ("console shell (/console/c/<id>/)", f"/console/c/{long_conversation.pk}/"),
        ("queue, first page (view=all)", "/api/agent/conversations/?view=all"),
        ("queue, first page (view=unassigned)", "/api/agent/conversations/?view=unassigned"),
        (
            "open conversation: newest 50 of 1,000 messages",
            f"/console/c/{long_conversation.pk}/messages/",
        ),
        (
            "scroll back: 50 before the newest page",
            f"/console/c/{long_conversation.pk}/messages/?before="
            + str(
                Message.objects.filter(conversation=long_conversation)
                .order_by("-id")
                .values_list("id", flat=True)[49]
            ),
        ),
    ]
    print(f"database: {connection.settings_dict['NAME']}")
    print("| request | wall ms (median of 5) | queries | bytes |")
    print("| --- | --- | --- | --- |")
    first_screen = 0.0
    # The shared scale database stays as it was: opening a conversation marks it read, so the
    # whole run is one transaction that is rolled back.
    with transaction.atomic():
        for index, (label, url) in enumerate(paths):
            ms, queries, size = _median_ms(lambda url=url: staff.get(url))
            if index in (0, 1, 3):
                first_screen += ms
            print(f"| {label} | {ms:.0f} | {queries} | {size:,} |", flush=True)
        transaction.set_rollback(True)
    print(
        f"| **first screen (shell + queue page + newest messages)** | **{first_screen:.0f}** | | |"
    )


if __name__ == "__main__":
    main()
