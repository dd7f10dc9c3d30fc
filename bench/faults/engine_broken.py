"""Fault drill 4: the TTS model is missing, then corrupt.

For each case a private stack (PostgreSQL, Redis, uvicorn, a Celery worker) runs with
TTS_MODEL_DIR pointing at a broken model folder:
  missing: an empty folder (a deploy without `manage.py tts_install_model`);
  corrupt: the real config files next to a model.safetensors of random bytes.
A customer writes "你好" (a canned phrase answers it, to be voiced). Verifies: /readyz answers
503 naming the engine; the bot's reply is delivered as text at once; its audio ends `failed`
with a reason (after the task's bounded retries) also through the chat API; the admin's
message list shows that reason to staff.

    .venv/bin/python bench/faults/engine_broken.py
"""

import html
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import ROOT, Stack, customer_token, run, say, staff_session, wait_for


def broken_model_dir(base: Path, case: str) -> Path:
    model_dir = base / f"models-{case}"
    voice = model_dir / "baker"
    voice.mkdir(parents=True)
    if case == "corrupt":
        for name in ("config.json", "baker_mapper.json", "INSTALLED.json"):
            shutil.copy(ROOT / "var" / "models" / "baker" / name, voice / name)
        (voice / "model.safetensors").write_bytes(os.urandom(4096))
    return model_dir


def drill(stack: Stack, case: str, session: str) -> bool:
    import httpx

    from dialogs.models import AudioStatus, Message

    stack.extra_env["TTS_MODEL_DIR"] = str(broken_model_dir(stack.dir, case))
    stack.start_server()
    stack.start_worker()
    ok = True
    ready = httpx.get(f"{stack.base_url}/readyz", timeout=30)
    tts = ready.json()["checks"].get("tts", {})
    say(f"[{case}] /readyz {ready.status_code}: tts {tts}")
    if ready.status_code != 503 or tts.get("ok") is not False or not tts.get("detail"):
        ok = False
        say(f"FAIL [{case}]: /readyz does not report the broken engine")

    _, token = customer_token(f"faults-engine-{case}")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=stack.base_url, headers=headers, timeout=30) as c:
        conversation = c.post("/api/conversations/").json()["id"]
        posted = c.post(f"/api/conversations/{conversation}/messages/", json={"text": "你好"})
        reply = posted.json()["bot_reply"]
        say(
            f"[{case}] POST 你好 -> {posted.status_code}; bot reply delivered as text: "
            f"{reply['text'] if reply else None!r}, audio {reply['audio']['status'] if reply else '-'}"
        )
        if posted.status_code != 201 or not reply or not reply["text"]:
            return False
        message = wait_for(
            lambda: Message.objects.filter(pk=reply["id"], audio_status=AudioStatus.FAILED).first(),
            timeout=90,
            interval=1,
            what="the reply's audio marked failed",
        )
        say(f"[{case}] audio failed after the retries; reason: {message.audio_error!r}")
        listed = c.get(f"/api/conversations/{conversation}/messages/").json()["results"]
        api_reply = next(m for m in listed if m["id"] == reply["id"])
        say(
            f"[{case}] chat API: text {api_reply['text']!r}, audio "
            f"{api_reply['audio']['status']}, error {api_reply['audio']['error']!r}"
        )
        if api_reply["audio"]["status"] != "failed" or not api_reply["audio"]["error"]:
            ok = False
            say(f"FAIL [{case}]: the chat API does not show the failure")
    admin = httpx.get(
        f"{stack.base_url}/admin/dialogs/message/?audio_status__exact=failed",
        cookies={"sessionid": session},
        timeout=30,
    )
    shown = html.escape(message.audio_error[:40]) in admin.text
    say(
        f"[{case}] admin message list (filter audio=failed): {admin.status_code}, reason shown: {shown}"
    )
    if admin.status_code != 200 or not shown:
        ok = False
        say(f"FAIL [{case}]: the admin does not show the reason")
    stack.stop_server_and_workers()
    return ok


def main() -> bool:
    with Stack("engine") as stack:
        stack.django()
        session = staff_session("faults-admin")
        results = {case: drill(stack, case, session) for case in ("missing", "corrupt")}
        for case, ok in results.items():
            say(f"{case} model: {'PASS' if ok else 'FAIL'}")
        return all(results.values())


if __name__ == "__main__":
    run(main)
