"""edgeship's version: in core, so every layer (and the firmware) may name it."""
VERSION = "0.1.0"
