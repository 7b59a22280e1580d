"""The ``mmrank`` command line: thin argument parsing over the library, ``--json`` everywhere."""

from mmrank.cli.main import main

__all__ = ["main"]
