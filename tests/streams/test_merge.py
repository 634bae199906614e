"""The cross-region merge rule (streams/merge.py) against a naive reference: the winner of a key
is the smallest (stamp, origin, request id) among the records seen so far (within the dedup
window), whatever the interleaving of the regions' records and however skewed their clocks."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.merge import Identity, Kind, classify

WINDOW = 10_000
REGIONS = ("eu-west", "us-east", "ap-south")


@dataclass
class Step:
    kind: Kind
    winner: Identity


def fold(arrivals: list[Identity], window: int = WINDOW) -> list[Step]:
    """Run the stage's rule over an arrival order, as the dedup stage does per key."""
    current: Identity | None = None
    steps = []
    for rec in arrivals:
        kind = classify(current, rec, window)
        if kind.changes_entry:
            current = rec
        assert current is not None
        steps.append(Step(kind, current))
    return steps


@st.composite
def submissions(draw: st.DrawFn, epochs: int = 1) -> list[Identity]:
    """Records of one key from several regions with skewed clocks, client retries included
    (the same request id again, possibly in another region)."""
    skew = {r: draw(st.integers(-3000, 3000)) for r in REGIONS}
    out: list[Identity] = []
    for e in range(epochs):
        base = 1_000_000 + e * 5 * WINDOW
        n = draw(st.integers(1, 7))
        for i in range(n):
            region = draw(st.sampled_from(REGIONS))
            t = base + draw(st.integers(0, 2000)) + skew[region] + 3000
            rid = f"r{e}-{i}"
            out.append(Identity(t, draw(st.integers(0, 2)), region, rid))
            if draw(st.booleans()):  # a client retry of the same request, elsewhere, later
                other = draw(st.sampled_from(REGIONS))
                out.append(Identity(t + draw(st.integers(0, 500)), 0, other, rid))
    return sorted(set(out))


@st.composite
def interleaving(draw: st.DrawFn, records: list[Identity]) -> list[Identity]:
    """Each region reads its own records in stamp order and the others' through a mirror,
    so any interleaving of per-origin sequences is possible; redeliveries repeat records."""
    by_origin = {r: [x for x in records if x.origin == r] for r in REGIONS}
    order: list[Identity] = []
    while any(by_origin.values()):
        origin = draw(st.sampled_from([r for r, xs in by_origin.items() if xs]))
        order.append(by_origin[origin].pop(0))
        if draw(st.integers(0, 9)) == 0:
            order.append(draw(st.sampled_from(order)))  # at-least-once redelivery
    return order


@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_the_entry_always_holds_the_smallest_identity_seen(data: st.DataObject) -> None:
    records = data.draw(submissions())
    arrivals = data.draw(interleaving(records))
    for i, step in enumerate(fold(arrivals)):
        seen = arrivals[: i + 1]
        assert step.winner == min(seen)  # the naive reference


@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_every_record_is_answered_as_winner_or_duplicate_of_the_winner(
        data: st.DataObject) -> None:  # fmt: skip
    records = data.draw(submissions())
    arrivals = data.draw(interleaving(records))
    for i, (rec, step) in enumerate(zip(arrivals, fold(arrivals), strict=True)):
        best = min(arrivals[: i + 1])
        dedup_hit = best.request_id != rec.request_id
        assert (step.kind is Kind.DUPLICATE) == dedup_hit
        if i == 0:
            assert step.kind is Kind.FIRST
        elif rec < min(arrivals[:i]):
            assert step.kind is Kind.SUPERSEDE  # a late winner supersedes


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_regions_converge_whatever_the_interleaving(data: st.DataObject) -> None:
    records = data.draw(submissions())
    a = fold(data.draw(interleaving(records)))
    b = fold(data.draw(interleaving(records)))
    assert a[-1].winner == b[-1].winner == min(records)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_window_starts_a_new_first_write_in_event_time(data: st.DataObject) -> None:
    epochs = data.draw(st.integers(2, 4))
    records = data.draw(submissions(epochs=epochs))
    groups = sorted({(r.stamp_ms - 1_000_000) // (5 * WINDOW) for r in records})
    arrivals: list[Identity] = []
    for g in groups:  # epochs arrive in order; inside an epoch, any interleaving
        members = [r for r in records if (r.stamp_ms - 1_000_000) // (5 * WINDOW) == g]
        arrivals += data.draw(interleaving(members))
    steps = fold(arrivals)
    epoch_of = [(r.stamp_ms - 1_000_000) // (5 * WINDOW) for r in arrivals]
    for i, step in enumerate(steps):
        same_epoch = [r for r, e in zip(arrivals[: i + 1], epoch_of, strict=False)
                      if e == epoch_of[i]]  # fmt: skip
        assert step.winner == min(same_epoch)
        new_epoch = i > 0 and epoch_of[i] != epoch_of[i - 1]
        assert (step.kind is Kind.EXPIRED) == new_epoch


def test_a_retry_with_a_later_stamp_is_the_same_request() -> None:
    first = Identity(100, 0, "eu-west", "req-1")
    retry = Identity(150, 0, "us-east", "req-1")
    assert classify(first, retry, WINDOW) is Kind.REDELIVERY
    # ... and whichever of the two a region saw first, it ends with the earlier stamp.
    assert classify(retry, first, WINDOW) is Kind.SUPERSEDE


def test_ties_on_the_stamp_are_broken_by_origin_then_request_id() -> None:
    a = Identity(100, 0, "eu-west", "z")
    b = Identity(100, 0, "us-east", "a")
    assert classify(b, a, WINDOW) is Kind.SUPERSEDE
    assert classify(a, b, WINDOW) is Kind.DUPLICATE
    c = Identity(100, 0, "eu-west", "a")
    assert classify(a, c, WINDOW) is Kind.SUPERSEDE


def test_exactly_the_window_is_still_a_duplicate() -> None:
    w = Identity(100, 0, "eu-west", "a")
    assert classify(w, Identity(100 + WINDOW, 0, "eu-west", "b"), WINDOW) is Kind.DUPLICATE
    assert classify(w, Identity(101 + WINDOW, 0, "eu-west", "b"), WINDOW) is Kind.EXPIRED
