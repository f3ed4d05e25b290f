"""Communication layer stacks for the generic comm FBs, looked up by the ID's outer layer.

`LAYER_FACTORIES` maps a layer name to `"module:function"`; the module is imported on
first use, so a layer whose library is missing only fails the FBs that name it (with
STATUS `INVALID_ID` and a log line). To add a layer, add one line here; see
`fb.net.layers.base` for the contract.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType

from fb.net.layers.base import LayerFactory

__all__ = ["LAYER_FACTORIES", "UnknownLayerError", "layer_factory"]

LAYER_FACTORIES: Mapping[str, str] = MappingProxyType({
    "fbdk": "fb.net.layers.encoded:create_layer",  # fbdk[].ip[...], fbdk[].mqtt[...]
    "raw": "fb.net.layers.encoded:create_layer",  # raw[].mqtt[...], raw[].ip[...]
    "loc": "fb.net.layers.local:create_layer",  # loc[name]: resources of one device
    "opc_ua": "fb.net.layers.opcua:create_layer",
    "modbus": "fb.net.layers.modbus:create_layer",
})


class UnknownLayerError(LookupError):
    """No factory for a layer name, or its module cannot be imported."""


def layer_factory(name: str) -> LayerFactory:
    """The factory for the outer layer `name`; UnknownLayerError says why there is none."""
    target = LAYER_FACTORIES.get(name)
    if target is None:
        known = ", ".join(sorted(LAYER_FACTORIES))
        raise UnknownLayerError(f"no communication layer {name!r} (known: {known})")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownLayerError(f"layer {name!r} is not available: {exc}") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UnknownLayerError(f"layer {name!r}: {target} is not a factory")
    return factory  # type: ignore[no-any-return]
