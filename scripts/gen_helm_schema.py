"""Regenerate the `frontier` part of helm/frontier/values.schema.json from FrontierConfig.

The chart's `frontier` values block is a FrontierConfig document, so its schema is the model's JSON schema
(definitions under `$defs` with a `frontier.` prefix). The rest of the file is maintained by hand.
Usage: python scripts/gen_helm_schema.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from frontier.config import FrontierConfig

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "helm" / "frontier" / "values.schema.json"
PREFIX = "frontier."


def frontier_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """FrontierConfig's schema and its definitions, with references into the values schema's `$defs`."""
    schema = FrontierConfig.model_json_schema(ref_template="#/$defs/" + PREFIX + "{model}")
    defs = {PREFIX + name: body for name, body in schema.pop("$defs", {}).items()}
    schema["description"] = "A FrontierConfig document (`frontier config schema`), the application's args.config."
    return schema, defs


def render(current: dict[str, Any]) -> str:
    """The values schema with the generated parts replaced."""
    schema, defs = frontier_schema()
    updated = dict(current)
    updated["properties"] = {**current["properties"], "frontier": schema}
    kept = {name: body for name, body in current.get("$defs", {}).items() if not name.startswith(PREFIX)}
    updated["$defs"] = {**kept, **dict(sorted(defs.items()))}
    return json.dumps(updated, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the checked-in schema is out of date")
    args = parser.parse_args(argv)
    text = SCHEMA_PATH.read_text()
    fresh = render(json.loads(text))
    if args.check:
        if fresh != text:
            print(f"{SCHEMA_PATH} is out of date: run python scripts/gen_helm_schema.py", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
