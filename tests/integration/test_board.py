"""The wall board: cheap polls, re-render on NOTIFY and on time, privacy, access, alerts."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text

from server import clock
from server.persistence import staff as staff_db
from server.security import new_token, token_hash

_seq = itertools.count(1)


async def _project_id(engine: Any, code: str) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT id FROM projects WHERE code = :c"), {"c": code})).scalar_one()


async def make_order(
    engine: Any,
    *,
    project: str = "DEMO",
    status: str = "pooled",
    minutes: int = 30,
    started_ago: float = 0,
    summary: str = "厨房水管漏水",
    name: str = "张三丰",
    phone: str = "13812341234",
    kind: str = "repair",
    clock_kind: str = "dispatch",
    category: str = "plumbing",
    urgency: str = "normal",
    location: str = "3栋 地下车库",
    assignee: str | None = None,
    paused: bool = False,
) -> dict[str, Any]:
    """Insert an open order with one clock (started `started_ago` minutes ago) as the orders module leaves it."""
    pid = await _project_id(engine, project)
    now = clock.now()
    number = f"BX-{now:%Y%m%d}-9{next(_seq):03d}"  # the 9xxx range: clear of the real counters
    started = now - timedelta(minutes=started_ago)
    due = started + timedelta(minutes=minutes)
    async with engine.begin() as conn:
        staff_id = None
        if assignee:
            staff_id = (
                await conn.execute(text("SELECT id FROM staff WHERE username = :u"), {"u": assignee})
            ).scalar_one()
        oid = (
            await conn.execute(
                text(
                    "INSERT INTO orders (number, project_id, kind, category, urgency, status, area, location, reporter_name, "
                    "reporter_phone, summary, channel, received_at, verification_code, assignee_id) VALUES (:n, :p, :k, :cat, "
                    ":urg, :s, 'public', :loc, :rn, :rp, :sum, 'phone', :now, '123456', :a) RETURNING id"
                ),
                {
                    "n": number,
                    "p": pid,
                    "k": kind,
                    "cat": category,
                    "urg": urgency,
                    "s": status,
                    "loc": location,
                    "rn": name,
                    "rp": phone,
                    "sum": summary,
                    "now": started,
                    "a": staff_id,
                },
            )
        ).scalar_one()
        await conn.execute(
            text(
                "INSERT INTO order_clocks (order_id, kind, started_at, deadline, minutes, state, paused_at) "
                "VALUES (:o, :k, :started, :due, :m, :state, :paused_at)"
            ),
            {
                "o": oid,
                "k": clock_kind,
                "started": started,
                "due": due,
                "m": minutes,
                "state": "paused" if paused else "running",
                "paused_at": now if paused else None,
            },
        )
        await conn.execute(
            text("UPDATE orders SET next_deadline = :due, next_clock = :k WHERE id = :o"),
            {"o": oid, "k": None if paused else clock_kind, "due": None if paused else due},
        )
    return {"id": oid, "number": number, "project_id": pid}


async def close_orders(engine: Any, *orders: dict[str, Any]) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE alerts SET state = 'resolved' WHERE order_id = ANY(:ids)"),
            {"ids": [o["id"] for o in orders]},
        )
        await conn.execute(
            text("UPDATE order_clocks SET state = 'cancelled' WHERE order_id = ANY(:ids)"),
            {"ids": [o["id"] for o in orders]},
        )
        await conn.execute(
            text("UPDATE orders SET status = 'cancelled', next_deadline = NULL WHERE id = ANY(:ids)"),
            {"ids": [o["id"] for o in orders]},
        )


@pytest.fixture
async def kiosk(engine: Any) -> AsyncIterator[dict[str, Any]]:
    """A kiosk token for the DEMO project only."""
    token = new_token("kiosk")
    pid = await _project_id(engine, "DEMO")
    async with engine.begin() as conn:
        kid = await staff_db.create_kiosk_token(conn, token_hash(token), [pid], "test board")
    yield {"token": token, "id": kid}


@pytest.fixture
async def orders(engine: Any) -> AsyncIterator[list[dict[str, Any]]]:
    made: list[dict[str, Any]] = []
    yield made
    if made:
        await close_orders(engine, *made)


async def wait_for(predicate: Any) -> None:
    async with asyncio.timeout(3):
        while not predicate():  # noqa: ASYNC110 (the condition is set by a NOTIFY callback)
            await asyncio.sleep(0.02)


def board_state(app: Any) -> Any:
    return app.state.runtime.board


async def fragment(client: Any, kiosk_token: str | None = None, v: str | None = None, **headers: str) -> Any:
    params = {"project": "DEMO", **({"kiosk": kiosk_token} if kiosk_token else {}), **({"v": v} if v else {})}
    return await client.get("/board/fragment", params=params, headers={"HX-Request": "true", **headers})


def card(html: str, number: str) -> str:
    m = re.search(r'<li class="bcard[^"]*"[^>]*data-number="' + re.escape(number) + r'".*?</li>', html, re.S)
    assert m, f"no card {number}"
    return m.group(0)


async def test_the_kiosk_opens_the_board_page(client, kiosk):
    r = await client.get("/board", params={"kiosk": kiosk["token"]})
    assert r.status_code == 200
    assert 'id="board-live"' in r.text and "阳光花园" in r.text
    assert f"kiosk={kiosk['token']}" in r.text  # polls carry the token


async def test_an_unchanged_board_answers_204_without_rendering_or_database(app, client, kiosk):
    r = await fragment(client, kiosk["token"])
    assert r.status_code == 200
    seen = r.headers["x-board-version"]
    assert f'data-version="{seen}"' in r.text
    state = board_state(app)
    renders = state.renders
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    sync_engine = app.state.runtime.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", count)
    try:
        r = await fragment(client, kiosk["token"], v=seen)
    finally:
        event.remove(sync_engine, "before_cursor_execute", count)
    assert r.status_code == 204 and r.content == b""
    assert state.renders == renders
    assert statements == []


async def test_a_new_order_re_renders_the_board_once_for_every_poller(
    app, client, new_client, kiosk, engine, orders
):
    seen = (await fragment(client, kiosk["token"])).headers["x-board-version"]
    state = board_state(app)
    orders.append(await make_order(engine))
    await wait_for(lambda: state.current(orders[0]["project_id"]) != seen)  # NOTIFY 'board' arrived
    renders = state.renders
    r = await fragment(client, kiosk["token"], v=seen)
    assert r.status_code == 200 and orders[0]["number"] in r.text
    async with new_client() as other:
        r2 = await fragment(other, kiosk["token"], v=seen)
    assert r2.content == r.content
    assert state.renders == renders + 1


async def test_the_kiosk_board_masks_the_customer(client, kiosk, engine, orders):
    orders.append(await make_order(engine, name="张三丰", phone="13812341234"))
    r = await client.get("/board", params={"kiosk": kiosk["token"]})
    c = card(r.text, orders[0]["number"])
    assert "张** · 138****1234" in c
    assert "张三丰" not in r.text and "13812341234" not in r.text


async def test_customer_text_is_escaped_on_cards(client, kiosk, engine, orders):
    orders.append(await make_order(engine, summary='<script>alert("x")</script>', name="<b>王"))
    r = await client.get("/board", params={"kiosk": kiosk["token"]})
    c = card(r.text, orders[0]["number"])
    assert "<script>alert" not in r.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in c
    assert "&lt;**" in c


async def test_a_kiosk_cannot_see_another_projects_board(client, kiosk):
    r = await client.get("/board", params={"kiosk": kiosk["token"], "project": "OTHER"})
    assert r.status_code == 404
    r = await client.get(
        "/board/fragment",
        params={"kiosk": kiosk["token"], "project": "OTHER"},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 404


async def test_an_outsider_staff_member_cannot_see_the_demo_board(client, login):
    await login("other_zhuguan")
    assert (await client.get("/board", params={"project": "DEMO"})).status_code == 404
    r = await client.get("/board")  # default: their own first project
    assert r.status_code == 200 and "别的小区" in r.text


async def test_a_revoked_kiosk_is_refused(app, client, kiosk, engine):
    assert (await fragment(client, kiosk["token"])).status_code == 200
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE kiosk_tokens SET revoked_at = now() WHERE id = :k"), {"k": kiosk["id"]}
        )
        await conn.execute(text("SELECT pg_notify('auth', :p)"), {"p": f"kiosk:{kiosk['id']}"})
    sessions = app.state.runtime.sessions
    await wait_for(lambda: not sessions.kiosk_cache)
    r = await fragment(client, kiosk["token"])
    assert r.status_code == 401 and r.headers["hx-redirect"].startswith("/login")
    r = await client.get("/board", params={"kiosk": kiosk["token"]})
    assert r.status_code == 303


async def test_an_expired_session_on_a_polling_fragment_is_sent_to_login(app, client, login, redis):
    await login("zhuguan")
    assert (await fragment(client)).status_code == 200
    sid = client.cookies.get("bx_session")
    await redis.delete(f"sess:{sid}")  # what the idle timeout does
    app.state.runtime.sessions.cache.pop(sid, None)
    r = await fragment(client, **{"HX-Current-URL": "http://127.0.0.1:8000/board?project=DEMO"})
    assert r.status_code == 401
    assert r.headers["hx-redirect"] == "/login?expired=1&next=/board%3Fproject%3DDEMO"


async def test_the_colour_follows_the_clock_as_time_passes(app, client, kiosk, engine, orders):
    orders.append(await make_order(engine, minutes=10))
    number = orders[0]["number"]
    state = board_state(app)
    bands = []
    try:
        for offset in (0, 6 * 60, 9 * 60, 11 * 60):
            r = await client.post("/_test/clock", json={"offset_seconds": offset})
            assert r.status_code == 200
            html = (await fragment(client, kiosk["token"])).text
            bands.append(re.search(r'data-band="(\w+)"', card(html, number)).group(1))
        assert bands == ["green", "amber", "red", "breached"]
        assert "Overdue" in card(html, number) or "超时" in card(html, number)
    finally:
        await client.post("/_test/clock", json={"offset_seconds": 0})
    assert state.trusted


async def test_time_alone_bumps_the_version_when_a_band_turns(app, client, kiosk, engine, orders):
    orders.append(await make_order(engine, minutes=10))
    state = board_state(app)
    r = await fragment(client, kiosk["token"])
    seen = r.headers["x-board-version"]
    assert (await fragment(client, kiosk["token"], v=seen)).status_code == 204
    # Move only this process's clock (no NOTIFY 'clock'): the recorded next change must do the bump.
    clock.set_offset(6 * 60)
    try:
        r = await fragment(client, kiosk["token"], v=seen)
        assert r.status_code == 200
        assert 'data-band="amber"' in card(r.text, orders[0]["number"])
    finally:
        clock.set_offset(0)
        state.bump_all()


def frozen_chain(names: list[tuple[str, str]]) -> dict[str, Any]:
    """alerts.chain as registration freezes it: steps of (target, person's name), one minute apart."""
    return {
        "steps": [
            {"target": target, "wait_after_minutes": 1, "recipients": [{"id": 0, "name": name}]}
            for target, name in names
        ]
    }


async def alert_for(engine: Any, order: dict[str, Any], chain: dict[str, Any]) -> int:
    async with engine.begin() as conn:
        return (
            await conn.execute(
                text(
                    "INSERT INTO alerts (project_id, order_id, kind, state, title, chain, step_token, next_step_index, started_at) "
                    "VALUES (:p, :o, 'entrapment', 'triggered', '3号楼2号梯困人', CAST(:c AS jsonb), 'tok', 1, :now) RETURNING id"
                ),
                {"p": order["project_id"], "o": order["id"], "c": json.dumps(chain), "now": clock.now()},
            )
        ).scalar_one()


async def test_a_supervisor_acknowledges_an_alert_from_the_board(
    app, client, login, engine, orders, kiosk, new_client
):
    orders.append(await make_order(engine, kind="entrapment", clock_kind="ack", minutes=1))
    chain = frozen_chain([("oncall_primary", "张师傅"), ("supervisor", "王主管")])
    alert_id = await alert_for(engine, orders[0], chain)
    async with new_client() as kc:
        r = await kc.get("/board", params={"kiosk": kiosk["token"]})
    assert f'data-alert-id="{alert_id}"' in r.text and "张师傅" in r.text
    assert f"/alerts/{alert_id}/acknowledge" not in r.text  # a kiosk only watches
    token = await login("zhuguan")
    r = await client.get("/board")
    assert f'hx-post="/alerts/{alert_id}/acknowledge"' in r.text
    for _ in range(2):  # a second click changes nothing
        r = await client.post(
            f"/alerts/{alert_id}/acknowledge", headers={"X-CSRF-Token": token, "HX-Request": "true"}
        )
        assert r.status_code == 204 and r.headers["hx-trigger"] == "board-refresh"
    async with engine.connect() as conn:
        state, by = (
            await conn.execute(
                text("SELECT state, acknowledged_by FROM alerts WHERE id = :a"), {"a": alert_id}
            )
        ).one()
        events = (
            await conn.execute(
                text("SELECT count(*) FROM alert_events WHERE alert_id = :a AND action = 'acknowledged'"),
                {"a": alert_id},
            )
        ).scalar_one()
    assert state == "acknowledged" and by is not None and events == 1
    r = await client.get("/board")
    assert f'data-alert-id="{alert_id}"' not in r.text


async def test_finance_cannot_acknowledge_an_alert(client, login, engine, orders):
    orders.append(await make_order(engine, kind="entrapment", clock_kind="ack", minutes=1))
    alert_id = await alert_for(engine, orders[0], frozen_chain([]))
    token = await login("caiwu")
    r = await client.post(
        f"/alerts/{alert_id}/acknowledge", headers={"X-CSRF-Token": token, "HX-Request": "true"}
    )
    assert r.status_code == 403


async def test_an_outsider_supervisor_cannot_acknowledge_a_demo_alert(client, login, engine, orders):
    orders.append(await make_order(engine, kind="entrapment", clock_kind="ack", minutes=1))
    alert_id = await alert_for(engine, orders[0], frozen_chain([]))
    token = await login("other_zhuguan")
    r = await client.post(
        f"/alerts/{alert_id}/acknowledge", headers={"X-CSRF-Token": token, "HX-Request": "true"}
    )
    assert r.status_code == 404


async def test_the_csrf_token_is_needed_to_acknowledge(client, login):
    await login("zhuguan")
    r = await client.post("/alerts/1/acknowledge", headers={"HX-Request": "true"})
    assert r.status_code == 403


# ---- the view model, without the database -------------------------------------------------


def _data(cards: list[dict[str, Any]], shifts: list[dict[str, Any]] | None = None) -> Any:
    from server.persistence.board import BoardData

    return BoardData(
        project_id=1,
        code="DEMO",
        name="阳光花园",
        tz="Asia/Shanghai",
        business_hours=None,
        cards=cards,
        alerts=[],
        shifts=shifts or [],
    )


def _row(n: int, status: str, started: Any, minutes: int, **extra: Any) -> dict[str, Any]:
    due = started + timedelta(minutes=minutes)
    return {
        "id": n,
        "number": f"BX-{n}",
        "kind": "repair",
        "category": "plumbing",
        "urgency": "normal",
        "status": status,
        "location": "1栋",
        "summary": "s",
        "reporter_name": "张三",
        "reporter_phone": "13812341234",
        "next_deadline": due.isoformat(),
        "clock_kind": "arrival",
        "started_at": started.isoformat(),
        "deadline": due.isoformat(),
        "minutes": minutes,
        "clock_business_hours": False,
        "clock_state": "running",
        "paused_at": None,
        "paused_seconds": 0,
        **extra,
    }


def test_cards_fall_into_their_stage_and_the_next_change_is_the_earliest_band_turn():
    from datetime import UTC, datetime

    from server.board import view

    now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    board = view.build(
        _data(
            [
                _row(1, "pooled", now, 60),
                _row(2, "on_site", now - timedelta(minutes=70), 60),
                _row(3, "callback", now, 10),
            ]
        ),
        now,
    )
    assert [(c.key, [x.number for x in c.cards]) for c in board.columns] == [
        ("dispatch", ["BX-1"]),
        ("assigned", []),
        ("on_site", ["BX-2"]),
        ("paused", []),
        ("callback", ["BX-3"]),
    ]
    assert board.breached_count == 1 and board.due_soon_count == 1 and board.open_count == 3
    # BX-3 (10 min) turns amber first, just after 5 minutes
    assert now + timedelta(minutes=5) <= board.next_change <= now + timedelta(minutes=5, milliseconds=1)


def test_the_on_call_engineer_is_the_shift_covering_the_time_of_day():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from server.board.view import on_call

    shifts = [
        {
            "kind": "day",
            "starts": "09:00:00",
            "ends": "17:30:00",
            "primary_name": "张师傅",
            "backup_name": None,
        },
        {
            "kind": "night",
            "starts": "17:30:00",
            "ends": "09:00:00",
            "primary_name": "刘师傅",
            "backup_name": "张师傅",
        },
    ]
    tz = ZoneInfo("Asia/Shanghai")
    assert on_call(shifts, datetime(2026, 11, 24, 10, 0, tzinfo=tz))[:2] == ("张师傅", None)
    name, backup, change = on_call(shifts, datetime(2026, 11, 24, 3, 0, tzinfo=tz))
    assert (name, backup, change) == ("刘师傅", "张师傅", datetime(2026, 11, 24, 9, 0, tzinfo=tz))
    assert on_call([], datetime(2026, 11, 24, 3, 0, tzinfo=tz))[:2] == (None, None)


def test_paged_names_read_the_frozen_chain_in_its_usual_shapes():
    from server.board.view import paged_names

    chain = [{"name": "张师傅"}, {"recipients": [{"display_name": "刘师傅"}, "王主管"]}, {"name": "周经理"}]
    assert paged_names(chain, 2) == (["张师傅", "刘师傅", "王主管"], 3)
    assert paged_names({"steps": chain}, 1) == (["张师傅"], 3)
    assert paged_names(None, 1) == ([], 0)


def test_a_business_hours_countdown_is_rendered_by_the_minute():
    from datetime import UTC, datetime

    from server.board import view
    from server.persistence.board import BoardData

    now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai
    row = _row(1, "on_site", now, 600, clock_business_hours=True, clock_kind="completion")
    data = BoardData(
        project_id=1,
        code="DEMO",
        name="x",
        tz="Asia/Shanghai",
        business_hours="09:00-17:30",
        cards=[row],
        alerts=[],
        shifts=[],
    )
    board = view.build(data, now)
    c = board.columns[2].cards[0]
    assert c.deadline_ms is None and c.countdown == "7.5 h"  # 10:00 → 17:30 of business time before 20:00
    assert board.next_change <= now + timedelta(minutes=1)
