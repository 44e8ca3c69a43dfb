"""`python -m gruforecast` and the `gruforecast` command (pyproject's script)."""

import gc


def main() -> None:
    gc.disable()  # before the imports too: `cli.main` says why, and `cli._threads` turns it back on
    from .cli import main as run

    run()


if __name__ == "__main__":
    main()
