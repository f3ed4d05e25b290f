"""ModelSession.one_sample_binding: bound batch-1 buffers give what a plain run gives."""

from __future__ import annotations

import numpy as np

from testbed.ai.graphs import reference_autoencoder, serialize
from testbed.ai.session import ModelSession


def test_bound_run_matches_plain_run_and_reuses_buffers() -> None:
    """Writing a sample into the bound input and running fills the bound output in place."""
    session = ModelSession(serialize(reference_autoencoder(0)), label="ref")
    binding = session.one_sample_binding()
    assert binding is not None
    out = binding.outputs[0]
    rng = np.random.default_rng(2)
    for _ in range(3):
        x = rng.normal(size=(1, 64)).astype(np.float32)
        binding.inputs[0][...] = x
        binding.run()
        assert binding.outputs[0] is out
        np.testing.assert_allclose(out, session.run({"x": x})[0], rtol=1e-6)
