"""Clients built once per process, on first use: `@once` on a getter.

Like functools.cache, but threads that ask at the same time wait for the one build instead of
each building its own: under `chalice local` (a thread per request) the first burst would
otherwise create hundreds of boto3 clients at once, which took 30 s on two cores.
"""

import threading
from collections.abc import Callable

_UNSET = object()


class once[T]:  # lower case: a decorator, like functools.cache
    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._value: object = _UNSET
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__

    def __call__(self) -> T:
        value = self._value
        if value is _UNSET:
            with self._lock:
                if self._value is _UNSET:
                    self._value = self._build()
                value = self._value
        return value  # type: ignore[return-value]

    def cache_clear(self) -> None:
        """Forget the built value: the next call builds again."""
        with self._lock:
            self._value = _UNSET
