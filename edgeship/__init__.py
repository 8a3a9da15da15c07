"""edgeship: a log and telemetry forwarder for edge devices, compatible with Fluent Bit."""
from edgeship.core import VERSION as __version__

__all__ = ("__version__",)
