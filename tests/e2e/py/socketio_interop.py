"""python-socketio's sync Client through the balancer (scenario 20 of the sticky-session notes).

Prints one JSON object of observations on stdout; tests/python.test.mjs judges them. The client
keeps its cookies (the balancer's SRVNAME, the HTTP tier's session) in a requests.Session,
whose jar python-engineio also uses to build the Cookie header of the WebSocket upgrade.

    socketio_interop.py BASE MODE [USER]

MODE: polling (polling only), default (polling, then the upgrade python-engineio starts right
after the handshake) or swap (polling, then SRVNAME in the jar is replaced by another node's
value: the negative control, the next request must land on a node that does not know the sid).
USER: log in through the HTTP tier first and also connect to /chat (login required).
"""

import json
import sys
import time

import requests
import socketio


def main() -> int:
    base, mode = sys.argv[1], sys.argv[2]
    user = sys.argv[3] if len(sys.argv) > 3 else None
    out = {"mode": mode, "errors": [], "whoami": [], "disconnects": []}
    http = requests.Session()
    if user:
        r = http.post(f"{base}/api/login", json={"user": user}, timeout=5)
        out["login_status"] = r.status_code
    sio = socketio.Client(reconnection=False, http_session=http, request_timeout=5)
    welcome = {}
    sio.on("welcome", lambda w: welcome.update(w), namespace="/chat")
    sio.on("disconnect", lambda *reason: out["disconnects"].append(str(reason)), namespace="/")
    namespaces = ["/", "/chat"] if user else ["/"]
    transports = ["polling"] if mode in ("polling", "swap") else ["polling", "websocket"]
    try:
        sio.connect(base, socketio_path="engine.io", transports=transports,
                    namespaces=namespaces, wait_timeout=10)
        if mode == "default":
            deadline = time.monotonic() + 10
            while sio.transport() != "websocket" and time.monotonic() < deadline:
                time.sleep(0.05)
        out["transport"] = sio.transport()
        out["sid"] = sio.get_sid("/")
        out["cookies"] = {c.name: c.value for c in http.cookies}
        for _ in range(3):
            out["whoami"].append(sio.call("whoami", timeout=5))
        if user:
            deadline = time.monotonic() + 5
            while not welcome and time.monotonic() < deadline:
                time.sleep(0.05)
            out["welcome"] = welcome
        if mode == "swap":
            # Control first: held long-polls across more than a ping interval keep working
            # while the jar is left alone.
            time.sleep(3)
            out["connected_before_swap"] = sio.connected
            out["whoami"].append(sio.call("whoami", timeout=5))
            other = {"S1": "S2", "S2": "S1"}[out["cookies"]["SRVNAME"]]
            old = next(c for c in http.cookies if c.name == "SRVNAME")
            http.cookies.clear(old.domain, old.path, old.name)
            http.cookies.set("SRVNAME", other, domain=old.domain, path=old.path)
            out["cookies_after_swap"] = [[c.name, c.value, c.domain] for c in http.cookies]
            # The next long-poll (at most one ping interval away) goes to the other node.
            deadline = time.monotonic() + 15
            while sio.connected and time.monotonic() < deadline:
                time.sleep(0.05)
            out["connected_after_swap"] = sio.connected
    except Exception as err:  # reported, judged by the node test
        out["errors"].append(f"{type(err).__name__}: {err}")
    finally:
        out["disconnects_before_close"] = list(out.pop("disconnects"))
        sio.disconnect()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
