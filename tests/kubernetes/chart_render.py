"""The Helm chart rendered by Helm itself: helm-python-sdk (pinned in the test extra) is Helm v4's
Go SDK as a library, so `helm template` runs without a helm binary. Values are checked against the
chart's values.schema.json on every render, as `helm template` / `install` do.

    python -m tests.kubernetes.chart_render    # rewrite demos/kubernetes/manifests/ from the chart
"""

from __future__ import annotations

import re
from typing import Any

import helm_python
import yaml

from tests.helpers.kubernetes import CHART, DEMO, load_all

RELEASE = "ovserve"
# Labels only Helm can set truthfully; the plain manifests leave them out.
HELM_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")
MANIFESTS_VALUES = CHART / "ci" / "manifests-values.yaml"
_HEADER = (
    f'# Generated: demos/kubernetes/chart/ovserve rendered as release "{RELEASE}" with ci/manifests-values.yaml\n'
    "# (HPA via the prometheus-adapter, ReadWriteMany model volume), without Helm's own labels.\n"
    "# tests/kubernetes/test_chart.py keeps the two equal; regenerate with `python -m tests.kubernetes.chart_render`.\n"
    "---\n"
)


def render_files(values: dict[str, Any] | None = None, release: str = RELEASE) -> dict[str, str]:
    """Template file name (e.g. deployment.yaml) -> its rendered text; raises helm_python.HelmError."""
    with helm_python.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values or {}, name=release, namespace="default")
    return {name.rsplit("/", 1)[-1]: text for name, text in rendered.items() if name.endswith(".yaml")}


def render(values: dict[str, Any] | None = None, release: str = RELEASE) -> list[dict[str, Any]]:
    return [doc for _, text in sorted(render_files(values, release).items()) for doc in load_all(text)]


def render_error(values: dict[str, Any]) -> str:
    """The message Helm refuses these values with (the test fails if it renders them)."""
    try:
        render(values)
    except helm_python.HelmError as exc:
        return str(exc)
    raise AssertionError(f"the chart rendered {values}")


def manifests_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(MANIFESTS_VALUES.read_text(encoding="utf-8"))
    return values


def without_helm_labels(text: str) -> str:
    return re.sub(rf"^\s*({'|'.join(map(re.escape, HELM_LABELS))}): .*\n", "", text, flags=re.M)


def write_manifests() -> list[str]:
    """Rewrite demos/kubernetes/manifests/ (one file per template that renders something)."""
    written = []
    for name, text in sorted(render_files(manifests_values()).items()):
        body = without_helm_labels(text).strip()
        if not load_all(body):
            continue
        (DEMO / "manifests" / name).write_text(_HEADER + body + "\n", encoding="utf-8")
        written.append(name)
    return written


if __name__ == "__main__":
    print("\n".join(write_manifests()))
