"""The argument parser every trustdial command line shares (``--json`` refusals as JSON).

Unstable: see :mod:`trustdial_verifier.unstable`."""

from trustdial_verifier._internal.cli.arguments import JsonAwareParser, parse_or_refuse

__all__ = ["JsonAwareParser", "parse_or_refuse"]
