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


def cloud_samples(text: str, prefix: str, figures, cloud_id: str) -> dict[str, list[float]]:
    """figure → every value the exposition has for `<prefix><figure>{cloud_id=...}` (one,
    unless a Cloud ID were exported twice, which is what the tests look for)."""
    found: dict[str, list[float]] = {figure: [] for figure in figures}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            figure = sample.name.removeprefix(prefix)
            if figure in found and sample.labels == {"cloud_id": cloud_id}:
                found[figure].append(sample.value)
    return found


def first_sample(text: str, name: str) -> float | None:
    """The value of the first sample called `name`, whatever its labels; None if absent."""
    for family in text_string_to_metric_families(text):
        for one in family.samples:
            if one.name == name:
                return one.value
    return None
