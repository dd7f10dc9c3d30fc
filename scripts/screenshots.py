"""Screenshots of the two screens for docs/screenshots/, taken from a running server.

    python scripts/screenshots.py http://127.0.0.1:8000 --agent agent --password <printed by make run>

Plays a short conversation through the screens themselves (the demo customer asks about a
refund and complains; the agent answers with a canned phrase), then photographs the customer's
chat at 390x844 and the agent console at 1440x900. Needs Debian's chromium.
"""

import argparse
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("--agent", default="agent")
    parser.add_argument("--password", required=True)
    parser.add_argument("--admin-path", action="append", default=[], help="also shoot these")
    parser.add_argument("--admin-user", default="")
    parser.add_argument("--admin-password", default="")
    options = parser.parse_args()
    base = options.base_url.rstrip("/")
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        phone = browser.new_context(
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
        )
        chat = phone.new_page()
        chat.goto(f"{base}/chat/")
        chat.click("#login")
        chat.wait_for_selector("#status[data-state=live]", timeout=30000)
        conversation_id = chat.get_attribute("body", "data-conversation-id")
        for text in ("你好，请问退款多久到账？", "你们的服务太差了，我要投诉！"):
            chat.fill("#text", text)
            chat.press("#text", "Enter")
            chat.wait_for_timeout(1500)
        chat.wait_for_selector(".row.from-bot .voice[data-state=ready]", timeout=120000)

        desk = browser.new_context(
            locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1440, "height": 900}
        )
        console = desk.new_page()
        console.goto(f"{base}/console/c/{conversation_id}/")
        console.fill("#id_username", options.agent)
        console.fill("#id_password", options.password)
        console.click("input[type=submit]")
        console.wait_for_selector(".msg.from-customer", timeout=30000)
        claim = console.locator("#claim")
        if claim.is_visible():
            claim.click()
            console.wait_for_timeout(1000)
        console.fill("#reply-text", "/sorry")
        console.wait_for_selector('#phrase-list li[data-short-code="sorry"]')
        console.press("#reply-text", "Enter")
        console.press("#reply-text", "Enter")
        console.wait_for_selector(".msg.from-agent .voice[data-state=ready]", timeout=120000)
        chat.wait_for_selector(".row.from-agent .voice[data-state=ready]", timeout=60000)
        chat.wait_for_timeout(800)
        chat.screenshot(path=str(OUT / "chat.png"))
        console.click(".tabs [data-view=all]")
        console.fill("#reply-text", "/")
        console.wait_for_selector("#phrase-list li")
        time.sleep(0.5)
        console.screenshot(path=str(OUT / "console.png"))

        if options.admin_path:
            admin = desk.new_page()
            admin.goto(f"{base}/admin/login/")
            admin.fill("#id_username", options.admin_user)
            admin.fill("#id_password", options.admin_password)
            admin.click("input[type=submit]")
            for path in options.admin_path:
                admin.goto(f"{base}{path}")
                # CJK glyphs come from a fallback font: shooting before it loads draws boxes.
                admin.evaluate("document.fonts.ready.then(() => true)")
                name = "admin-" + path.strip("/").replace("/", "-").replace("admin-", "", 1)
                admin.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
        browser.close()
    print(f"screenshots in {OUT}")


if __name__ == "__main__":
    main()
