"""How fast can scripts guess the teacher's secret on a running server? (issue 22: <= 10 a minute)

    python -m tools.guessbench --url http://127.0.0.1:8661 [--clients 8] [--seconds 60]
                               [--per-cookie 5] [--fake-addresses]

Each client speaks Streamlit's websocket protocol as tools/loadtest's WsStudent does: it
opens the Class page with a new learner cookie, types a wrong secret into the unlock form and
submits it, `--per-cookie` times, then starts over with a new cookie (new cookies for free are
the attack: a browser chooses its own). `--fake-addresses` also sends a new X-Forwarded-For
with every connection, which uvicorn believes only from a proxy in FORWARDED_ALLOW_IPS (this machine
arrives as ::ffff:127.0.0.1 on the dual-stack socket: add it to play many addresses from here). It prints how many guesses the
server compared ("That is not the secret") and how many it refused unseen ("Too many wrong
tries"), and the compared ones per minute: the figure to keep at 10 or under.

Start the server with a secret first, e.g.
    TLS_TEACHER_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(16))') \\
        TLS_STATE_DIR=$(mktemp -d) streamlit run app.py --server.port 8661 --server.headless true
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import time


def read_message(fwd, state: dict) -> bool:
    """Note what one ForwardMsg says (the page, the secret's field and button, the answer) in
    `state`; True when the script run has finished."""
    kind = fwd.WhichOneof("type")
    if kind == "navigation":
        state["hash"] = fwd.navigation.page_script_hash or state["hash"]
    elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
        el = fwd.delta.new_element
        which = el.WhichOneof("type")
        if which == "text_input":
            state["field"] = el.text_input.id
        elif which == "button" and el.button.is_form_submitter:
            state["submit"] = el.button.id
        elif which == "alert":
            body = el.alert.body
            if "not the secret" in body:
                state["answer"] = "compared"
            elif "Too many wrong tries" in body:
                state["answer"] = "refused"
    return kind == "script_finished"


class Guesser:
    def __init__(self, url: str, per_cookie: int, fake_addresses: bool):
        self.url, self.per_cookie, self.fake_addresses = url, per_cookie, fake_addresses
        self.compared = self.refused = self.other = self.cookies = 0
        self.errors: list[str] = []

    async def run(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                await self.one_cookie(deadline)
            except Exception as exc:  # noqa: BLE001 -- a broken connection: count it, go on with a new cookie
                self.errors.append(f"{type(exc).__name__}: {exc}"[:120])
                await asyncio.sleep(0.2)

    async def one_cookie(self, deadline: float) -> None:
        import websockets
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ClientState_pb2 import ClientState
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

        headers = {"Cookie": f"tls_learner={secrets.token_urlsafe(16)}"}
        if self.fake_addresses:
            headers["X-Forwarded-For"] = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
        self.cookies += 1
        ws_url = self.url.replace("http://", "ws://") + "/_stcore/stream"
        async with websockets.connect(
            ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=60, ping_interval=None, additional_headers=headers
        ) as ws:
            state = {"hash": "", "field": None, "submit": None, "answer": None}

            async def rerun(widgets=None) -> None:
                msg = BackMsg()
                msg.rerun_script.CopyFrom(
                    ClientState(
                        query_string="lang=en",
                        page_script_hash=state["hash"],
                        page_name="class",
                        widget_states=WidgetStates(widgets=widgets or []),
                    )
                )
                await ws.send(msg.SerializeToString())
                while True:  # read until this run has finished
                    fwd = ForwardMsg()
                    fwd.ParseFromString(await asyncio.wait_for(ws.recv(), timeout=60))
                    if read_message(fwd, state):
                        return

            await rerun()
            if not state["field"]:
                await rerun()  # the first run may draw before the page is known
            for _ in range(self.per_cookie):
                if time.monotonic() >= deadline or not (state["field"] and state["submit"]):
                    return
                state["answer"] = None
                guess = secrets.token_urlsafe(12)
                await rerun(
                    [WidgetState(id=state["field"], string_value=guess), WidgetState(id=state["submit"], trigger_value=True)]
                )
                if state["answer"] == "compared":
                    self.compared += 1
                elif state["answer"] == "refused":
                    self.refused += 1
                else:
                    self.other += 1


async def attack(url: str, clients: int, seconds: float, per_cookie: int, fake_addresses: bool) -> list[Guesser]:
    guessers = [Guesser(url, per_cookie, fake_addresses) for _ in range(clients)]
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(g.run(deadline) for g in guessers))
    return guessers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8661")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--per-cookie", type=int, default=5, help="guesses with one cookie before a new one")
    parser.add_argument("--fake-addresses", action="store_true", help="a new X-Forwarded-For with every cookie")
    args = parser.parse_args(argv)
    started = time.monotonic()
    guessers = asyncio.run(attack(args.url, args.clients, args.seconds, args.per_cookie, args.fake_addresses))
    took = time.monotonic() - started
    compared = sum(g.compared for g in guessers)
    refused = sum(g.refused for g in guessers)
    print(
        f"{args.clients} clients, {took:.0f} s, {sum(g.cookies for g in guessers)} cookies"
        f"{' with faked addresses' if args.fake_addresses else ''}: {compared} guesses compared, {refused} refused "
        f"unseen, {sum(g.other for g in guessers)} unanswered, {sum(len(g.errors) for g in guessers)} broken connections"
    )
    print(f"guesses at the secret per minute: {compared / took * 60:.1f}")
    errors = [e for g in guessers for e in g.errors]
    if errors:
        print("first errors:", errors[:3])


if __name__ == "__main__":
    main()
