"""Trim an upstream CRD to the openAPIV3Schema of one version, for tests/kubernetes/.

    python tests/data/crds/trim_crd.py CRD.yaml VERSION HEADER.txt > tests/data/crds/NAME.yaml

Keeps the schema exactly as upstream wrote it except the `description` annotations (prose, no
effect on validation), so the files stay small. HEADER.txt (source repository, tag, commit,
path, licence) is written first as YAML comments.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml


def strip_descriptions(node: Any, in_properties: bool = False) -> Any:
    if isinstance(node, dict):
        # Under `properties` the keys are field names (a field may be called "description").
        return {
            key: strip_descriptions(value, key == "properties" and not in_properties)
            for key, value in node.items()
            if in_properties or not (key == "description" and isinstance(value, str))
        }
    if isinstance(node, list):
        return [strip_descriptions(item) for item in node]
    return node


def main(argv: list[str]) -> int:
    crd_path, version, header_path = argv
    crd = yaml.safe_load(Path(crd_path).read_text(encoding="utf-8"))
    (entry,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    out = {
        "group": crd["spec"]["group"],
        "kind": crd["spec"]["names"]["kind"],
        "version": version,
        "openAPIV3Schema": strip_descriptions(entry["schema"]["openAPIV3Schema"]),
    }
    header = "".join(f"# {line}".rstrip() + "\n" for line in Path(header_path).read_text(encoding="utf-8").splitlines())
    sys.stdout.write(header + yaml.safe_dump(out, sort_keys=False, width=1000))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
