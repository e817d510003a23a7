"""Command-line flags generated from StyleTransferConfig's fields, and the flag reference.

Each option is defined once, in tf_style/config.py (name, type, default, help); this module turns
the fields into absl flags and the parsed flags back into a config, with no strings to split
again in between.
"""

import contextlib
import dataclasses
import os
import re
from typing import Iterable

from absl import flags

from ..config import TOPICS, StyleTransferConfig

CONFIG_FIELDS = {f.name: f for f in dataclasses.fields(StyleTransferConfig)}
CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _NumberListParser(flags.ListParser):
    """A comma-separated list of numbers (int or float)."""

    def __init__(self, convert, what):
        super().__init__()
        self._convert, self._what = convert, what

    def parse(self, argument):
        values = super().parse(argument)
        try:
            return [self._convert(v) for v in values]
        except ValueError:
            raise ValueError(f'expected comma-separated {self._what}, got {argument!r}') from None

    def flag_type(self):
        return f'comma separated list of {self._what}'


class _IntOrAutoParser(flags.ArgumentParser):
    """An integer, or 'auto' (None: the library decides)."""

    def parse(self, argument):
        if argument is None or str(argument).strip().lower() == 'auto':
            return None
        try:
            return int(argument)
        except ValueError:
            raise ValueError(f"expected an integer or 'auto', got {argument!r}") from None

    def flag_type(self):
        return "integer or 'auto'"


def define_config_flags(fv: flags.FlagValues, names: Iterable[str] = None, help_notes=None,
                        defaults=None):
    """Defines a flag for each config field in `names` (default: all), with the field's
    default and help (`help_notes` adds to a field's help; `defaults` replaces a default)."""
    for name in names or CONFIG_FIELDS:
        field = CONFIG_FIELDS[name]
        help = field.metadata['help'] + (help_notes or {}).get(name, '')
        _define(fv, name, (defaults or {}).get(name, field.default), help, field.metadata)


@contextlib.contextmanager
def topic(fv: flags.FlagValues, name: str):
    """The flags defined in this block are listed under topic `name` by --help (config.TOPICS;
    the config's own flags have theirs in config.py)."""
    before = set(fv)
    yield
    for flag_name in set(fv) - before:
        if not getattr(fv[flag_name], 'topic', None):
            fv[flag_name].topic = name


def _define(fv, name, default, help, meta):
    _define_flag(fv, name, default, help, meta)
    fv[name].topic = meta.get('topic')


def _define_flag(fv, name, default, help, meta):
    kind = meta.get('kind') or type(default).__name__
    if 'choices' in meta and not meta.get('free'):
        flags.DEFINE_enum(name, default, meta['choices'], help, flag_values=fv)
    elif kind == 'bool':
        flags.DEFINE_boolean(name, default, help, flag_values=fv)
    elif kind == 'int':
        flags.DEFINE_integer(name, default, help, flag_values=fv)
    elif kind == 'int_or_auto':
        flags.DEFINE(_IntOrAutoParser(), name, default, help, flag_values=fv)
        if default is None:
            fv[name].default_as_str = "'auto'"  # as --help and docs/flags.md show it
    elif kind == 'float':
        flags.DEFINE_float(name, default, help, flag_values=fv)
    elif kind == 'layers':
        flags.DEFINE_list(name, list(default), help, flag_values=fv)
    elif kind in ('floats', 'ints'):
        convert, what = (float, 'numbers') if kind == 'floats' else (int, 'integers')
        listed = None if default is None else list(default) if isinstance(
            default, (tuple, list)) else [default]
        flags.DEFINE(_NumberListParser(convert, what), name, listed, help, flag_values=fv,
                     serializer=flags.CsvListSerializer(','))
    else:
        flags.DEFINE_string(name, default, help, flag_values=fv)


def config_from_flags(fv: flags.FlagValues, **overrides) -> StyleTransferConfig:
    """The config from every flag that is a config field (and `overrides`)."""
    values = {name: fv[name].value for name in CONFIG_FIELDS if name in fv}
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
    values.update(overrides)
    return StyleTransferConfig(**values)


def flags_help(fv: flags.FlagValues, modules) -> str:
    """--help's list of the flags that `modules` define ([(module name, topic of its flags that
    have none)]): one line each (the flag, its default and the first sentence of its help), in
    the order they are defined, grouped by topic, most used first (config.TOPICS); flags without
    a topic come first."""
    topics = {}
    for module, default_topic in modules:
        for flag in fv.get_flags_for_module(module):
            topics.setdefault(flag.name, getattr(flag, 'topic', None) or default_topic)
    groups = {}
    for name in fv:  # in the order the flags were defined
        if name in topics and fv[name].name == name:  # not a short name
            groups.setdefault(topics[name], []).append(fv[name])
    order = [None, *TOPICS, *sorted(t for t in groups if t and t not in TOPICS)]
    rows = [(topic, [(_flag_and_default(f), _short_help(f)) for f in groups[topic]])
            for topic in order if groups.get(topic)]
    width = min(32, max(len(left) for _, lines in rows for left, _ in lines))
    text = []
    for topic, lines in rows:
        text += ['', f'{topic or "Flags"}:']
        text += [f'  {left:<{width}}  {right}'.rstrip() for left, right in lines]
    return '\n'.join(text[1:])


def _flag_and_default(flag) -> str:
    """`--image_size=512`; `--content (required)`; a flag without a default alone."""
    if any('must have a value other than None' in getattr(v, 'message', '')
           for v in getattr(flag, 'validators', ())):
        return f'--{flag.name} (required)'
    default = (flag.default_as_str or '').strip("'")
    return f'--{flag.name}={default}' if default else f'--{flag.name}'


def _short_help(flag, limit: int = 80) -> str:
    """The help's first sentence; when longer than `limit` characters, its first clause (up to a
    ';'), without parentheses, cut to `limit`."""
    text = ' '.join(flag.help.split())
    text = text.removesuffix('; repeat this option to specify a list of values')  # absl's
    for ends in ('.', '.;'):
        depth = 0
        for i, char in enumerate(text):
            depth += {'(': 1, ')': -1}.get(char, 0)
            if depth == 0 and char in ends and text[i + 1:i + 2] in (' ', ''):
                text = text[:i + (char == '.')]
                break
        if len(text) <= limit:
            return text
    text = re.sub(r' ?\([^()]*\)', '', text)
    if len(text) > limit:
        text = text[:limit - 3].rsplit(' ', 1)[0].rstrip(',;:') + '...'
    return text


def markdown_reference(commands) -> str:
    """docs/flags.md: every command's flags, from their definitions. `commands` is
    [(name, module)], each module with `define_flags(fv)` and a docstring."""
    lines = ['# Flag reference', '',
             'Generated from the code (`python -m tf_style.cli.options > docs/flags.md`); a test '
             'checks that it is current. Flags that are options of the library have the same '
             'names as `tf_style.stylize(...)` keyword arguments (tf_style/config.py). Every '
             'command also takes `--quiet` (errors only), `--verbosity=N` / `-v N` (0: info '
             "logs, 1: TensorFlow's own start-up lines too) and `--helpfull`.", '']
    for name, module in commands:
        fv = flags.FlagValues()
        module.define_flags(fv)
        lines += [f'## tf-style {name}', '', module.__doc__.strip().splitlines()[0], '',
                  '| flag | default | help |', '| --- | --- | --- |']
        for flag_name in sorted(fv):
            flag = fv[flag_name]
            # Paths inside the checkout (the examples) as the checkout names them.
            default = (flag.default_as_str or '').strip("'").replace(CHECKOUT + os.sep, '')
            default = default or '(none)'
            help = flag.help.replace('|', '\\|').replace('\n', ' ')
            lines.append(f'| `--{flag_name}` | {default} | {help} |')
        lines.append('')
    return '\n'.join(lines)


if __name__ == '__main__':
    from . import COMMANDS, app, command_module
    app.show(markdown_reference([(name, command_module(name)) for name in COMMANDS]), end='')
