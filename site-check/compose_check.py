#!/usr/bin/env python3
"""Checks a compose file against the Compose specification's JSON schema, for machines
without Docker (where `docker compose config` is the check). The schema is the one shipped in
the docker-compose 1.29.2 package on PyPI, fetched once into target/compose-schema/."""
import io
import json
import os
import subprocess
import sys
import zipfile

import jsonschema
import yaml

CACHE = os.path.join(os.path.dirname(__file__), "..", "target", "compose-schema")
WHEEL = "docker_compose-1.29.2-py2.py3-none-any.whl"
MEMBER = "compose/config/compose_spec.json"


def schema():
    path = os.path.join(CACHE, "compose_spec.json")
    if not os.path.exists(path):
        os.makedirs(CACHE, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "docker-compose==1.29.2", "-d", CACHE],
            check=True,
        )
        with zipfile.ZipFile(os.path.join(CACHE, WHEEL)) as wheel:
            with open(path, "wb") as out:
                out.write(wheel.read(MEMBER))
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main(files):
    spec = schema()
    validator = jsonschema.Draft201909Validator(spec)
    failed = False
    for name in files:
        with open(name, encoding="utf-8") as f:
            document = yaml.safe_load(f)
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
        for error in errors:
            where = "/".join(str(p) for p in error.path) or "(top)"
            print(f"{name}: {where}: {error.message}", file=sys.stderr)
            failed = True
        # What `docker compose config` also checks: named volumes are declared, and
        # depends_on names services.
        services = document.get("services", {})
        volumes = set((document.get("volumes") or {}).keys())
        for service_name, service in services.items():
            for volume in service.get("volumes", []):
                source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
                if source and not source.startswith((".", "/", "~")) and source not in volumes:
                    print(f"{name}: services/{service_name}/volumes: `{source}` is not declared under volumes", file=sys.stderr)
                    failed = True
            for dependency in service.get("depends_on", {}):
                if dependency not in services:
                    print(f"{name}: services/{service_name}/depends_on: no service `{dependency}`", file=sys.stderr)
                    failed = True
        if not failed:
            print(f"{name}: valid against the Compose specification schema")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
