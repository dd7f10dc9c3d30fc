"""A trigram index on message text, so staff search over millions of messages uses an index.

PostgreSQL only (pg_trgm ships with it and is a trusted extension); SQLite under `make run` has
small tables and keeps its plain LIKE scan.
"""

from django.db import migrations

INDEX = "dialogs_message_text_trgm"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON dialogs_message USING gin (text gin_trgm_ops)"
    )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("dialogs", "0005_message_order_index")]

    operations = [migrations.RunPython(forward, backward)]
