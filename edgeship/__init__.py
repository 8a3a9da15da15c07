"""edgeship: a log and telemetry forwarder for edge devices, compatible with Fluent Bit."""
__version__ = "0.1.0"
