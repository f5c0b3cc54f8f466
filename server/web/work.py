"""The engineer's tablet and the supervisor's triage screen: lists of orders with one-tap steps.

Both call the same lifecycle step as the API (api_orders.run_action). A conflict (409: someone
else moved the order) answers the re-rendered list with the message inside the order's card, so
the card shows the new state at once; other refusals (403, 422) come back as a message in place
(server/web/errors.py) and leave the form as typed. Countdowns and colour bands are the board's
(server/web/work_view.py).
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from sqlalchemy import text

from server import clock
from server.auth import Principal, current, staff_guard
from server.board import view as board_view
from server.domain import lifecycle
from server.domain.messages import N_, DomainError, ValidationErrors
from server.domain.vocab import Category, Department, Kind, Role, Status
from server.i18n import gettext as _
from server.persistence import alerts as alerts_db
from server.persistence import oncall as oncall_db
from server.persistence import orders as orders_db
from server.persistence.queries import sql
from server.runtime import Runtime
from server.web import work_view
from server.web.api_orders import actor_of, run_action
from server.web.errors import translate
from server.web.followup import shift_lists
from server.web.templates import render

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
TABLET = {"roles": frozenset({Role.ENGINEER, Role.HANDLER, Role.SUPERVISOR})}
TRIAGE = {"roles": frozenset({Role.SUPERVISOR, Role.DISPATCHER, Role.MONITOR, Role.MANAGER})}
DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
# A supervisor's "assign" of an order someone already holds is a reassignment (which needs a reason).
REASSIGN_FROM = frozenset({Status.ASSIGNED.value, Status.ACCEPTED.value})
FINISHED = frozenset({Status.DONE.value, Status.CALLBACK.value, Status.CLOSED.value})


def _rt(request: Request[Any, Any, Any]) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _me(request: Request[Any, Any, Any]) -> Principal:
    p = current(request)
    assert p is not None
    return p


def _with_actions(rows: list[dict[str, Any]], p: Principal) -> list[dict[str, Any]]:
    actor = actor_of(p).as_lifecycle_actor()
    for r in rows:
        r["allowed"] = lifecycle.allowed_actions(orders_db.order_view(r), actor)
    return rows


def _now_ms(now: datetime) -> int:
    return int(now.timestamp() * 1000)


def _html(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(body, status_code=status, media_type="text/html", headers=headers)


def _conflict_message(e: DomainError) -> str | None:
    """The message of a refusal that means "the order has moved on" (the list must be redrawn)."""
    return translate(e.msgid, e.params) if e.kind in ("conflict", "not_found") else None


# ---- tablet ------------------------------------------------------------------------------------


async def _tablet_data(rt: Runtime, p: Principal, errors: dict[str, str] | None = None) -> dict[str, Any]:
    now = clock.now()
    pids = sorted(p.project_ids)
    async with rt.engine.connect() as conn:
        tz = await oncall_db.project_tz(conn, pids[0]) if pids else DEFAULT_TZ
        day_start = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
        rows = [
            dict(r)
            for r in (
                await conn.execute(
                    sql("tablet_orders"),
                    {
                        "me": p.staff_id,
                        "pids": pids,
                        "teams": list(p.team_ids),
                        "dept": p.department,
                        "since": day_start,
                    },
                )
            )
            .mappings()
            .all()
        ]
        on_call = [await oncall_db.on_call_now(conn, pid, now) for pid in pids[:3]]
    _with_actions(rows, p)
    work_view.annotate(rows, now, _, _("d"))
    finished = [r for r in rows if r["status"] in FINISHED]
    open_rows = [r for r in rows if r["status"] not in FINISHED]
    # The pool shows what I may grab: my teams' pool (a department handler has none).
    pool = [r for r in open_rows if r["status"] == Status.POOLED.value and "grab" in r["allowed"]]
    mine = [r for r in open_rows if r["status"] != Status.POOLED.value]
    errors = errors or {}
    shown = {r["number"] for r in mine + pool}
    return {
        "mine": mine,
        "pool": pool,
        "finished": sorted(finished, key=lambda r: r["finished_at"], reverse=True)[:10],
        "on_call": [c for c in on_call if c],
        "errors": errors,
        "gone": {n: m for n, m in errors.items() if n not in shown},
        "now": now,
        "now_ms": _now_ms(now),
        "tz": tz.key,
        "user": p,
    }


async def _alerts_version(conn: Any, p: Principal) -> str:
    v = (await conn.execute(sql("tablet_alerts_version"), {"pids": list(p.project_ids)})).scalar()
    return f"a{v or ''}"


async def _alerts_data(rt: Runtime, p: Principal) -> dict[str, Any]:
    async with rt.engine.begin() as conn:
        version = await _alerts_version(conn, p)
        alerts = await alerts_db.list_alerts(conn, p.project_ids, state="triggered", limit=20)
        # Shown on this person's tablet: their on-screen pages of these alerts are delivered.
        await alerts_db.mark_seen(conn, p.staff_id, [a["id"] for a in alerts], clock.now())
    for a in alerts:
        a["progress"] = board_view.alert_progress(a.get("chain"), int(a["next_step_index"] or 0))
    return {
        "alerts": sorted(alerts, key=lambda a: a["started_at"]),
        "alerts_version": version,
        "can_ack": p.role in alerts_db.ACK_ROLES,
    }


@get("/tablet", guards=[staff_guard], opt=TABLET)
async def tablet(request: Request[Any, Any, Any]) -> Response[str]:
    rt, p = _rt(request), _me(request)
    data = await _tablet_data(rt, p)
    alerts = await _alerts_data(rt, p)
    return _html(render("tablet.html", request_path="/tablet", **data, **alerts))


@get("/tablet/list", guards=[staff_guard], opt=TABLET)
async def tablet_list(request: Request[Any, Any, Any]) -> Response[str]:
    data = await _tablet_data(_rt(request), _me(request))
    return _html(render("fragments/tablet_list.html", **data))


@get("/tablet/alerts", guards=[staff_guard], opt=TABLET)
async def tablet_alerts(request: Request[Any, Any, Any], v: str | None = None) -> Response[str]:
    """Polled every 1.5 s: 204 while the open alerts are the ones the tablet shows (one indexed
    read, no rendering); otherwise the alert strip, and the order list is told to refresh."""
    rt, p = _rt(request), _me(request)
    if v:
        async with rt.engine.connect() as conn:
            if v == await _alerts_version(conn, p):
                return Response("", status_code=204)
    data = await _alerts_data(rt, p)
    headers = {"HX-Trigger": "tablet-refresh"} if v else None
    return _html(render("fragments/tablet_alerts.html", **data), headers=headers)


@post("/tablet/do/{number:str}/{action:str}", guards=[staff_guard], opt=TABLET, status_code=200)
async def tablet_do(request: Request[Any, Any, Any], number: str, action: str, data: Form) -> Response[str]:
    rt, p = _rt(request), _me(request)
    body: dict[str, Any] = {k: v for k, v in data.items() if v != "" and k != "_csrf"}
    try:
        await run_action(rt, p, number, action, body)
    except DomainError as e:
        message = _conflict_message(e)
        if message is None:
            raise  # 403 / 422: said on the card, the form stays as typed
        # The order moved on: the card shows its new state with the message inside it.
        data_ = await _tablet_data(rt, p, errors={number: message})
        return _html(
            render("fragments/tablet_list.html", **data_),
            status=409 if e.kind == "conflict" else 404,
            headers={"HX-Retarget": "#tablet-list", "HX-Reswap": "morph:innerHTML"},
        )
    data_ = await _tablet_data(rt, p)
    flash = translate(N_("%(number)s: done"), {"number": number})
    return _html(render("fragments/tablet_list.html", flash=flash, **data_))


# ---- triage ------------------------------------------------------------------------------------


async def _triage_choices(conn: Any, p: Principal) -> dict[str, Any]:
    pids = list(p.project_ids)
    engineers = (
        await conn.execute(
            text(
                "SELECT DISTINCT s.id, s.display_name, s.role FROM staff s "
                "JOIN staff_projects sp ON sp.staff_id = s.id "
                "WHERE sp.project_id = ANY(:pids) AND s.role IN ('engineer', 'handler', 'supervisor') "
                "AND s.active ORDER BY s.role, s.display_name"
            ),
            {"pids": pids},
        )
    ).mappings()
    teams = (
        await conn.execute(
            text(
                "SELECT t.id, t.name, t.department_code, p.code AS project_code FROM teams t "
                "JOIN projects p ON p.id = t.project_id WHERE t.project_id = ANY(:pids) ORDER BY p.code, t.name"
            ),
            {"pids": pids},
        )
    ).mappings()
    projects = (
        await conn.execute(
            text("SELECT code, name FROM projects WHERE id = ANY(:pids) ORDER BY code"), {"pids": pids}
        )
    ).mappings()
    return {
        "engineers": [dict(e) for e in engineers],
        "teams": [dict(t) for t in teams],
        "projects": list(projects),
    }


async def _triage_data(
    rt: Runtime, p: Principal, q: dict[str, str], *, strict: bool, errors: dict[str, str] | None = None
) -> dict[str, Any]:
    """Rows and pickers. Bad filter values are dropped; `strict` raises them (422 in place) instead."""
    now = clock.now()
    async with rt.engine.connect() as conn:
        choices = await _triage_choices(conn, p)
        filters, bad = work_view.parse_filters(
            q, [x["code"] for x in choices["projects"]], [t["id"] for t in choices["teams"]]
        )
        if bad and strict:
            raise ValidationErrors(bad)
        rows = [
            dict(r)
            for r in (
                await conn.execute(
                    sql("triage_orders"), {**filters.params(), "pids": list(p.project_ids), "now": now}
                )
            )
            .mappings()
            .all()
        ]
    _with_actions(rows, p)
    work_view.annotate(rows, now, _, _("d"))
    errors = errors or {}
    return {
        "rows": rows,
        "total": rows[0]["total"] if rows else 0,
        **choices,
        "multi_project": len(choices["projects"]) > 1,
        "filters": filters.query(),
        "filter_errors": {f: translate(m, prm) for f, (m, prm) in bad.items()},
        "row_errors": errors,
        "categories": list(Category),
        "kinds": list(Kind),
        "statuses": list(work_view.TRIAGE_STATUSES),
        "departments": list(Department),
        "now": now,
        "now_ms": _now_ms(now),
        "user": p,
    }


@get("/triage", guards=[staff_guard], opt=TRIAGE)
async def triage(request: Request[Any, Any, Any]) -> Response[str]:
    data = await _triage_data(_rt(request), _me(request), dict(request.query_params), strict=False)
    return _html(render("triage.html", request_path="/triage", **data))


@get("/triage/rows", guards=[staff_guard], opt=TRIAGE)
async def triage_rows(request: Request[Any, Any, Any]) -> Response[str]:
    data = await _triage_data(_rt(request), _me(request), dict(request.query_params), strict=True)
    return _html(render("fragments/triage_rows.html", **data))


@get("/triage/shift", guards=[staff_guard], opt=TRIAGE)
async def triage_shift(request: Request[Any, Any, Any]) -> Response[str]:
    """The shift lists in brief (slips, end of shift, handover, over 24 h), each linking to /shift."""
    rt, p = _rt(request), _me(request)
    async with rt.engine.connect() as conn:
        lists = await shift_lists(conn, list(p.project_ids), clock.now())
    return _html(render("fragments/triage_shift.html", **lists))


async def _statuses(rt: Runtime, p: Principal, numbers: list[str]) -> dict[str, str]:
    async with rt.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT number, status FROM orders WHERE number = ANY(:n) AND project_id = ANY(:p)"),
            {"n": numbers, "p": list(p.project_ids)},
        )
        return {r.number: r.status for r in rows}


@post("/triage/do/{action:str}", guards=[staff_guard], opt=TRIAGE, status_code=200)
async def triage_do(request: Request[Any, Any, Any], action: str, data: Form) -> Response[str]:
    """One order (number + version) or a bulk selection (selected "N1@v1,N2@v2"); the filter form
    comes along in the body so the list re-renders as filtered."""
    rt, p = _rt(request), _me(request)
    filters, inputs = work_view.split_form(data)
    targets = work_view.parse_targets(data)
    if not targets:
        raise DomainError("invalid", N_("Select at least one order"), field="selected")
    statuses = await _statuses(rt, p, [n for n, _v in targets]) if action == "assign" else {}
    done: list[str] = []
    refused: dict[str, str] = {}
    input_errors: list[DomainError] = []
    for number, version in targets:
        step = "reassign" if action == "assign" and statuses.get(number) in REASSIGN_FROM else action
        try:
            # The dialog's reason is for reassigning: a first assignment records none.
            given = {k: v for k, v in inputs.items() if not (step == "assign" and k == "reason")}
            await run_action(rt, p, number, step, {"version": version, **given})
            done.append(number)
        except DomainError as e:
            if _conflict_message(e) is None:
                input_errors.append(e)
            refused[number] = translate(e.msgid, e.params)
    if input_errors and len(input_errors) == len(targets):
        raise input_errors[0]  # bad input (422) or not allowed (403) everywhere: said in the dialog
    data_ = await _triage_data(rt, p, filters, strict=False, errors=refused)
    parts = [translate(N_("%(count)s done"), {"count": len(done)})] if done else []
    parts += [f"{n}: {m}" for n, m in refused.items()]
    html = render("fragments/triage_rows.html", flash="; ".join(parts), flash_error=bool(refused), **data_)
    if refused and not done:
        # Nothing happened (the order moved on): the rows show the new state with the reason.
        return _html(
            html, status=409, headers={"HX-Retarget": "#triage-rows", "HX-Reswap": "morph:innerHTML"}
        )
    return _html(html)


ROUTES = [tablet, tablet_list, tablet_alerts, tablet_do, triage, triage_rows, triage_shift, triage_do]
