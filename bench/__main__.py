"""`make bench`: prints one JSON object per line per figure.

{"metric": NAME, "value": NUMBER, "unit": "...", "target": "..."}

Runs against its own database (baoxiu_bench, embedded unless DATABASE_URL is given) and
stays under ten minutes on the 2-core machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any


def emit(metric: str, value: float, unit: str, target: str, **extra: Any) -> None:
    print(
        json.dumps(
            {"metric": metric, "value": round(value, 3), "unit": unit, "target": target, **extra},
            ensure_ascii=False,
        ),
        flush=True,
    )


async def main() -> None:
    import server.features  # noqa: F401  (the breach hooks, as in the worker: a sweep opens alerts too)
    from server.config import get_settings
    from server.persistence.db import make_engine
    from server.persistence.migrate import upgrade

    db = get_settings().database_url
    await asyncio.to_thread(upgrade, db)
    engine = make_engine(db)
    from bench import seed, sweep

    t0 = time.perf_counter()
    counts = await seed.seed(engine)
    print(
        json.dumps({"note": "seeded", **counts, "seconds": round(time.perf_counter() - t0, 1)}),
        file=sys.stderr,
    )
    n_open = await sweep.park_extra(engine)  # a second run: measure at 10,000 open again
    ms = await sweep.sweep_ms(engine)
    emit(
        "sweep_ms_10k_open",
        ms["sweep"],
        "ms",
        "< 50",
        claim_ms=round(ms["claim"], 2),
        due_per_sweep=5,
        open_orders=n_open,
    )

    # The board (its bench owns the figures) runs on the 10k-open data set it was sized for.
    try:
        from bench import board
    except ImportError:
        board = None  # type: ignore[assignment]
    if board is not None:
        for obj in await board.bench_board(db):
            print(json.dumps(obj, ensure_ascii=False), flush=True)

    await seed.seed(engine, open_orders=90_000, tag="P")
    await sweep.park_extra(engine, back=True)
    counts = await seed.seed(engine, open_orders=90_000, tag="P")  # the counts, now all open
    ms = await sweep.sweep_ms(engine)
    emit(
        "sweep_ms_100k_open",
        ms["sweep"],
        "ms",
        "< 50",
        claim_ms=round(ms["claim"], 2),
        due_per_sweep=5,
        open_orders=counts["open"],
    )
    lag = await sweep.breach_lag(engine, scheduled=True)
    extra = {"samples": lag["n"], "orders": lag["expected"], "recorded_by": lag["recorded_by"]}
    emit("breach_lag_p50_s", lag["p50"], "s", "<= 2", path="scheduled job", **extra)
    emit("breach_lag_p99_s", lag["p99"], "s", "<= 2", path="scheduled job", **extra)
    emit("breach_lag_max_s", lag["max"], "s", "<= 2", path="scheduled job", **extra)
    lost = await sweep.breach_lag(engine, scheduled=False, orders=60, spread_s=15.0)
    extra = {"samples": lost["n"], "orders": lost["expected"], "recorded_by": lost["recorded_by"]}
    emit("breach_lag_redis_lost_p50_s", lost["p50"], "s", "<= 20", path="15 s sweep", **extra)
    emit("breach_lag_redis_lost_max_s", lost["max"], "s", "<= 20", path="15 s sweep", **extra)
    await engine.dispose()

    from bench.report import bench_report

    emit_obj = await bench_report(db)
    print(json.dumps(emit_obj, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("BAOXIU_TEST_CLOCK", "0")
    asyncio.run(main())
