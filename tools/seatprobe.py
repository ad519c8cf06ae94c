"""Can one script take a class's seats or its cells? (issue 54: a script joined 38 made-up
learners in 2.1 s and filled the seats; 20 cookies took all 15 cells of an experiment)

    python -m tools.seatprobe --url http://127.0.0.1:8501 --code ABC234 [--joins 40]
                              [--address 10.9.0.66] [--clients 4]
    python -m tools.seatprobe --url http://127.0.0.1:8501 --code - --guess 300

Each join is a new learner cookie opening `/?join=CODE` (the QR's link) over Streamlit's
websocket, as tools/guessbench.py speaks it, from `--address` (sent as X-Forwarded-For, which
uvicorn believes only from a proxy listed in FORWARDED_ALLOW_IPS: start the server with
FORWARDED_ALLOW_IPS=127.0.0.1,::1,::ffff:127.0.0.1, since a dual-stack server sees this machine as
::ffff:127.0.0.1; without it every join counts as this machine's). Then each joined cookie opens the
Class page once more, as a member's pulse does, and the server gives it a part if one is free (the sidebar says which). It
prints what the server answered each join (joined, too many, busy, full, ...), the seconds taken,
and how many parts the script's cookies hold; read the class file for the rest. `--guess N`
instead tries N random codes, each with a new cookie and a new forged address, and prints how many
the server compared (a wrong code) and how many it refused unseen.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field

# The first words of the server's answers to a join (assets/i18n/en.json, class.join.*)
ANSWERS = {
    "You joined the class": "joined",
    "Too many tries": "too_many",
    "Many students are joining": "busy",
    "This class is full": "full",
    "The class is locked": "locked",
    "That code is not": "wrong",
    "Your teacher removed you": "removed",
}
PART = "Class experiment: you run"  # the sidebar's line for a member who holds a part (class.side.cell)


@dataclass
class Visit:
    """What one page run drew: its alerts' and markdown's texts."""

    texts: list[str] = field(default_factory=list)

    def answer(self) -> str:
        for text in self.texts:
            for start, name in ANSWERS.items():
                if start in text:
                    return name
        return "other"


async def visit(url: str, *, cookie: str, address: str | None, query: str, page: str = "class") -> Visit:
    """One full run of `page` for the learner `cookie` from `address` (None: this machine)."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ClientState_pb2 import ClientState

    headers = {"Cookie": f"tls_learner={cookie}"}
    if address:
        headers["X-Forwarded-For"] = address
    ws_url = url.replace("http://", "ws://") + "/_stcore/stream"
    async with websockets.connect(
        ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=60, ping_interval=None, additional_headers=headers
    ) as ws:
        page_hash = ""
        for _ in range(2):  # a session's very first run may end before its page is known: then once more
            msg = BackMsg()
            msg.rerun_script.CopyFrom(ClientState(query_string=query, page_name=page, page_script_hash=page_hash))
            await ws.send(msg.SerializeToString())
            seen, page_hash = await _one_run(ws, page_hash)
            if seen.texts:
                break
        return seen


async def _one_run(ws, page_hash: str) -> tuple[Visit, str]:
    """Read one script run's messages: what it drew, and the page's hash (navigation)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    seen = Visit()
    while True:
        fwd = ForwardMsg()
        fwd.ParseFromString(await asyncio.wait_for(ws.recv(), timeout=120))
        kind = fwd.WhichOneof("type")
        if kind == "navigation":
            page_hash = fwd.navigation.page_script_hash or page_hash
        elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
            element = fwd.delta.new_element
            which = element.WhichOneof("type")
            if which == "alert":
                seen.texts.append(element.alert.body)
            elif which == "markdown":
                seen.texts.append(element.markdown.body)
        elif kind == "script_finished":
            return seen, page_hash


async def _joins(url: str, count: int, clients: int, code_of, address_of) -> list[tuple[str, str]]:
    """`count` join attempts, each with a new cookie, `clients` at a time: (cookie, answer) each.
    code_of() and address_of() give each attempt's code and address."""
    done: list[tuple[str, str]] = []
    todo = iter(range(count))

    async def client() -> None:
        for _ in todo:
            cookie = secrets.token_urlsafe(16)
            seen = await visit(url, cookie=cookie, address=address_of(), query=f"join={code_of()}&lang=en")
            done.append((cookie, seen.answer()))

    await asyncio.gather(*(client() for _ in range(clients)))
    return done


async def flood(url: str, code: str, joins: int, address: str | None, clients: int = 4) -> tuple[Counter, list[str]]:
    """`joins` new cookies join from `address`, `clients` at a time: (answers counted, the joined cookies)."""
    done = await _joins(url, joins, clients, lambda: code, lambda: address)
    return Counter(answer for _, answer in done), [cookie for cookie, answer in done if answer == "joined"]


async def guess(url: str, tries: int, *, forged: bool, clients: int = 4) -> Counter:
    """`tries` join attempts with random wrong codes, a new cookie each, and (`forged`) a new
    X-Forwarded-For each: what the server answered (wrong: compared; too_many: refused unseen)."""
    import random

    from tlcore.serve.classroom.codes import ALPHABET, CODE_LENGTH

    def code() -> str:
        return "".join(random.choice(ALPHABET) for _ in range(CODE_LENGTH))

    def address() -> str | None:
        return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}" if forged else None

    return Counter(answer for _, answer in await _joins(url, tries, clients, code, address))


async def parts_held(url: str, cookies: list[str], address: str | None) -> int:
    """Each cookie opens the Class page once: how many of them are shown a part of their own."""
    held = 0
    for cookie in cookies:
        if any(PART in text for text in (await visit(url, cookie=cookie, address=address, query="lang=en")).texts):
            held += 1
    return held


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8501")
    parser.add_argument("--code", required=True, help="the class code on the teacher's page")
    parser.add_argument("--joins", type=int, default=40)
    parser.add_argument("--address", default="10.9.0.66", help="the script's address (X-Forwarded-For); '' for this machine")
    parser.add_argument("--clients", type=int, default=4, help="joins at a time")
    parser.add_argument("--guess", type=int, default=0, help="instead: this many wrong codes, each from a forged address")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.guess:
        answers = asyncio.run(guess(args.url, args.guess, forged=True, clients=args.clients))
        took = time.monotonic() - started
        print(
            f"{args.guess} guesses from forged addresses in {took:.1f} s: "
            + ", ".join(f"{k} {v}" for k, v in answers.most_common())
        )
        print(f"codes compared per minute: {answers['wrong'] / took * 60:.0f}")
        return
    answers, joined = asyncio.run(flood(args.url, args.code, args.joins, args.address or None, args.clients))
    took = time.monotonic() - started
    print(
        f"{args.joins} joins from {args.address or 'this machine'} in {took:.1f} s: "
        + ", ".join(f"{k} {v}" for k, v in answers.most_common())
    )
    held = asyncio.run(parts_held(args.url, joined, args.address or None))
    print(f"parts held by the script's {len(joined)} members: {held}")


if __name__ == "__main__":
    main()
