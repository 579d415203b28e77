"""Generated task ids: valid UUIDv7, time-ordered, never repeated across threads or forks."""

from __future__ import annotations

import os
import threading
import time
import uuid

from jobbers.ids import is_valid_id, uuid7


def test_ids_are_uuid7_in_the_canonical_form() -> None:
    for _ in range(2000):
        text = uuid7()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert is_valid_id(text)


def test_ids_carry_the_millisecond_they_were_made_in_and_sort_by_it() -> None:
    before = time.time_ns() // 1_000_000
    first = uuid7()
    deadline = time.monotonic() + 5
    while time.time_ns() // 1_000_000 == before and time.monotonic() < deadline:
        pass
    second = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= uuid.UUID(first).int >> 80 <= uuid.UUID(second).int >> 80 <= after
    assert first < second


def test_threads_never_draw_the_same_id() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def draw(out: list[str]) -> None:
        out.extend(uuid7() for _ in range(5000))

    threads = [threading.Thread(target=draw, args=(out,)) for out in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for out in made for i in out]
    assert len(set(every)) == len(every) == 20000


def test_a_forked_child_does_not_replay_its_parents_random_bytes() -> None:
    uuid7()  # the parent now holds a buffer of random bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, "".join(uuid7() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode()
    os.waitpid(pid, 0)
    parent = [uuid7() for _ in range(50)]
    child_ids = [child[i : i + 36] for i in range(0, len(child), 36)]
    assert len(child_ids) == 50
    # Same millisecond or not, the random part (the last 74 bits) must differ.
    tails = {uuid.UUID(i).int & ((1 << 74) - 1) for i in child_ids + parent}
    assert len(tails) == 100
