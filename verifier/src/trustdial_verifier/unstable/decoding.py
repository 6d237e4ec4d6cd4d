"""The strict, bounded decoders for untrusted bytes: CBOR (only the tags a format allows, no shared
references, bounded depth/size/items) and JSON (no duplicate keys, no lone surrogates, no non-finite
numbers, bounded integers, depth and size). Each raises a typed error with a stable ``code``.

Unstable: see :mod:`trustdial_verifier.unstable`."""

from trustdial_verifier._internal import strict_cbor, strict_json

__all__ = ["strict_cbor", "strict_json"]
