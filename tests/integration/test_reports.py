"""Reports: known answers for every rate on a hand-built May 2025 of project DEMO, exports, access.

The data set (local time Asia/Shanghai; ✓ = clock met, ✗ = breached):

| order | status    | team/engineer | category   | done | callback     | clocks                         |
| A     | closed    | 水电班/张师傅 | plumbing   | 2 h  | satisfied    | arrival ✓ completion ✓         |
| B     | closed    | 水电班/张师傅 | plumbing   | 3 h  | fairly       | arrival ✗ completion ✓         |
| C     | closed    | 土建班/陈师傅 | building   | 5 h  | unsatisfied  | completion ✓ (twice: reopened) |
| D     | callback  | 土建班/陈师傅 | building   | 10 h | —            | completion ✓; was unfinished   |
| E     | paused    | 水电班/张师傅 | electrical | —    | —            | arrival ✓ completion paused    |
| F     | cancelled | 水电班/张师傅 | plumbing   | —    | —            | breached, then cancelled       |
| G     | closed    | 土建班/陈师傅 | building   | 26 h | satisfied    | completion ✗ (05-31 → 06-02)   |
| H     | closed    | 水电班/张师傅 | plumbing   | 1 h  | satisfied    | received 06-01 00:30 local     |
| J     | assigned  | 水电班/张师傅 | electrical | —    | —            | completion running, overdue    |
| K     | on_site   | 土建班/陈师傅 | building   | —    | —            | none                           |

May: F is cancelled (out), H belongs to June locally (though May in UTC). That leaves 8
received, 5 done (A B C D G), 7 timed (all but K) of which 4 timely (A C D E), 4 called back
(A B C G), 4 rated (2 satisfied, 1 fairly, 1 unsatisfied), 1 reworked (C), 3 first-time fixes
(A B G), 3 open (E J K).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from openpyxl import load_workbook
from sqlalchemy import text

from server.domain import stats
from server.persistence import reports as reports_db

CST = timezone(timedelta(hours=8))
MAY = {"project": "DEMO", "month": "2025-05"}


def t(day: int, hour: int, minute: int = 0, month: int = 5) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=CST)


# name: (status, team, engineer, category, received, accepted after min, finished after h, callback rating,
#        reopen_count, clocks [(kind, generation, state, deadline after h, breached)])
ORDERS: dict[str, tuple] = {
    "A": (
        "closed",
        "水电班",
        "shifu1",
        "plumbing",
        t(10, 10),
        5,
        2,
        "satisfied",
        0,
        [("arrival", 1, "met", 0.5, False), ("completion", 1, "met", 24, False)],
    ),
    "B": (
        "closed",
        "水电班",
        "shifu1",
        "plumbing",
        t(11, 10),
        10,
        3,
        "fairly",
        0,
        [("arrival", 1, "breached", 0.1, True), ("completion", 1, "met", 24, False)],
    ),
    "C": (
        "closed",
        "土建班",
        "shifu3",
        "building",
        t(12, 9),
        15,
        5,
        "unsatisfied",
        1,
        [("completion", 1, "met", 24, False), ("completion", 2, "met", 48, False)],
    ),
    "D": (
        "callback",
        "土建班",
        "shifu3",
        "building",
        t(13, 9),
        20,
        10,
        None,
        0,
        [("completion", 1, "met", 24, False)],
    ),
    "E": (
        "paused",
        "水电班",
        "shifu1",
        "electrical",
        t(14, 9),
        25,
        None,
        None,
        0,
        [("arrival", 1, "met", 0.5, False), ("completion", 1, "paused", 24, False)],
    ),
    "F": (
        "cancelled",
        "水电班",
        "shifu1",
        "plumbing",
        t(15, 9),
        None,
        None,
        None,
        0,
        [("completion", 1, "cancelled", 1, True)],
    ),
    "G": (
        "closed",
        "土建班",
        "shifu3",
        "building",
        t(31, 23, 30),
        30,
        26,
        "satisfied",
        0,
        [("completion", 1, "breached", 24, True)],
    ),
    "H": (
        "closed",
        "水电班",
        "shifu1",
        "plumbing",
        t(1, 0, 30, month=6),
        5,
        1,
        "satisfied",
        0,
        [("completion", 1, "met", 24, False)],
    ),
    "J": (
        "assigned",
        "水电班",
        "shifu1",
        "electrical",
        t(16, 9),
        None,
        None,
        None,
        0,
        [("arrival", 1, "cancelled", 0.5, False), ("completion", 1, "running", 24, False)],
    ),
    "K": ("on_site", "土建班", "shifu3", "building", t(20, 9), 35, None, None, 0, []),
}


@pytest.fixture(scope="module")
async def may(engine):
    """Insert the data set once (numbers RPT-2025-*); return the DEMO project id."""
    async with engine.begin() as conn:
        pid = (await conn.execute(text("SELECT id FROM projects WHERE code = 'DEMO'"))).scalar_one()
        if (await conn.execute(text("SELECT count(*) FROM orders WHERE number LIKE 'RPT-2025-%'"))).scalar():
            return pid
        teams = dict(
            (await conn.execute(text("SELECT name, id FROM teams WHERE project_id = :p"), {"p": pid})).all()
        )
        staff = dict((await conn.execute(text("SELECT username, id FROM staff"))).all())
        for name, (
            status,
            team,
            eng,
            cat,
            received,
            acc_min,
            fin_h,
            rating,
            reopen,
            clocks,
        ) in ORDERS.items():
            accepted = received + timedelta(minutes=acc_min) if acc_min is not None else None
            finished = received + timedelta(hours=fin_h) if fin_h is not None else None
            called = finished + timedelta(hours=2) if rating else None
            oid = (
                await conn.execute(
                    text(
                        "INSERT INTO orders (number, project_id, kind, category, urgency, status, area, location, "
                        "reporter_name, reporter_phone, summary, channel, team_id, assignee_id, received_at, "
                        "dispatched_at, accepted_at, arrived_at, finished_at, callback_at, callback_rating, callback_method, "
                        "reopen_count, cancelled_at, verification_code, man_hours) "
                        "VALUES (:n, :p, 'repair', :cat, 'normal', :st, 'public', '中心花园', '测试', '13800000000', '报表测试', "
                        "'phone', :team, :eng, :rec, :acc, :acc, :arr, :fin, :cb, :rating, :cbm, :reopen, :cancelled, '1234', :mh) "
                        "RETURNING id"
                    ),
                    {
                        "n": f"RPT-2025-{name}",
                        "p": pid,
                        "cat": cat,
                        "st": status,
                        "team": teams[team],
                        "eng": staff[eng],
                        "rec": received,
                        "acc": accepted,
                        "arr": accepted + timedelta(minutes=5) if accepted else None,
                        "fin": finished,
                        "cb": called,
                        "rating": rating,
                        "cbm": "phone" if rating else None,
                        "reopen": reopen,
                        "cancelled": received + timedelta(hours=1) if status == "cancelled" else None,
                        "mh": 1.5 if finished else None,
                    },
                )
            ).scalar_one()
            for kind, gen, state, after_h, breached in clocks:
                deadline = received + timedelta(hours=after_h)
                await conn.execute(
                    text(
                        "INSERT INTO order_clocks (order_id, kind, generation, started_at, deadline, minutes, state, "
                        "breached_at, paused_at, ended_at) VALUES (:o, :k, :g, :s, :d, :m, :st, :b, :pa, :e)"
                    ),
                    {
                        "o": oid,
                        "k": kind,
                        "g": gen,
                        "s": received,
                        "d": deadline,
                        "m": int(after_h * 60) or 1,
                        "st": state,
                        "b": deadline + timedelta(minutes=1) if breached else None,
                        "pa": received + timedelta(hours=1) if state == "paused" else None,
                        "e": None
                        if state in ("running", "paused")
                        else (finished or received + timedelta(hours=1)),
                    },
                )
            if name == "D":
                await conn.execute(
                    text(
                        "INSERT INTO order_events (order_id, at, actor_label, action, from_status, to_status, reason) "
                        "VALUES (:o, :at, '陈师傅', 'unfinished', 'on_site', 'unfinished', '缺配件')"
                    ),
                    {"o": oid, "at": received + timedelta(hours=1)},
                )
    return pid


async def _report(engine, pid: int, period: stats.Period) -> reports_db.Report:
    async with engine.connect() as conn:
        projects = await reports_db.projects_of(conn, frozenset({pid}))
    return await reports_db.full_report(engine, projects, period, datetime.now(UTC))


def by_name(rows: list[reports_db.Row]) -> dict[str, stats.Counts]:
    return {r.name: r.counts for r in rows}


# ---- figures ------------------------------------------------------------------------------


async def test_every_rate_of_the_month_has_its_known_answer(engine, may):
    rep = await _report(engine, may, stats.month_period(2025, 5))
    c = rep.overview.counts
    assert (c.received, c.done, c.timed, c.timely) == (8, 5, 7, 4)
    assert (c.called_back, c.rated, c.satisfied, c.fairly, c.unsatisfied) == (4, 4, 2, 1, 1)
    assert (c.reworked, c.first_fix, c.open) == (1, 3, 3)
    r = rep.overview.rates
    assert r.completion == 5 / 8
    assert r.timeliness == 4 / 7
    assert r.callback == 4 / 5
    assert r.satisfaction == 3 / 4
    assert r.rework == 1 / 5
    assert r.first_fix == 3 / 5


async def test_breakdowns_by_team_engineer_and_category(engine, may):
    rep = await _report(engine, may, stats.month_period(2025, 5))
    teams = by_name(rep.breakdowns["team"])
    assert (
        teams["水电班"].received,
        teams["水电班"].done,
        teams["水电班"].timed,
        teams["水电班"].timely,
    ) == (4, 2, 4, 2)
    assert (
        teams["土建班"].received,
        teams["土建班"].done,
        teams["土建班"].timed,
        teams["土建班"].timely,
    ) == (4, 3, 3, 2)
    engineers = by_name(rep.breakdowns["engineer"])
    assert engineers["张师傅"].received == 4 and engineers["陈师傅"].reworked == 1
    assert engineers["陈师傅"].open == 1 and engineers["张师傅"].open == 2
    assert engineers["陈师傅"].man_hours == 4.5  # C, D, G done at 1.5 h each
    cats = {r.key: r.counts.received for r in rep.breakdowns["category"]}
    assert cats == {"plumbing": 2, "electrical": 2, "building": 4}


async def test_breaches_by_clock_kind_count_recorded_late_and_overdue_running_clocks(engine, may):
    rep = await _report(engine, may, stats.month_period(2025, 5))
    assert {b["kind"]: (b["clocks"], b["orders"]) for b in rep.breaches} == {
        "arrival": (1, 1),
        "completion": (2, 2),
    }


async def test_unfinished_over_24_hours_lists_the_open_orders_oldest_first(engine, may):
    rep = await _report(engine, may, stats.month_period(2025, 5))
    assert [u["number"] for u in rep.unfinished] == ["RPT-2025-E", "RPT-2025-J", "RPT-2025-K"]
    assert rep.unfinished_total == 3


async def test_time_distributions_use_percentiles(engine, may):
    rep = await _report(engine, may, stats.month_period(2025, 5))
    resp = rep.durations["response"]
    assert resp["n"] == 7  # J was never accepted
    assert resp["p50"] == pytest.approx(20 * 60)
    assert resp["p90"] == pytest.approx(1920)  # 30 min + 0.4 × 5 min
    assert rep.durations["completion"]["n"] == 5
    assert [n for _lo, _hi, n in rep.histogram] == [0, 2, 1, 1, 1, 0]


async def test_an_order_received_after_local_midnight_belongs_to_the_next_month(engine, may):
    june = await _report(engine, may, stats.month_period(2025, 6))
    assert june.overview.counts.received == 1  # H, though still May 31 in UTC
    spanning = await _report(
        engine, may, stats.parse_period(None, "2025-05-31", "2025-05-31", t(1, 0).date())
    )
    assert spanning.overview.counts.received == 1 and spanning.overview.counts.done == 1  # G, done in June


async def test_satisfaction_counts_satisfied_only_where_the_project_says_so(engine, may):
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE projects SET count_fairly_satisfied = false WHERE code = 'DEMO'"))
    try:
        rep = await _report(engine, may, stats.month_period(2025, 5))
        assert rep.overview.rates.satisfaction == 2 / 4
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE projects SET count_fairly_satisfied = true WHERE code = 'DEMO'"))


async def test_an_empty_period_shows_zeros_and_no_data(engine, may):
    rep = await _report(engine, may, stats.month_period(2025, 1))
    assert rep.overview.counts == stats.Counts()
    assert rep.overview.rates.timeliness is None
    assert rep.breaches == [] and rep.unfinished == []


# ---- the page -----------------------------------------------------------------------------


async def test_manager_sees_the_report_page_with_counts_and_charts(client, login, may):
    await login("jingli")
    r = await client.get("/reports", params=MAY)
    assert r.status_code == 200
    assert "<svg" in r.text
    assert "62.5%" in r.text and "5 / 8" in r.text  # completion
    assert "57.1%" in r.text and "4 / 7" in r.text  # timeliness
    assert "RPT-2025-K" in r.text


async def test_supervisor_may_see_reports_and_the_default_is_last_month(client, login, may):
    await login("zhuguan")
    r = await client.get("/reports")
    assert r.status_code == 200
    assert re.search(r'type="month" name="month" value="\d{4}-\d{2}"', r.text)


async def test_an_empty_month_says_no_data(client, login, may):
    await login("jingli")
    client.cookies.set("bx_lang", "en", domain="127.0.0.1")
    r = await client.get("/reports", params={"project": "DEMO", "month": "2025-01"})
    assert r.status_code == 200
    assert "no data" in r.text and "0 / 0" in r.text


async def test_engineer_is_refused(client, login):
    await login("shifu1")
    assert (await client.get("/reports")).status_code == 403
    assert (await client.get("/reports/export.xlsx", params=MAY)).status_code == 403


async def test_anonymous_is_sent_to_login(client):
    r = await client.get("/reports", params=MAY)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_a_project_the_manager_does_not_serve_is_not_found(client, login):
    await login("jingli")
    assert (await client.get("/reports", params={"project": "OTHER"})).status_code == 404
    assert (await client.get("/reports/export.csv", params={"project": "OTHER"})).status_code == 404
    assert (await client.get("/reports/panel", params={"project": "OTHER"})).status_code == 404


async def test_other_projects_supervisor_cannot_read_demo(client, login):
    await login("other_zhuguan")
    assert (await client.get("/reports", params=MAY)).status_code == 404


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2025-05-31", "end": "2025-05-01"}, "The start date must not be after the end date"),
        ({"start": "2022-01-01", "end": "2025-01-01"}, "A report covers at most two years"),
        ({"start": "garbage", "end": "2025-01-01"}, "Invalid date: use the form YYYY-MM-DD"),
        ({"month": "2025-13"}, "Invalid month: use the form YYYY-MM"),
        ({"start": "2025-01-01"}, "Give both a start and an end date"),
    ],
)
async def test_bad_periods_get_a_422_page_with_a_clear_message(client, login, params, message):
    await login("jingli")
    client.cookies.set("bx_lang", "en", domain="127.0.0.1")
    r = await client.get("/reports", params={"project": "DEMO", **params})
    assert r.status_code == 422
    assert message in r.text


async def test_bad_period_answers_json_to_an_api_token(client, engine):
    from server.security import token_hash

    async with engine.begin() as conn:
        sid = (await conn.execute(text("SELECT id FROM staff WHERE username = 'jingli'"))).scalar_one()
        await conn.execute(
            text(
                "INSERT INTO api_tokens (staff_id, name, token_hash) VALUES (:s, 'reports', :h) "
                "ON CONFLICT DO NOTHING"
            ),
            {"s": sid, "h": token_hash("bx_reports_test_token")},
        )
    r = await client.get(
        "/reports/export.csv",
        params={"start": "2025-02-01", "end": "2025-01-01"},
        headers={"Authorization": "Bearer bx_reports_test_token"},
    )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "start"


# ---- exports ------------------------------------------------------------------------------


async def test_xlsx_export_has_a_sheet_per_breakdown_with_chinese_headers(client, login, may):
    await login("jingli")
    r = await client.get("/reports/export.xlsx", params=MAY)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["总览", "按班组", "按师傅", "按类别", "超时", "未完成超24小时"]
    rows = list(wb["按班组"].iter_rows(values_only=True))
    header = rows[0]
    assert header[:4] == ("名称", "受理数", "完成数", "完成率")
    water = next(row for row in rows if row[0] == "水电班")
    assert water[header.index("受理数")] == 4
    assert water[header.index("及时率")] == 0.5
    overview = next(row for row in wb["总览"].iter_rows(values_only=True) if row and row[0] == "全部")
    assert overview[1:3] == (8, 5)
    cats = {row[0]: row[1] for row in wb["按类别"].iter_rows(min_row=2, values_only=True) if row and row[0]}
    assert cats == {"土建/门窗锁": 4, "给排水": 2, "供电": 2}
    late = [row for row in wb["未完成超24小时"].iter_rows(min_row=2, values_only=True) if row and row[0]]
    assert [row[0] for row in late] == ["RPT-2025-E", "RPT-2025-J", "RPT-2025-K"]


async def test_csv_export_parses_with_every_section_or_one_sheet(client, login, may):
    await login("jingli")
    r = await client.get("/reports/export.csv", params=MAY)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    body = r.content.decode("utf-8-sig")
    assert "[总览]" in body and "[超时]" in body
    one = await client.get("/reports/export.csv", params={**MAY, "sheet": "按师傅"})
    rows = list(csv.DictReader(io.StringIO(one.content.decode("utf-8-sig"))))
    by = {row["名称"]: row for row in rows}
    assert by["陈师傅"]["受理数"] == "4" and by["陈师傅"]["返修数"] == "1"
    assert by["张师傅"]["及时率"] == "50.0%"


async def test_empty_period_exports_dashes_not_errors(client, login, may):
    await login("jingli")
    r = await client.get(
        "/reports/export.csv", params={"project": "DEMO", "month": "2025-01", "sheet": "总览"}
    )
    assert r.status_code == 200
    r = await client.get("/reports/export.xlsx", params={"project": "DEMO", "month": "2025-01"})
    row = next(
        x
        for x in load_workbook(io.BytesIO(r.content))["总览"].iter_rows(values_only=True)
        if x and x[0] == "全部"
    )
    assert row[1] == 0 and row[3] == "—"


# ---- wall-board panel ---------------------------------------------------------------------


async def test_panel_is_a_small_fragment_for_staff_of_the_project(client, login):
    await login("shifu1")
    r = await client.get("/reports/panel", params={"project": "DEMO"})
    assert r.status_code == 200
    assert r.text.lstrip().startswith("<section") and "<html" not in r.text
    assert 'class="report-panel"' in r.text


async def test_panel_counts_today_and_this_month(engine, may):
    async with engine.connect() as conn:
        projects = await reports_db.projects_of(conn, frozenset({may}))
        figures = await reports_db.panel(conn, projects[0], t(31, 12).date(), t(31, 23, 59))
    assert figures.today.received == 1  # G
    assert figures.month.received == 8 and figures.month.done == 5
    assert figures.month.timed == 7 and figures.month.timely == 4
    assert figures.unfinished_24h >= 3


async def test_all_my_projects_is_a_scope_too(client, login, may):
    await login("jingli")
    r = await client.get("/reports", params={"project": "ALL", "month": "2025-05"})
    assert r.status_code == 200 and "5 / 8" in r.text
