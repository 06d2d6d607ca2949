"""How scripts/test spreads the tests over its two xdist workers: the tests that mostly wait
(a 6-minute database outage) run on one, beside everything else, which stays in collection
order on the other, as in a plain run. xdist's own ``--dist loadgroup`` cannot do this on
pytest 9: it renames node ids through an attribute pytest 9 no longer reads."""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

RUN_BESIDE = frozenset({"tests/e2e/test_self_healing.py"})
BESIDE, IN_ORDER = "beside", "in order"


class BesideTheRest(LoadScopeScheduling):
    def _split_scope(self, nodeid: str) -> str:
        return BESIDE if nodeid.split("::", 1)[0] in RUN_BESIDE else IN_ORDER
