"""Plain-Python baselines measured in the same run as the thing compared with them."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["deque_dispatch_rate"]


class _Node:
    """A trivial event handler: count, then queue the next node (a 10-object call chain)."""

    __slots__ = ("count", "next", "queue")

    def __init__(self, queue: deque[Callable[[], None]]) -> None:
        self.queue = queue
        self.count = 0
        self.next: Callable[[], None] = self.run

    def run(self) -> None:
        self.count += 1
        self.queue.append(self.next)


def deque_dispatch_rate(events: int = 5_000_000, chain: int = 10) -> float:
    """Events per second of a FIFO `deque.popleft()()` loop over a chain of trivial objects."""
    queue: deque[Callable[[], None]] = deque()
    nodes = [_Node(queue) for _ in range(chain)]
    for i, node in enumerate(nodes):
        node.next = nodes[(i + 1) % chain].run
    queue.append(nodes[0].run)
    pop = queue.popleft
    start = time.perf_counter()
    for _ in range(events):
        pop()()
    elapsed = time.perf_counter() - start
    return sum(n.count for n in nodes) / elapsed
