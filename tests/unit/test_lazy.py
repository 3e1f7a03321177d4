"""A getter built once, also when many threads ask at the same moment."""

import threading
import time

from chalicelib.lazy import once


def test_threads_asking_at_once_share_one_build():
    builds: list[int] = []

    @once
    def client() -> object:
        builds.append(1)
        time.sleep(0.05)  # a slow build (a boto3 client): the other threads arrive meanwhile
        return object()

    barrier = threading.Barrier(20)
    got: list[object] = []

    def ask() -> None:
        barrier.wait()
        got.append(client())

    threads = [threading.Thread(target=ask) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len({id(g) for g in got}) == 1
    client.cache_clear()
    assert client() is not got[0] and len(builds) == 2
