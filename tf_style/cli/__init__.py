"""The command line: `tf-style <command> [flags]` and `python -m tf_style <command>`.

Each command is a module here with `define_flags(fv)` and `main(fv)`; `python bin/<name>` runs
the same module.
"""

import importlib
import sys

COMMANDS = {
    'stylize': 'stylize',
    'stylize-video': 'stylize_video',
    'export-extractor': 'export_extractor',
    'export-stylizer': 'export_stylizer',
    'convert-weights': 'convert_weights',
    'reproduce-figures': 'reproduce_figures',
    'contact-sheet': 'contact_sheet',
    'benchmark': 'benchmark',
    'stylize-beam': 'stylize_beam',
}


def command_module(name: str):
    return importlib.import_module(f'{__name__}.{COMMANDS[name]}')


def main(argv=None):
    """`tf-style <command> [flags]`."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] not in COMMANDS:
        given = argv[1] if len(argv) > 1 else ''
        usage = f'usage: tf-style <command> [flags]; commands: {", ".join(COMMANDS)}'
        from . import app
        if given in ('-h', '--help', 'help'):
            app.show(help_text())
            sys.exit(0)
        app.set_program('tf-style')
        app.fail(f'{"unknown command " + repr(given) if given else "no command"}; '
                 f'{usage[len("usage: "):]}')
    run_command(argv[1], argv[2:])


def help_text() -> str:
    """`tf-style --help`: the usage, and each command with the first line of its docstring."""
    width = max(map(len, COMMANDS))
    lines = [f'  {name:<{width}}  {command_module(name).__doc__.strip().splitlines()[0]}'
             for name in COMMANDS]
    return '\n'.join(['usage: tf-style <command> [flags]', '', 'commands:', *lines, '',
                      "a command's flags: tf-style <command> --help"])


def run_command(name: str, args, program: str = None):
    """Runs command `name` with `args` as `tf-style <name>` would; errors begin with
    `program` (default: `tf-style <name>`)."""
    from .app import run
    program = program or f'tf-style {name}'
    sys.argv = [program, *args]
    run(command_module(name), name=program)
