"""Edge AI: features, training from the plant models, ONNX model runtime, federated learning.

Submodules: `features` (shared by the feature FBs and training), `dataset` (labelled data
from the pump model), `learn` (numpy learners), `graphs` (ONNX builders), `train`
(`testbed train`), `runtime` (sessions, validation, bounded micro-batching executor, hot
swap), `registry` (model versions on the edge), `federated` (FedAvg across sites).
"""
