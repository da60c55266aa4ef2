"""mmattn.analysis.interleave: round-robin order, medians, ratios to the baseline (fake
callables on a fake clock: no timing thresholds), and the machine description."""
import pytest

from mmattn.analysis import interleave as il


class FakeClock:
    """A clock that only the fake callables advance: each call costs what it says."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def work(self, costs):
        """A callable whose n-th call costs ``costs[n % len(costs)]`` seconds."""
        calls = []

        def fn():
            self.now += costs[len(calls) % len(costs)]
            calls.append(1)
        fn.calls = calls
        return fn


def test_round_robin_order_medians_and_ratios():
    clock = FakeClock()
    # B costs 3x A; C 2x A but with one outlier call (the median drops it)
    calls = {'A': clock.work([1.0]), 'B': clock.work([3.0]), 'C': clock.work([2.0, 2.0, 50.0])}
    order, released = [], []
    res = il.interleave(calls, rounds=3, baseline='A', warmup=1, clock=clock, wall=clock,
                        order=order, after=released.append)
    # timed calls only in the order list: A, B, C, A, B, C, ...
    assert order == ['A', 'B', 'C'] * 3
    # the warm-up round ran each once more, also in turn; after() follows every call
    assert [len(fn.calls) for fn in calls.values()] == [4, 4, 4]
    assert released == ['A', 'B', 'C'] * 4
    assert res['A'] == dict(cpu=1.0, wall=1.0, rounds=3, ratio=1.0)
    assert res['B']['ratio'] == pytest.approx(3.0)
    # C's calls: warm-up 2, then 2, 50, 2 -> median 2
    assert res['C']['cpu'] == pytest.approx(2.0) and res['C']['ratio'] == pytest.approx(2.0)
    assert list(res) == ['A', 'B', 'C']


def test_a_failing_case_is_dropped_the_others_go_on():
    clock = FakeClock()
    n = []

    def flaky():
        n.append(1)
        if len(n) == 4:  # the warm-up, two rounds, then it fails
            raise RuntimeError('out of memory')
        clock.now += 5.0
    order = []
    res = il.interleave({'base': clock.work([2.0]), 'flaky': flaky}, rounds=4, baseline='base',
                        clock=clock, wall=clock, order=order)
    assert order == ['base', 'flaky', 'base', 'flaky', 'base', 'base']
    assert res['flaky']['rounds'] == 2 and 'out of memory' in res['flaky']['error']
    assert res['flaky']['ratio'] == pytest.approx(2.5)
    # a case failing in its warm-up: no figure, the error kept
    res = il.interleave({'base': clock.work([1.0]), 'bad': lambda: 1 / 0}, rounds=2,
                        baseline='base', clock=clock, wall=clock)
    assert res['bad']['cpu'] is None and res['bad']['ratio'] is None
    assert 'ZeroDivisionError' in res['bad']['error'] and res['base']['rounds'] == 2


def test_max_seconds_stops_after_a_round():
    clock = FakeClock()
    times = il.run_rounds({'a': clock.work([1.0]), 'b': clock.work([1.0])}, rounds=10,
                          clock=clock, wall=clock, max_seconds=3.0, min_rounds=1)
    # rounds end at 2 s, 4 s: the second is past 3 s
    assert len(times['a']['cpu']) == 2 and len(times['b']['cpu']) == 2


def test_ratios_and_machine_description():
    assert il.ratios({'x': 2.0, 'y': 3.0, 'z': None}, 'x') == {'x': 1.0, 'y': 1.5, 'z': None}
    assert il.ratios({'x': 0.0, 'y': 1.0}, 'x') == {'x': None, 'y': None}
    assert il.cpu_model().strip()
    usable, total = il.core_count()
    assert 1 <= usable <= total
    line = il.machine_line()
    assert line.startswith(f'CPU: {il.cpu_model()}, {total} cores')
    assert 'load average' in line


def test_real_clock_runs():
    """The default clocks (process CPU time, perf_counter) on real work."""
    res = il.interleave({'small': lambda: sum(range(1000)), 'big': lambda: sum(range(100000))},
                        rounds=3, baseline='small')
    assert res['small']['ratio'] == 1.0 and res['big']['rounds'] == 3
    assert res['big']['wall'] > 0 and res['big']['cpu'] >= 0
