"""The registries of methods, modes and sources: filled lazily, once, whichever thread asks first."""

from __future__ import annotations

import threading
import time

from maskcli.registry import Registry


def test_threads_asking_at_once_all_see_the_whole_registry():
    def load() -> None:
        for name in ("a", "b", "c"):
            registry.register(name)(type(name, (), {}))
            time.sleep(0.01)  # a slow module import: the other threads arrive while it runs

    registry: Registry[type] = Registry("thing", load)
    seen: list[list[str]] = []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        seen.append(registry.names())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert seen == [["a", "b", "c"]] * 8


def test_a_module_that_asks_while_it_is_being_loaded_sees_what_is_registered_so_far():
    during: list[list[str]] = []

    def load() -> None:
        registry.register("a")(type("a", (), {}))
        during.append(registry.names())  # re-entry from the loading thread must not deadlock or loop
        registry.register("b")(type("b", (), {}))

    registry: Registry[type] = Registry("thing", load)
    assert registry.names() == ["a", "b"]
    assert during == [["a"]]
