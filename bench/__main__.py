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
    emit("sweep_ms_10k_open", await sweep.sweep_ms(engine), "ms", "< 50")
    counts = await seed.seed(engine, open_orders=90_000, tag="P")
    emit("sweep_ms_100k_open", await sweep.sweep_ms(engine), "ms", "< 50", open_orders=counts["open"])
    lag = await sweep.breach_lag(engine, db)
    emit("breach_lag_p50_s", lag["p50"], "s", "<= 2")
    emit("breach_lag_p99_s", lag["p99"], "s", "<= 2")
    emit("breach_lag_max_s", lag["max"], "s", "", samples=lag["n"])
    await engine.dispose()

    from bench.report import bench_report

    emit_obj = await bench_report(db)
    print(json.dumps(emit_obj, ensure_ascii=False), flush=True)

    try:
        from bench import board
    except ImportError:
        board = None  # type: ignore[assignment]
    if board is not None:
        for obj in await board.bench_board(db):
            print(json.dumps(obj, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("BAOXIU_TEST_CLOCK", "0")
    asyncio.run(main())
