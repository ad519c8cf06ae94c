"""A download built on click stays until its browser has fetched it, then goes (studio.download_hold).

Streamlit's own media manager, the real one: a stored download belongs to no session, and two
script runs of any other session (a class's timers end several a second) delete it.
"""

from __future__ import annotations

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.media_file_storage import MediaFileStorageError
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from studio import download_hold


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def click(manager: MediaFileManager, data: bytes = b"PK model bytes") -> str:
    """A learner's click on a download button: the callable runs, the browser gets a URL."""
    placeholder = manager.add_deferred(lambda: data, "application/zip", "1.2.3", "model.zip")
    return manager.execute_deferred(placeholder)


def fetch(manager: MediaFileManager, url: str) -> bytes:
    """The browser's request for the URL (what /media/<file> reads)."""
    return manager._storage.get_file(url.rsplit("/", 1)[-1]).content


def other_sessions_finish_runs(manager: MediaFileManager, runs: int = 2) -> None:
    """What Streamlit does at the end of every script run, in any session."""
    for _ in range(runs):
        manager.remove_orphaned_files()


@pytest.mark.fast
def test_without_the_hold_two_other_script_runs_delete_a_download_before_its_fetch():
    manager = MediaFileManager(MemoryMediaFileStorage("/media"))
    url = click(manager)
    other_sessions_finish_runs(manager)
    with pytest.raises(MediaFileStorageError):
        fetch(manager, url)


def stored(manager: MediaFileManager, url: str) -> bool:
    """Is the download's file still in the store (without asking for it as a browser would)?"""
    return url.rsplit("/", 1)[-1].split(".", 1)[0] in manager._storage._files_by_id


@pytest.mark.fast
def test_a_held_download_outlives_a_busy_class_until_it_is_fetched_then_goes():
    manager, clock = MediaFileManager(MemoryMediaFileStorage("/media")), Clock()
    assert download_hold.install(manager, clock)
    assert download_hold.install(manager, clock)  # once per manager
    url = click(manager)
    other_sessions_finish_runs(manager, runs=50)
    clock.now += 5  # the browser's request, seconds later on a busy server
    assert fetch(manager, url) == b"PK model bytes"
    assert download_hold.held(manager) == 1

    clock.now += download_hold.FETCHED_S - 1  # the janitor's round right after the request
    assert download_hold.release_expired(manager) == 0
    assert fetch(manager, url) == b"PK model bytes"  # a second request (a retry) still finds it

    clock.now += 1
    assert download_hold.release_expired(manager) == 1  # let go and marked ...
    assert download_hold.held(manager) == 0
    download_hold.release_expired(manager)  # ... and collected at the next round, no page running
    with pytest.raises(MediaFileStorageError):
        fetch(manager, url)


@pytest.mark.fast
def test_a_download_never_asked_for_goes_after_the_longest_hold():
    manager, clock = MediaFileManager(MemoryMediaFileStorage("/media")), Clock()
    download_hold.install(manager, clock)
    url = click(manager)
    clock.now += download_hold.hold_s() - 1
    assert download_hold.release_expired(manager) == 0
    other_sessions_finish_runs(manager)
    assert stored(manager, url)
    clock.now += 1
    assert download_hold.release_expired(manager) == 1
    download_hold.release_expired(manager)
    assert not stored(manager, url)


@pytest.mark.fast
def test_clicked_again_the_same_bytes_are_held_from_the_new_click():
    manager, clock = MediaFileManager(MemoryMediaFileStorage("/media")), Clock()
    download_hold.install(manager, clock)
    first = click(manager)
    fetch(manager, first)
    clock.now += download_hold.FETCHED_S - 1
    second = click(manager)  # same bytes: same stored file, held again until its own request
    assert first == second
    clock.now += download_hold.FETCHED_S
    assert download_hold.release_expired(manager) == 0
    other_sessions_finish_runs(manager)
    assert fetch(manager, second) == b"PK model bytes"


@pytest.mark.fast
def test_the_buttons_own_and_other_files_are_left_to_streamlit():
    manager, clock = MediaFileManager(MemoryMediaFileStorage("/media")), Clock()
    download_hold.install(manager, clock)
    image = manager.add(b"\x89PNG picture", "image/png", "4.5")  # shown by a session: kept while it shows it
    url = click(manager)
    clock.now += download_hold.hold_s()
    download_hold.release_expired(manager)
    download_hold.release_expired(manager)
    assert fetch(manager, image) == b"\x89PNG picture"
    assert not stored(manager, url)
    assert click(manager) == url  # the button still works: its callable is kept for the next click


@pytest.mark.fast
def test_a_manager_without_the_places_it_needs_is_left_as_it_is(caplog):
    class Other:
        def execute_deferred(self, file_id):
            return "/media/x.zip"

    other = Other()
    assert not download_hold.install(other)
    assert other.execute_deferred("a") == "/media/x.zip"
    assert download_hold.release_expired(other) == 0
    assert "not held" in caplog.text


# --- streamed from disk: the model's zip never enters memory -------------------------------------


def media_app(manager: MediaFileManager):
    """Streamlit's own media routes in a web app, as its server builds them."""
    from starlette.applications import Starlette
    from streamlit.web.server.starlette.starlette_routes import create_media_routes

    return Starlette(routes=create_media_routes(manager._storage, None))


def get(app, url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], list[bytes]]:
    """One GET through the web app (no network): status, headers and the body's pieces as sent."""
    import asyncio

    sent: list[dict] = []
    scope = {
        "type": "http",
        "method": "GET",
        "path": url,
        "raw_path": url.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
        "http_version": "1.1",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }

    asked = []

    async def receive():  # the request, then a browser that stays connected until the answer ends
        if not asked:
            asked.append(1)
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    pieces = [m.get("body", b"") for m in sent if m["type"] == "http.response.body" and m.get("body")]
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, pieces


def streaming() -> tuple[MediaFileManager, Clock, object]:
    """A media manager that holds downloads and the web app that streams its zips from disk."""
    manager, clock = MediaFileManager(MemoryMediaFileStorage("/media")), Clock()
    app = media_app(manager)
    assert download_hold.install(manager, clock) and download_hold.serve_from_disk(manager, app)
    return manager, clock, app


def click_disk(manager: MediaFileManager, path, filename: str = "model.zip") -> str:
    placeholder = manager.add_deferred(download_hold.FromDisk(lambda: path), "application/zip", "1.2.3", filename)
    return manager.execute_deferred(placeholder)


def test_a_zip_on_disk_is_streamed_in_small_pieces_and_never_stored_in_memory(tmp_path):
    manager, clock, app = streaming()
    zipped = tmp_path / "model.zip"
    zipped.write_bytes(bytes(range(256)) * 4096)  # 1 MB
    url = click_disk(manager, zipped, "resnet-partial.zip")
    assert url.startswith("/media/") and url.endswith(".zip")
    assert manager._storage._files_by_id == {}  # no copy of the bytes in the server's memory
    status, headers, pieces = get(app, url)
    assert status == 200 and b"".join(pieces) == zipped.read_bytes()
    assert 'attachment; filename="resnet-partial.zip"' == headers["content-disposition"]
    assert len(pieces) >= 16 and max(map(len, pieces)) <= 64 * 1024  # sent as the browser reads, 64 KB at most
    status, headers, pieces = get(app, url, {"Range": "bytes=10-19"})  # a resumed download
    assert status == 206 and b"".join(pieces) == zipped.read_bytes()[10:20]


def test_the_pages_own_check_of_a_download_url_is_answered_without_the_file(tmp_path):
    """Streamlit's page fetches each download's URL to check it and never reads the answer; unread,
    a big answer held one of the browser's six connections to the server (the next downloads waited)."""
    manager, clock, app = streaming()
    zipped = tmp_path / "model.zip"
    zipped.write_bytes(b"PK" * 100_000)
    url = click_disk(manager, zipped)
    status, _headers, pieces = get(app, url, {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"})
    assert status == 204 and pieces == []  # ok for the check; nothing left unread
    status, _headers, pieces = get(app, url, {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "empty"})
    assert status == 200 and b"".join(pieces) == zipped.read_bytes()  # the download itself


def test_a_streamed_url_answers_for_minutes_then_is_gone_and_other_media_stay_streamlits(tmp_path):
    manager, clock, app = streaming()
    zipped = tmp_path / "model.zip"
    zipped.write_bytes(b"PK on disk")
    url = click_disk(manager, zipped)
    picture = manager.add(b"\x89PNG picture", "image/png", "4.5")  # a session's picture: Streamlit's answer
    clock.now += download_hold.ON_DISK_S - 1
    download_hold.release_expired(manager)
    assert get(app, url)[2] == [b"PK on disk"]  # a retry minutes later
    assert get(app, picture)[2] == [b"\x89PNG picture"]
    clock.now += 1
    download_hold.release_expired(manager)
    assert download_hold.streamed(manager) == 0
    assert get(app, url)[0] == 404


def test_a_zip_trimmed_from_the_disk_after_the_click_says_to_click_again(tmp_path):
    manager, clock, app = streaming()
    zipped = tmp_path / "model.zip"
    zipped.write_bytes(b"PK")
    url = click_disk(manager, zipped)
    zipped.unlink()
    status, _headers, pieces = get(app, url)
    assert status == 404 and b"click its button again" in b"".join(pieces)


def test_without_the_stream_a_file_on_disk_goes_through_memory_as_before_and_notes_always_do(tmp_path):
    manager, clock = MediaFileManager(MemoryMediaFileStorage("/media")), Clock()
    download_hold.install(manager, clock)  # no web app to stream from (AppTest, another Streamlit)
    zipped = tmp_path / "model.zip"
    zipped.write_bytes(b"PK on disk")
    assert fetch(manager, click_disk(manager, zipped)) == b"PK on disk"
    app = media_app(manager)
    download_hold.serve_from_disk(manager, app)
    assert fetch(manager, click_disk(manager, b"PK a note: no model")) == b"PK a note: no model"  # bytes: stored as ever


def test_a_web_app_without_a_media_route_is_left_as_it_is(caplog):
    from starlette.applications import Starlette

    manager = MediaFileManager(MemoryMediaFileStorage("/media"))
    download_hold.install(manager)
    assert not download_hold.serve_from_disk(manager, Starlette(routes=[]))
    assert not download_hold.serve_from_disk(manager, None)
    assert "through memory" in caplog.text
