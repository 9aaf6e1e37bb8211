"""Command-line interface: ``frontier <command>``."""
