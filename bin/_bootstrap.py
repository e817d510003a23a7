"""Runs a tf_style command from bin/: the installed package, or this checkout's when none is."""

import importlib.util
import os
import sys


def run(command: str):
    if importlib.util.find_spec('tf_style') is None:  # a checkout, not installed
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tf_style.cli import run_command
    run_command(command, sys.argv[1:], program=os.path.basename(sys.argv[0]))
