"""Monthly statistics (DOMAIN.md §8): report page, exports (xlsx, csv), wall-board panel.

Figures come from SQL aggregates (server/persistence/reports.py), rates from
server/domain/stats.py; this module picks the scope and period and lays the figures out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromQuery
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server import clock
from server.auth import Principal, board_guard, current, staff_guard
from server.domain import stats
from server.domain.messages import N_, DomainError
from server.domain.vocab import Role
from server.i18n import gettext as _
from server.i18n import use_locale
from server.labels import label
from server.persistence import reports as reports_db
from server.runtime import Runtime
from server.web.templates import render

REPORT_ROLES = {Role.MANAGER, Role.SUPERVISOR, Role.ADMIN}
ALL_PROJECTS = "ALL"
OptQuery = FromQuery[str | None]  # every report parameter is an optional query string


# ---- scope and period ---------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """What the caller asked for, as given (validated by `build`, never cut short)."""

    project: str = ""
    month: str = ""
    start: str = ""
    end: str = ""
    focus: str = ""

    def qs(self, **extra: str) -> str:
        items = {
            "project": self.project,
            "month": self.month,
            "start": self.start,
            "end": self.end,
            "focus": self.focus,
            **extra,
        }
        return urlencode({k: v for k, v in items.items() if v})


def pick(mine: list[reports_db.ProjectRow], project: str | None) -> list[reports_db.ProjectRow]:
    """Return the projects a report covers: one by code (default: the first), or ALL of the caller's.

    A project the caller does not serve is answered 404, like one that does not exist.
    """
    code = (project or "").strip()
    if not code:
        chosen = mine[:1]
    elif code == ALL_PROJECTS:
        chosen = mine
    else:
        chosen = [x for x in mine if x.code == code]
    if not chosen:
        raise NotFoundException("project")
    return chosen


async def scope(conn: AsyncConnection, p: Principal, project: str | None) -> list[reports_db.ProjectRow]:
    return pick(await reports_db.projects_of(conn, p.project_ids), project)


def focus_of(raw: str, choices: dict[str, list[tuple[int, str]]]) -> reports_db.Focus:
    """Return the team or engineer a report is narrowed to; 422 for one not among the choices."""
    parsed = stats.parse_focus(raw)
    if parsed is None:
        return reports_db.EVERYONE
    kind, ident = parsed
    name = dict(choices[kind]).get(ident)
    if name is None:
        raise DomainError("invalid", N_("Choose a team or an engineer from the list"), field="focus")
    if kind == "team":
        return reports_db.Focus(team_id=ident, name=name)
    return reports_db.Focus(engineer_id=ident, name=name)


def today_in(projects: list[reports_db.ProjectRow], now: datetime) -> date:
    return now.astimezone(ZoneInfo(projects[0].tz)).date()


@dataclass
class Built:
    report: reports_db.Report
    choices: dict[str, list[tuple[int, str]]]
    mine: list[reports_db.ProjectRow]


async def build(engine: AsyncEngine, p: Principal, q: Query) -> Built:
    """Resolve scope, period and focus (404 on a foreign project, 422 on bad input); run the report."""
    now = clock.now()
    async with engine.connect() as conn:
        mine = await reports_db.projects_of(conn, p.project_ids)
        projects = pick(mine, q.project)
        period = stats.parse_period(q.month, q.start, q.end, today_in(projects, now))
        choices = await reports_db.focus_choices(conn, projects)
        focus = focus_of(q.focus, choices)
    rep = await reports_db.full_report(engine, projects, period, now, focus)
    return Built(rep, choices, mine)


# ---- presentation helpers -----------------------------------------------------------------


def duration_text(seconds: float | None) -> str:
    parts = stats.split_duration(seconds)
    if parts is None:
        return "—"
    unit, n = parts
    shown = f"{n:g}"
    if unit == "min":
        return _("%(n)s min", n=shown)
    if unit == "h":
        return _("%(n)s h", n=shown)
    return _("%(n)s d", n=shown)


def bucket_label(lo: float, hi: float | None) -> str:
    if lo == 0 and hi is not None:
        return _("under %(h)s h", h=f"{hi:g}")
    if hi is None:
        return _("%(h)s h or more", h=f"{lo:g}")
    return _("%(a)s–%(b)s h", a=f"{lo:g}", b=f"{hi:g}")


def row_name(breakdown: str, row: reports_db.Row) -> str:
    if breakdown == "category":
        return label(row.name)
    if row.key is None:
        return {"team": _("(no team)"), "engineer": _("(unassigned)")}.get(breakdown, _("All"))
    return row.name


def period_text(period: stats.Period) -> str:
    return period.month or f"{period.start.isoformat()} – {period.end.isoformat()}"


def local_text(rep: reports_db.Report, at: datetime) -> str:
    return at.astimezone(ZoneInfo(rep.projects[0].tz)).strftime("%Y-%m-%d %H:%M")


def page_context(
    rep: reports_db.Report,
    q: Query,
    user: Principal | None,
    all_projects: list[Any],
    choices: dict[str, list[tuple[int, str]]] | None = None,
) -> dict[str, Any]:
    return {
        "user": user,
        "rep": rep,
        "q": q,
        "all_projects": all_projects,
        "choices": choices or {"team": [], "engineer": []},
        "ALL": ALL_PROJECTS,
        "definitions": stats.DEFINITIONS,
        "notes": stats.NOTES,
        "targets": stats.TARGETS,
        "pct": stats.percent,
        "duration_text": duration_text,
        "bucket_label": bucket_label,
        "row_name": row_name,
        "period_text": period_text(rep.period),
        "as_of_text": local_text(rep, rep.as_of),
        "request_path": "/reports" + (f"?{q.qs()}" if q.qs() else ""),
        # The exports name the period shown, so a download matches the page it came from.
        "export_qs": Query(
            project=q.project or rep.projects[0].code,
            month=rep.period.month or "",
            start="" if rep.period.month else rep.period.start.isoformat(),
            end="" if rep.period.month else rep.period.end.isoformat(),
            focus=q.focus,
        ).qs(),
    }


def render_report(
    rep: reports_db.Report,
    q: Query,
    user: Principal | None,
    all_projects: list[Any],
    choices: dict[str, list[tuple[int, str]]] | None = None,
) -> str:
    return render("reports.html", **page_context(rep, q, user, all_projects, choices))


# ---- export tables (Chinese headers: the export is the company's monthly record) ----------------

RATE_HEADERS = [
    "名称",
    "受理数",
    "完成数",
    "完成率",
    "时效已判定数",
    "及时数",
    "及时率",
    "时效待定数",
    "回访数",
    "回访率",
    "评价数",
    "满意",
    "基本满意",
    "不满意",
    "满意率",
    "返修数",
    "返修率",
    "一次修复数",
    "一次修复率",
    "未完结数",
    "工时",
    "平均完工时长(小时)",
]
SHEETS = [
    ("总览", "overview"),
    ("按项目", "project"),
    ("按班组", "team"),
    ("按师傅", "engineer"),
    ("按类别", "category"),
    ("超时", "breaches"),
    ("未完成超24小时", "unfinished"),
    ("口径", "definitions"),
]

Cell = str | int | float | None
Table = tuple[str | None, list[str], list[list[Cell]]]


def _rate_cell(value: float | None, as_text: bool) -> Cell:
    if value is None:
        return "—"
    return stats.percent(value) if as_text else round(value, 4)


def _rate_row(name: str, row: reports_db.Row, as_text: bool) -> list[Cell]:
    c, r = row.counts, row.rates
    avg = round(row.completion_avg / 3600, 1) if row.completion_avg is not None else "—"
    return [
        name,
        c.received,
        c.done,
        _rate_cell(r.completion, as_text),
        c.timed,
        c.timely,
        _rate_cell(r.timeliness, as_text),
        c.timing_pending,
        c.called_back,
        _rate_cell(r.callback, as_text),
        c.rated,
        c.satisfied,
        c.fairly,
        c.unsatisfied,
        _rate_cell(r.satisfaction, as_text),
        c.reworked,
        _rate_cell(r.rework, as_text),
        c.first_fix,
        _rate_cell(r.first_fix, as_text),
        c.open,
        round(c.man_hours, 2),
        avg,
    ]


def export_tables(rep: reports_db.Report, as_text: bool) -> list[tuple[str, list[Table]]]:
    """Return [(sheet title, tables)] for the xlsx and csv exports; rates as fractions or "93.5%"."""
    with use_locale("zh_CN"):
        sheets: list[tuple[str, list[Table]]] = []
        head: list[list[Cell]] = [
            ["项目", "、".join(f"{p.name}({p.code})" for p in rep.projects)],
            ["期间", period_text(rep.period)],
            ["范围", rep.focus.name or "全部"],
            ["生成时间", local_text(rep, rep.now)],
        ]
        dur_rows: list[list[Cell]] = []
        for key, name in (
            ("response", "响应(受理→首次接单)"),
            ("arrival", "到场(受理→首次到场)"),
            ("completion", "完工(受理→完工)"),
        ):
            d = rep.durations.get(key, {})
            dur_rows.append([name, d.get("n", 0), _minutes(d.get("p50")), _minutes(d.get("p90"))])
        hist_rows: list[list[Cell]] = [[bucket_label(lo, hi), n] for lo, hi, n in rep.histogram]
        overview: list[Table] = [
            (None, ["项目", "值"], head),
            ("总体指标", RATE_HEADERS, [_rate_row("全部", rep.overview, as_text)]),
            ("时长分布(分钟)", ["时长", "工单数", "中位数", "P90"], dur_rows),
            ("完工时长分布", ["完工时长", "工单数"], hist_rows),
        ]
        sheets.append(("总览", overview))
        for title, key in SHEETS[1:5]:
            if key == "project" and len(rep.projects) < 2:
                continue
            rows = [_rate_row(row_name(key, r), r, as_text) for r in rep.breakdowns.get(key, [])]
            sheets.append((title, [(None, RATE_HEADERS, rows)]))
        sheets.append(
            (
                "超时",
                [
                    (
                        None,
                        ["计时类型", "超时计时数", "超时工单数"],
                        [[label(b["kind"]), b["clocks"], b["orders"]] for b in rep.breaches],
                    )
                ],
            )
        )
        tz = ZoneInfo(rep.projects[0].tz)
        sheets.append(
            (
                "未完成超24小时",
                [
                    (
                        f"截至 {local_text(rep, rep.as_of)}",
                        ["工单号", "受理时间", "状态", "类别", "位置", "班组", "师傅", "已用时(小时)"],
                        [
                            [
                                u["number"],
                                u["received_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                                label(u["status"]),
                                label(u["category"]),
                                u["location"],
                                u["team_name"],
                                u["engineer_name"],
                                round(float(u["age_seconds"]) / 3600, 1),
                            ]
                            for u in rep.unfinished
                        ],
                    )
                ],
            )
        )
        meaning = [[_(name), _(text)] for _a, name, text in stats.DEFINITIONS]
        meaning += [[_(name), _(text)] for name, text in stats.NOTES]
        sheets.append(("口径", [(None, ["指标", "口径"], meaning)]))
        return sheets


def _minutes(seconds: float | None) -> Cell:
    return "—" if seconds is None else round(float(seconds) / 60, 1)


def to_xlsx(sheets: list[tuple[str, list[Table]]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]
    bold = Font(bold=True)
    for title, tables in sheets:
        ws = wb.create_sheet(title)
        for caption, headers, rows in tables:
            if caption:
                ws.append([caption])
                ws.cell(ws.max_row, 1).font = bold
            ws.append(headers)
            for cell in ws[ws.max_row]:
                cell.font = bold
            for row in rows:
                ws.append(row)
                for cell, header in zip(ws[ws.max_row], headers, strict=False):
                    if header.endswith("率") and isinstance(cell.value, float):
                        cell.number_format = "0.0%"
            ws.append([])
        ws.column_dimensions["A"].width = 22
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def to_csv(sheets: list[tuple[str, list[Table]]], only: str | None = None) -> str:
    """All sheets one after another (a title row, then each table), or only one sheet's table."""
    buf = io.StringIO()
    w = csv.writer(buf)
    for title, tables in sheets:
        if only and title != only:
            continue
        if not only:
            w.writerow([f"[{title}]"])
        for caption, headers, rows in tables:
            if caption and not only:
                w.writerow([caption])
            w.writerow(headers)
            w.writerows(_csv_rows(rows))
            if not only:
                w.writerow([])
    return buf.getvalue()


def _csv_rows(rows: Iterable[list[Cell]]) -> Iterable[list[Cell]]:
    return ([("" if v is None else v) for v in r] for r in rows)


def _filename(rep: reports_db.Report, ext: str) -> str:
    code = rep.projects[0].code if len(rep.projects) == 1 else ALL_PROJECTS
    f = rep.focus  # ids, not names: the plain filename= must stay ASCII
    focus = f"-team{f.team_id}" if f.team_id else f"-engineer{f.engineer_id}" if f.engineer_id else ""
    return f"baoxiu-report-{code}{focus}-{period_text(rep.period).replace(' – ', '_')}.{ext}"


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"}


# ---- routes -------------------------------------------------------------------------------


def _query(
    project: str | None, month: str | None, start: str | None, end: str | None, focus: str | None
) -> Query:
    # Taken whole: parse_period refuses anything that is not exactly a date (nothing is cut off).
    return Query(*((v or "").strip() for v in (project, month, start, end, focus)))


@get("/reports", guards=[staff_guard], opt={"roles": REPORT_ROLES})
async def report_page(
    request: Request[Any, Any, Any],
    project: OptQuery = None,
    month: OptQuery = None,
    start: OptQuery = None,
    end: OptQuery = None,
    focus: OptQuery = None,
) -> Response[str]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    q = _query(project, month, start, end, focus)
    b = await build(rt.engine, p, q)
    return Response(render_report(b.report, q, p, b.mine, b.choices), media_type="text/html")


@get("/reports/export.xlsx", guards=[staff_guard], opt={"roles": REPORT_ROLES})
async def export_xlsx(
    request: Request[Any, Any, Any],
    project: OptQuery = None,
    month: OptQuery = None,
    start: OptQuery = None,
    end: OptQuery = None,
    focus: OptQuery = None,
) -> Response[bytes]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    rep = (await build(rt.engine, p, _query(project, month, start, end, focus))).report
    return Response(
        to_xlsx(export_tables(rep, as_text=False)),
        headers=_attachment(_filename(rep, "xlsx")),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


@get("/reports/export.csv", guards=[staff_guard], opt={"roles": REPORT_ROLES})
async def export_csv(
    request: Request[Any, Any, Any],
    project: OptQuery = None,
    month: OptQuery = None,
    start: OptQuery = None,
    end: OptQuery = None,
    focus: OptQuery = None,
    sheet: OptQuery = None,
) -> Response[bytes]:
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    # `sheet` names one sheet by its title (按班组) or key (team) for a single plain table.
    only = None
    if sheet:
        only = next((title for title, key in SHEETS if sheet.strip() in (title, key)), None)
        if only is None:
            raise DomainError("invalid", N_("Unknown value %(value)s"), field="sheet", value=sheet[:20])
    rep = (await build(rt.engine, p, _query(project, month, start, end, focus))).report
    # The BOM makes Excel read the file as UTF-8 (Chinese headers) instead of the ANSI code page.
    body = "\ufeff" + to_csv(export_tables(rep, as_text=True), only=only)
    return Response(
        body.encode("utf-8"), headers=_attachment(_filename(rep, "csv")), media_type="text/csv; charset=utf-8"
    )


@get("/reports/panel", guards=[board_guard])
async def report_panel(request: Request[Any, Any, Any], project: OptQuery = None) -> Response[str]:
    """A small fragment for the wall board: today and this month (any staff or kiosk of the project)."""
    rt: Runtime = request.app.state.runtime
    p = current(request)
    assert p is not None
    now = clock.now()
    async with rt.engine.begin() as conn:  # a short transaction of its own (see flush_facts)
        await reports_db.flush_facts(conn)
    async with rt.engine.connect() as conn:
        projects = await scope(conn, p, project)
        proj = projects[0]
        figures = await reports_db.panel(conn, proj, today_in([proj], now), now)
    html = render(
        "fragments/report_panel.html",
        project=proj,
        f=figures,
        month_rates=stats.rates(figures.month),
        today_rates=stats.rates(figures.today),
        pct=stats.percent,
    )
    return Response(html, media_type="text/html")


ROUTES = [report_page, export_xlsx, export_csv, report_panel]
