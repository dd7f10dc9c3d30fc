"""A failed synthesis tells the customer only that speech is unavailable, never why in detail."""

import pytest

from dialogs.models import AudioStatus, Message, SenderKind

pytestmark = pytest.mark.django_db
SERVER_DETAIL = "engine unavailable: missing model file: /srv/models/baker/config.json"


def test_customers_see_a_plain_reason_while_the_detail_stays_for_staff(
    api_client, customer, agent, conversation
):
    message = Message.objects.create(
        conversation=conversation,
        sender_kind=SenderKind.AGENT,
        author=agent,
        text="您好，已为您处理。",
        audio_status=AudioStatus.FAILED,
        audio_error=SERVER_DETAIL,
    )
    api_client.force_authenticate(customer)

    listed = api_client.get(f"/api/conversations/{conversation.pk}/messages/").json()

    payload = next(m for m in listed["results"] if m["id"] == message.pk)
    assert payload["audio"]["status"] == "failed"
    assert payload["audio"]["error"] and "/srv/" not in str(payload)
    message.refresh_from_db()
    assert message.audio_error == SERVER_DETAIL
