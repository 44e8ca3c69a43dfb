"""docs/errors.md lists every message that gruforecast raises for the user."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER_ERRORS = {"InputError": 2, "ArtifactError": 2, "ConfigError": 2, "LockedError": 75, "NoSpaceError": 1,
               "JobTimeout": 1}


def raised_messages() -> list[tuple[str, int, str]]:
    """(module, exit code, message with {…} for the variable parts) of every raise site."""
    found = []
    for path in sorted((ROOT / "gruforecast").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            name = getattr(node.exc.func, "id", "")
            if name not in USER_ERRORS or not node.exc.args:
                continue
            arg = node.exc.args[0]
            if isinstance(arg, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "{…}" for v in arg.values)
            elif isinstance(arg, ast.Constant):
                text = arg.value
            else:
                continue  # built by a helper whose own message is listed
            found.append((path.stem, USER_ERRORS[name], text))
    return found


def test_every_error_message_is_documented():
    doc = (ROOT / "docs" / "errors.md").read_text()
    missing = [m for _, _, m in raised_messages() if m.replace("|", "\\|") not in doc]
    assert not missing, "add these to docs/errors.md (python tests/test_docs.py prints the table):\n" + "\n".join(missing)


if __name__ == "__main__":
    for module, code, text in sorted(set(raised_messages())):
        print(f"| {module} | {code} | {text.replace('|', chr(92) + '|')} |")
