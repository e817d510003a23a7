"""`python -m tf_style <command> [flags]`: the same as `tf-style <command>`."""

from tf_style.cli import main

main()
