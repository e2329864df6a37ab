"""Reading one series out of a Prometheus text exposition (what GET /metrics answers)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def sample_value(text: str, name: str, **labels: str) -> float:
    """The value of the sample `name` whose labels are exactly `labels`; 0.0 when the series
    does not exist yet (a counter that was never incremented)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0
