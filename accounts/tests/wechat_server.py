"""A real local HTTP server speaking WeChat's jscode2session protocol, for tests.

Behaviour is chosen by the js_code: "ok-<openid>" succeeds, "err<errcode>" returns that errcode,
"slow" sleeps past the client's timeout, "html" answers garbage.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.requests.append((url.path, query))
        if url.path != "/sns/jscode2session":
            self.send_response(404)
            self.end_headers()
            return
        if query.get("grant_type") != "authorization_code" or not query.get("appid"):
            return self._json({"errcode": 40013, "errmsg": "invalid appid"})
        code = query.get("js_code", "")
        if code == "slow":
            time.sleep(1.5)
            return self._json({"openid": "slow-openid", "session_key": "k"})
        if code == "html":
            body = b"<html>bad gateway</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None
        # Malformed answers seen from proxies and WeChat itself: must be a clean 503, never a 500.
        odd = {
            "json-list": [{"openid": "x"}],
            "errcode-text": {"errcode": "busy", "errmsg": "?"},
            "errcode-float": {"errcode": 40029.5},
            "errcode-list": {"errcode": [1]},
            "openid-number": {"openid": 12345, "session_key": "k"},
            "json-null": None,
        }
        if code in odd:
            return self._json(odd[code])
        if code.startswith("err"):
            errcode = int(code[3:])
            return self._json({"errcode": errcode, "errmsg": f"error {errcode}"})
        if code.startswith("ok-"):
            openid = code[3:]
            return self._json({"openid": openid, "session_key": "sk", "unionid": f"u-{openid}"})
        return self._json({"errcode": 40029, "errmsg": "invalid code"})

    def _json(self, payload):
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")  # WeChat really answers text/plain
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FakeWeChatServer:
    def __enter__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.requests = []
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def requests(self):
        return self.httpd.requests

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
