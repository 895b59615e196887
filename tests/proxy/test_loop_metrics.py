"""The loop-thread metrics export what `prometheus_client`'s own would, sample for sample."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from proxy.metrics import LoopCounter, LoopHistogram

BUCKETS = (0.001, 0.01, 0.1, 1.0)
Samples = set[tuple[str, tuple[tuple[str, str], ...], float]]


def samples(registry: CollectorRegistry) -> Samples:
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items())), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


observations = st.lists(
    st.tuples(
        st.sampled_from(["token", "forward"]),
        # Bounds themselves included: an observation equal to a bound is in that bucket.
        st.one_of(st.sampled_from(BUCKETS), st.floats(0.0, 5.0, allow_nan=False)),
    ),
    max_size=40,
)


@given(observations)
def test_a_loop_histogram_exports_the_samples_of_a_prometheus_histogram(
    seen: list[tuple[str, float]],
) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopHistogram("latency_seconds", "help", ("route",), ours, buckets=BUCKETS)
    reference = Histogram("latency_seconds", "help", ["route"], registry=theirs, buckets=BUCKETS)
    for route, value in seen:
        loop.observe((route,), value)
        reference.labels(route).observe(value)
    assert samples(ours) == samples(theirs)


@given(st.lists(st.tuples(st.sampled_from(["minted", "origin"]), st.sampled_from(["a", "b"]))))
def test_a_loop_counter_exports_the_samples_of_a_prometheus_counter(
    seen: list[tuple[str, str]],
) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopCounter("decisions", "help", ("outcome", "reason"), ours)
    reference = Counter("decisions", "help", ["outcome", "reason"], registry=theirs)
    for labels in seen:
        loop.inc(labels)
        reference.labels(*labels).inc()
    assert samples(ours) == samples(theirs)


def test_an_unlabelled_histogram_counts_a_value_above_every_bound_in_inf_only() -> None:
    registry = CollectorRegistry()
    LoopHistogram("mint_seconds", "help", (), registry, buckets=BUCKETS).observe((), 7.5)
    got = {(name, labels): value for name, labels, value in samples(registry)}
    assert got[("mint_seconds_bucket", (("le", "1.0"),))] == 0
    assert got[("mint_seconds_bucket", (("le", "+Inf"),))] == 1
    assert got[("mint_seconds_sum", ())] == 7.5
    assert got[("mint_seconds_count", ())] == 1
