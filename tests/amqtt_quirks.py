"""Known warnings of the embedded amqtt broker that tests filter, in one place."""

from __future__ import annotations

import pytest

AMQTT_LEAKS_SERVER_SOCKETS = pytest.mark.filterwarnings(
    # amqtt 0.12 stopped right after its clients disconnect can drop the server side of a
    # connection unclosed; those ResourceWarnings are amqtt's, not ours
    r"ignore:Exception ignored in. <(socket\.socket|function (_SelectorTransport|StreamWriter)"
    r"\.__del__):pytest.PytestUnraisableExceptionWarning")
