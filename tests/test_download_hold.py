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


def test_without_the_hold_two_other_script_runs_delete_a_download_before_its_fetch():
    manager = MediaFileManager(MemoryMediaFileStorage("/media"))
    url = click(manager)
    other_sessions_finish_runs(manager)
    with pytest.raises(MediaFileStorageError):
        fetch(manager, url)


def stored(manager: MediaFileManager, url: str) -> bool:
    """Is the download's file still in the store (without asking for it as a browser would)?"""
    return url.rsplit("/", 1)[-1].split(".", 1)[0] in manager._storage._files_by_id


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


def test_a_manager_without_the_places_it_needs_is_left_as_it_is(caplog):
    class Other:
        def execute_deferred(self, file_id):
            return "/media/x.zip"

    other = Other()
    assert not download_hold.install(other)
    assert other.execute_deferred("a") == "/media/x.zip"
    assert download_hold.release_expired(other) == 0
    assert "not held" in caplog.text
