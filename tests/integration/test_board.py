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
            text(
                "UPDATE orders SET status = 'cancelled', cancelled_at = now(), next_deadline = NULL WHERE id = ANY(:ids)"
            ),
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
    renders, loads = state.renders, state.loads
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
    assert (state.renders, state.loads) == (renders, loads)
    assert statements == []


async def test_polls_are_answered_before_routing_only_for_callers_the_board_admits(
    app, client, kiosk, engine
):
    """A poll that saw the version (204) or not (the assembled bytes, gzipped) is answered by the
    fast path; a stranger's poll carrying the right version still meets the guard and the project check."""
    first = await fragment(client, kiosk["token"])
    seen = first.headers["x-board-version"]
    state = board_state(app)
    fast = state.fast
    r = await fragment(client, kiosk["token"], v=seen)
    assert r.status_code == 204 and r.headers["x-board-version"] == seen and state.fast == fast + 1
    r = await fragment(client, kiosk["token"], v="an-older-one", **{"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip" and state.fast == fast + 2
    assert r.text == first.text  # the same bytes, decompressed by the client
    other = new_token("kiosk")
    async with engine.begin() as conn:
        pid = await _project_id(engine, "OTHER")
        await staff_db.create_kiosk_token(conn, token_hash(other), [pid], "other board")
    assert (await fragment(client, other, v=seen)).status_code == 404  # DEMO is not its project
    assert (await fragment(client, None, v=seen)).status_code == 401
    assert state.fast == fast + 2


async def wait_distrusted(state: Any, project_id: int) -> None:
    """Until the NOTIFY 'board' of a change has reached the process (its snapshot is no longer trusted)."""
    await wait_for(lambda: state.current(project_id) is None)


async def test_a_new_order_re_renders_the_board_once_for_every_poller(
    app, client, new_client, kiosk, engine, orders
):
    seen = (await fragment(client, kiosk["token"])).headers["x-board-version"]
    state = board_state(app)
    orders.append(await make_order(engine))
    await wait_distrusted(state, orders[0]["project_id"])
    renders, loads = state.renders, state.loads
    r = await fragment(client, kiosk["token"], v=seen)
    assert r.status_code == 200 and orders[0]["number"] in r.text
    assert r.headers["x-board-version"] != seen
    async with new_client() as other:
        r2 = await fragment(other, kiosk["token"], v=seen)
    assert r2.content == r.content
    assert (state.renders, state.loads) == (renders + 1, loads + 1)


async def test_a_change_renders_only_the_card_that_changed(app, client, kiosk, engine, orders):
    for n in range(3):
        orders.append(await make_order(engine, summary=f"灯不亮 {n}"))
    state = board_state(app)
    await wait_distrusted(state, orders[0]["project_id"])
    seen = (await fragment(client, kiosk["token"])).headers["x-board-version"]
    cards = state.cards.rendered
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE orders SET summary = '灯不亮，开关冒火花' WHERE id = :o"), {"o": orders[1]["id"]}
        )
    await wait_distrusted(state, orders[0]["project_id"])
    r = await fragment(client, kiosk["token"], v=seen)
    assert r.status_code == 200 and "灯不亮，开关冒火花" in card(r.text, orders[1]["number"])
    assert state.cards.rendered == cards + 1  # the two others (and the demo's cards) came from the cache


async def test_a_notify_that_changes_nothing_shown_still_answers_204(app, client, kiosk, engine, orders):
    orders.append(await make_order(engine))
    state = board_state(app)
    await wait_distrusted(state, orders[0]["project_id"])
    seen = (await fragment(client, kiosk["token"])).headers["x-board-version"]
    async with engine.begin() as conn:  # the trigger fires, but nothing the board shows moved
        await conn.execute(text("UPDATE orders SET updated_at = now() WHERE id = :o"), {"o": orders[0]["id"]})
    await wait_distrusted(state, orders[0]["project_id"])
    loads, renders = state.loads, state.renders
    r = await fragment(client, kiosk["token"], v=seen)
    assert r.status_code == 204
    assert (state.loads, state.renders) == (loads + 1, renders)  # read once to know, nothing rendered


async def test_the_fragment_is_gzipped_once_for_every_poller(app, client, new_client, kiosk, engine, orders):
    orders.append(await make_order(engine))
    state = board_state(app)
    await wait_distrusted(state, orders[0]["project_id"])
    r = await fragment(client, kiosk["token"], **{"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and orders[0]["number"] in r.text
    snap = state.current(orders[0]["project_id"])
    assert snap is not None and len(snap.gzipped) == 1
    async with new_client() as other:
        r2 = await fragment(other, kiosk["token"], **{"Accept-Encoding": "gzip"})
    assert r2.content == r.content and len(snap.gzipped) == 1
    plain = await fragment(client, kiosk["token"], **{"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.text == r.text


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


async def test_time_alone_changes_the_version_when_a_band_turns_without_the_database(
    app, client, kiosk, engine, orders
):
    orders.append(await make_order(engine, minutes=2))
    state = board_state(app)
    await wait_distrusted(state, orders[0]["project_id"])
    r = await fragment(client, kiosk["token"])
    seen = r.headers["x-board-version"]
    assert (await fragment(client, kiosk["token"], v=seen)).status_code == 204
    loads = state.loads
    # Move only this process's clock (no NOTIFY 'clock'): the recorded next change must do it.
    clock.set_offset(70)
    try:
        r = await fragment(client, kiosk["token"], v=seen)
        assert r.status_code == 200
        assert 'data-band="amber"' in card(r.text, orders[0]["number"])
        assert state.loads == loads  # rebuilt from the rows already read
    finally:
        clock.set_offset(0)
        state.invalidate_all()


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


# ---- several web processes agree on the version ------------------------------------------------


@pytest.fixture
async def other_process(settings: Any) -> AsyncIterator[Any]:
    """A second web process' worth of state: its own app, board state and LISTEN connection."""
    from server.app import create_app

    other = create_app(settings)
    for hook in other.on_startup:
        await hook(other)
    yield other
    for hook in other.on_shutdown:
        await hook(other)


async def test_a_poll_landing_on_another_web_process_is_answered_204(
    app, client, kiosk, engine, orders, other_process
):
    from tests.conftest import make_client

    orders.append(await make_order(engine, minutes=2))
    await wait_distrusted(board_state(app), orders[0]["project_id"])
    seen = (await fragment(client, kiosk["token"])).headers["x-board-version"]
    async with make_client(other_process) as elsewhere:
        r = await fragment(elsewhere, kiosk["token"], v=seen)
        assert r.status_code == 204  # read once there, same rows, same version
        # Time alone turns the band (70 s into a 2-minute clock): both processes move alike.
        clock.set_offset(70)
        try:
            here = await fragment(client, kiosk["token"], v=seen)
            assert here.status_code == 200 and 'data-band="amber"' in card(here.text, orders[0]["number"])
            there = await fragment(elsewhere, kiosk["token"], v=here.headers["x-board-version"])
            assert there.status_code == 204
        finally:
            clock.set_offset(0)
            board_state(app).invalidate_all()


async def test_while_listen_is_down_every_poll_reads_the_database(app, engine):
    """Nothing is trusted without the NOTIFY connection, yet an unchanged board is still recognised."""
    from server.board.state import BoardState
    from server.persistence import board as board_db

    info = next(p for p in await _projects(engine) if p.code == "DEMO")

    async def load(project_id: int, now: Any) -> Any:
        async with engine.connect() as conn:
            return await board_db.load(conn, info, now)

    state = BoardState(load)  # never attached to a listener: not trusted
    first = await state.snapshot(info.id)
    second = await state.snapshot(info.id)
    assert state.loads == 2 and first.tag == second.tag
    assert not state.unchanged(info.id, first.tag)  # a poll must not be answered from memory


async def _projects(engine: Any) -> Any:
    from server.persistence import board as board_db

    async with engine.connect() as conn:
        return await board_db.projects(conn)


# ---- everything the board shows notifies it ------------------------------------------------


async def changed_board(client: Any, kiosk_token: str, seen: str) -> str:
    """The next fragment that is not 204 for a poller that saw `seen` (within 3 s)."""
    async with asyncio.timeout(3):
        while True:
            r = await fragment(client, kiosk_token, v=seen)
            if r.status_code == 200:
                return r.text
            await asyncio.sleep(0.05)


async def test_renaming_an_engineer_moves_the_board(client, kiosk, engine, orders):
    orders.append(await make_order(engine, status="assigned", clock_kind="arrival", assignee="shifu3"))
    await asyncio.sleep(0.2)
    seen = (await fragment(client, kiosk["token"])).headers["x-board-version"]
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE staff SET display_name = '陈大师傅' WHERE username = 'shifu3'"))
    try:
        assert "陈大师傅" in card(await changed_board(client, kiosk["token"], seen), orders[0]["number"])
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE staff SET display_name = '陈师傅' WHERE username = 'shifu3'"))


async def test_editing_the_rota_moves_the_board(client, kiosk, engine):
    seen = (await fragment(client, kiosk["token"])).headers["x-board-version"]
    pid = await _project_id(engine, "DEMO")
    async with engine.begin() as conn:
        saved = (
            (await conn.execute(text("SELECT * FROM oncall_shifts WHERE project_id = :p"), {"p": pid}))
            .mappings()
            .all()
        )
        await conn.execute(text("DELETE FROM oncall_shifts WHERE project_id = :p"), {"p": pid})
    try:
        html = await changed_board(client, kiosk["token"], seen)
        assert 'class="rota-gap-now"' in html  # nobody is on call any more
    finally:
        async with engine.begin() as conn:
            for row in saved:
                await conn.execute(
                    text(
                        "INSERT INTO oncall_shifts (id, project_id, kind, starts, ends, primary_id, backup_id, "
                        "supervisor_id, manager_id) VALUES (:id, :project_id, :kind, :starts, :ends, :primary_id, "
                        ":backup_id, :supervisor_id, :manager_id)"
                    ),
                    dict(row),
                )


async def test_changing_the_projects_settings_moves_the_board(client, kiosk, engine):
    seen = (await fragment(client, kiosk["token"])).headers["x-board-version"]
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE projects SET name = '阳光花园（东区）' WHERE code = 'DEMO'"))
    try:
        assert "阳光花园（东区）" in await changed_board(client, kiosk["token"], seen)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE projects SET name = '阳光花园' WHERE code = 'DEMO'"))


async def test_renaming_a_department_moves_every_board(client, kiosk, engine, orders):
    orders.append(await make_order(engine, kind="matter", category="cleaning", clock_kind="arrival"))
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE orders SET department_code = 'cleaning' WHERE id = :o"), {"o": orders[0]["id"]}
        )
    await asyncio.sleep(0.2)
    seen = (await fragment(client, kiosk["token"])).headers["x-board-version"]
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE departments SET name = '保洁部' WHERE code = 'cleaning'"))
    try:
        assert "保洁部" in card(await changed_board(client, kiosk["token"], seen), orders[0]["number"])
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE departments SET name = '保洁' WHERE code = 'cleaning'"))


async def test_a_clock_moved_without_touching_its_order_moves_the_board(client, kiosk, engine, orders):
    orders.append(await make_order(engine, minutes=60))
    await asyncio.sleep(0.2)
    seen = (await fragment(client, kiosk["token"])).headers["x-board-version"]
    async with engine.begin() as conn:  # e.g. a deadline recomputed by a policy change
        await conn.execute(
            text("UPDATE order_clocks SET deadline = now() - interval '1 minute' WHERE order_id = :o"),
            {"o": orders[0]["id"]},
        )
    html = await changed_board(client, kiosk["token"], seen)
    assert 'data-band="breached"' in card(html, orders[0]["number"])


# ---- what the board shows -------------------------------------------------------------------


async def test_the_footer_counts_the_shift_lists_as_the_shift_page_does(app, client, kiosk, engine, orders):
    from server.domain.shifts import shift_windows
    from server.persistence import worklists

    orders.append(await make_order(engine, started_ago=25 * 60, minutes=30 * 60, summary="超一天的单"))
    await wait_distrusted(board_state(app), orders[0]["project_id"])
    html = (await fragment(client, kiosk["token"])).text
    shown = {k: int(v) for k, v in re.findall(r'data-list="(\w+)">[^<]*<b>(\d+)</b>', html)}
    pid, now = orders[0]["project_id"], clock.now()
    async with engine.connect() as conn:
        w = shift_windows(
            now, "Asia/Shanghai", __import__("datetime").time(9), __import__("datetime").time(17, 30)
        )
        expected = {
            "slips_out": len(await worklists.slips_out(conn, [pid], w["midnight"])),
            "end_of_shift": len(await worklists.end_of_shift(conn, [pid], now)),
            "handover": len(await worklists.night_handover(conn, [pid], w["night_start"], w["morning"])),
            "over_24h": len(await worklists.unfinished_over_24h(conn, [pid], now)),
        }
    assert shown == expected
    assert shown["over_24h"] >= 1


async def test_a_stuck_escalation_says_so_and_counts_rounds_of_its_chain(app, client, kiosk, engine, orders):
    orders.append(
        await make_order(engine, kind="entrapment", clock_kind="ack", minutes=1, location="4栋-2单元-802")
    )
    chain = frozen_chain(
        [
            ("oncall_primary", "张师傅"),
            ("oncall_backup", "刘师傅"),
            ("supervisor", "王主管"),
            ("manager", "周经理"),
        ]
    )
    alert_id = await alert_for(engine, orders[0], chain)
    async with engine.begin() as conn:  # six steps paged, the seventh overdue (the auditor flagged it)
        await conn.execute(
            text(
                "UPDATE alerts SET next_step_index = 6, next_step_at = now() - interval '3 minutes', "
                "stuck_since = now() - interval '2 minutes' WHERE id = :a"
            ),
            {"a": alert_id},
        )
    await wait_distrusted(board_state(app), orders[0]["project_id"])
    html = (await fragment(client, kiosk["token"])).text
    banner = re.search(rf'<div class="balert[^"]*" id="alert-{alert_id}".*?</div>', html, re.S).group(0)
    assert "stuck" in banner
    assert "第 2/4 级" in banner and "第 2 轮" in banner and "6/4" not in banner
    assert "升级停滞" in banner and "第 3 级" in banner
    text_only = re.sub(r"<[^>]+>", " ", banner)
    assert text_only.count("4栋‑2单元‑802") == 1  # one clean line: the location once, unbroken
    assert "张师傅、刘师傅、王主管、周经理" in banner


async def test_an_entrapment_card_is_pinned_on_top_of_its_column(app, client, kiosk, engine, orders):
    orders.append(await make_order(engine, minutes=3, summary="最急的普通单"))
    orders.append(
        await make_order(engine, kind="entrapment", clock_kind="ack", minutes=90, location="3栋 2号电梯")
    )
    await wait_distrusted(board_state(app), orders[0]["project_id"])
    html = (await fragment(client, kiosk["token"])).text
    column = re.search(r'<section class="col col-dispatch".*?</section>', html, re.S).group(0)
    numbers = re.findall(r'data-number="([^"]+)"', column)
    # above the more urgent ordinary order (after any other pinned card the demo may have)
    assert numbers.index(orders[1]["number"]) < numbers.index(orders[0]["number"])
    assert 'class="bcard band-green pinned"' in card(html, orders[1]["number"]) or "pinned" in card(
        html, orders[1]["number"]
    )


async def test_a_project_without_a_rota_says_nobody_is_on_call(client, login):
    await login("other_zhuguan")
    r = await client.get("/board")
    assert r.status_code == 200
    assert 'class="rota-gap-now"' in r.text and "无人值班" in r.text


# ---- the view model, without the database -------------------------------------------------


def _data(cards: list[dict[str, Any]], shifts: list[dict[str, Any]] | None = None, **over: Any) -> Any:
    from server.persistence.board import BoardData

    return BoardData(
        **{
            "project_id": 1,
            "code": "DEMO",
            "name": "阳光花园",
            "tz": "Asia/Shanghai",
            "business_hours": None,
            "cards": cards,
            "alerts": [],
            "shifts": shifts or [],
            "shift_counts": {"slips_out": 0, "end_of_shift": 0, "handover": 0, "over_24h": 0},
            **over,
        }
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
            ],
            shifts=ROTA,
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


def test_the_version_is_the_same_between_two_changes_and_moves_with_a_band():
    from datetime import UTC, datetime

    from server.board import view

    now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    data = _data([_row(1, "pooled", now, 10)], shifts=ROTA)
    first = view.build(data, now)
    later = view.build(data, now + timedelta(minutes=4))  # still green: another process, later
    assert later.signature() == first.signature()
    amber = view.build(data, first.next_change)
    assert amber.columns[0].cards[0].band == "amber" and amber.signature() != first.signature()


def test_an_entrapment_or_alerting_card_is_pinned_above_more_urgent_ones():
    from datetime import UTC, datetime

    from server.board import view

    now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    rows = [
        _row(1, "pooled", now, 5),
        _row(2, "pooled", now, 30, kind="entrapment"),
        _row(3, "pooled", now, 20, alerting=True),
        _row(4, "pooled", now, 6),
    ]
    board = view.build(_data(rows, shifts=ROTA), now)
    assert [c.number for c in board.columns[0].cards] == ["BX-2", "BX-3", "BX-1", "BX-4"]


# The demo's rota: day, night, weekend (Saturday 09:00 to Monday 09:00 in two shifts), holiday.
ROTA = [
    {
        "id": 1,
        "project_id": 1,
        "kind": "day",
        "starts": "09:00:00",
        "ends": "17:30:00",
        "primary_id": 11,
        "backup_id": 12,
        "primary_name": "张师傅",
        "backup_name": "刘师傅",
    },
    {
        "id": 2,
        "project_id": 1,
        "kind": "night",
        "starts": "17:30:00",
        "ends": "09:00:00",
        "primary_id": 12,
        "backup_id": 11,
        "primary_name": "刘师傅",
        "backup_name": "张师傅",
    },
    {
        "id": 3,
        "project_id": 1,
        "kind": "weekend",
        "starts": "09:00:00",
        "ends": "09:00:00",
        "primary_id": 13,
        "backup_id": None,
        "primary_name": "陈师傅",
        "backup_name": None,
    },
    {
        "id": 4,
        "project_id": 1,
        "kind": "holiday",
        "starts": "09:00:00",
        "ends": "09:00:00",
        "primary_id": 14,
        "backup_id": None,
        "primary_name": "杨师傅",
        "backup_name": None,
    },
]


@pytest.mark.parametrize(
    ("local", "who"),
    [
        ("2026-11-24 10:00", "张师傅"),  # Tuesday, day shift
        ("2026-11-24 03:00", "刘师傅"),  # Tuesday night (Monday's night shift)
        ("2026-11-28 10:00", "陈师傅"),  # Saturday
        ("2026-11-30 03:00", "陈师傅"),  # the night after Sunday: Sunday's weekend shift until 09:00
        ("2026-10-01 10:00", "杨师傅"),  # National Day
        ("2026-10-10 10:00", "张师傅"),  # a Saturday that is a make-up working day (调休)
        ("2026-10-10 20:00", "刘师傅"),  # and its night
    ],
)
def test_the_board_names_the_engineer_the_rota_rules_put_on_call(local, who):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from server.board.view import rota_at

    tz = ZoneInfo("Asia/Shanghai")
    now = datetime.fromisoformat(local).replace(tzinfo=tz)
    rota, change = rota_at(ROTA, now, tz)
    assert rota.on_call == who and not rota.gap_now and rota.gap is None
    assert change is not None and now < change <= now + timedelta(days=1)


def test_rota_gaps_now_and_within_a_day_are_flagged():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from server.board.view import rota_at

    tz = ZoneInfo("Asia/Shanghai")
    day_only = [ROTA[0]]
    tuesday_10 = datetime(2026, 11, 24, 10, 0, tzinfo=tz)
    rota, change = rota_at(day_only, tuesday_10, tz)
    assert rota.on_call == "张师傅" and not rota.gap_now
    assert rota.gap == (datetime(2026, 11, 24, 17, 30, tzinfo=tz), datetime(2026, 11, 25, 9, 0, tzinfo=tz))
    assert change == datetime(2026, 11, 24, 17, 30, tzinfo=tz)
    evening = datetime(2026, 11, 24, 20, 0, tzinfo=tz)
    rota, _change = rota_at(day_only, evening, tz)
    assert rota.on_call is None and rota.gap_now and rota.gap[1] == datetime(2026, 11, 25, 9, 0, tzinfo=tz)
    rota, _change = rota_at(ROTA, tuesday_10, tz)
    assert rota.gap is None  # the full rota has none
    rota, _change = rota_at([], tuesday_10, tz)
    assert rota.on_call is None and rota.gap_now


def test_paged_names_read_the_frozen_chain_in_its_usual_shapes():
    from server.board.view import paged_names

    chain = [{"name": "张师傅"}, {"recipients": [{"display_name": "刘师傅"}, "王主管"]}, {"name": "周经理"}]
    assert paged_names(chain, 2) == (["张师傅", "刘师傅", "王主管"], 3)
    assert paged_names({"steps": chain}, 1) == (["张师傅"], 3)
    assert paged_names(None, 1) == ([], 0)


@pytest.mark.parametrize(
    ("fired", "position"), [(0, (0, 1)), (1, (1, 1)), (4, (4, 1)), (5, (1, 2)), (6, (2, 2)), (9, (1, 3))]
)
def test_the_step_is_counted_within_the_chain_and_its_rounds(fired, position):
    from server.board.view import chain_position

    assert chain_position(fired, 4) == position


def test_the_tablet_and_the_wall_read_an_alert_s_progress_alike():
    """6 steps fired of a 4-step chain: everyone paged once, step 2 of round 2 (never "6/4")."""
    from server.board.view import alert_progress

    chain = {"steps": [{"name": "张师傅"}, {"name": "刘师傅"}, {"name": "王主管"}, {"name": "周经理"}]}
    p = alert_progress(chain, 6)
    assert (p.step, p.steps, p.round) == (2, 4, 2)
    assert p.paged == ("张师傅", "刘师傅", "王主管", "周经理")
    assert alert_progress(chain, 0) == alert_progress(chain, 0).__class__((), 0, 4, 1)


def test_a_business_hours_countdown_is_rendered_by_the_minute():
    from datetime import UTC, datetime

    from server.board import view

    now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai
    row = _row(1, "on_site", now, 600, clock_business_hours=True, clock_kind="completion")
    board = view.build(_data([row], shifts=ROTA, business_hours="09:00-17:30"), now)
    c = board.columns[2].cards[0]
    # 10:00 → 17:30 of business time is left before 20:00: shown in whole minutes by the server
    assert (c.cd_mode, c.deadline_ms, c.cd_value) == ("business", None, 450)
    assert board.next_change <= now + timedelta(minutes=1)


def test_overdue_reads_as_time_overdue_not_a_time_of_day():
    from server.i18n import use_locale
    from server.web.board import span_text

    def shown(seconds: int) -> str:
        return re.sub(r"<[^>]+>", "", str(span_text(seconds)))

    with use_locale("zh_CN"):
        assert shown(-(20 * 60 + 9)) == "+20:09"
        assert shown(-(65 * 60 + 7)) == "+1小时05分"
        assert str(span_text(-(65 * 60 + 7))) == "+1<small>小时</small>05<small>分</small>"
        assert shown(-(26 * 3600)) == "+1天02小时"
        assert shown(4 * 60 + 23) == "04:23"
    with use_locale("en"):
        assert shown(-(65 * 60)) == "+1 h 05 min"
