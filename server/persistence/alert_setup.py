"""Alert configuration in the database: escalation chains, channels, contractors, elevators.

Rules (what a valid chain, channel, contractor or elevator is) live in server.domain
(escalation, alert_setup); this module reads and writes the rows, and audits every change in
admin_events.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain import alert_setup as rules
from server.domain import escalation as esc
from server.domain.messages import N_, DomainError, ValidationErrors
from server.persistence.admin import audit

log = logging.getLogger("baoxiu.alerts.setup")


async def _taken(conn: AsyncConnection, sql_where: str, params: Mapping[str, Any]) -> bool:
    """Whether another row (not :i) of the table and condition exists."""
    return (
        await conn.execute(text(f"SELECT 1 {sql_where} AND id IS DISTINCT FROM :i"), params)
    ).first() is not None


async def _store(
    conn: AsyncConnection,
    table: str,
    project_id: int,
    row_id: int | None,
    data: Mapping[str, Any],
    missing: str,
) -> tuple[int, str]:
    """Insert the project's row (row_id None) or change it; return its id and "add" / "change".

    `table` and the keys of `data` are this module's constants, never input."""
    cols = list(data)
    params = {"p": project_id, "i": row_id, **data}
    if row_id is None:
        sql = (
            f"INSERT INTO {table} (project_id, {', '.join(cols)}) "
            f"VALUES (:p, {', '.join(':' + c for c in cols)}) RETURNING id"
        )
        return (await conn.execute(text(sql), params)).scalar_one(), "add"
    sets = ", ".join(f"{c} = :{c}" for c in cols)
    found = (
        await conn.execute(
            text(f"UPDATE {table} SET {sets} WHERE id = :i AND project_id = :p RETURNING id"), params
        )
    ).first()
    if found is None:
        raise DomainError("not_found", missing)
    return row_id, "change"


# ---- escalation chains ---------------------------------------------------------------------


async def _project_staff(conn: AsyncConnection, project_id: int) -> dict[int, dict[str, Any]]:
    rows = (
        await conn.execute(
            text(
                "SELECT s.id, s.display_name AS name, s.role FROM staff s JOIN staff_projects sp ON sp.staff_id = s.id "
                "WHERE sp.project_id = :p AND s.active AND s.role IN ('engineer', 'supervisor', 'manager') ORDER BY s.id"
            ),
            {"p": project_id},
        )
    ).mappings()
    return {r["id"]: dict(r) for r in rows}


async def chain_for(conn: AsyncConnection, project_id: int, kind: str) -> esc.ChainConfig:
    """The project's chain for this kind, else the all-projects one, else the kind's default.

    A row that does not validate (edited by hand, a person since removed) is skipped with a log
    line: opening an alert never fails because of its configuration.
    """
    rows = (
        await conn.execute(
            text(
                "SELECT id, project_id, steps, remind_after_minutes FROM escalation_chains "
                "WHERE (project_id = :p OR project_id IS NULL) AND alert_kind = :k ORDER BY project_id NULLS LAST"
            ),
            {"p": project_id, "k": kind},
        )
    ).mappings()
    for row in rows:
        try:
            config = esc.parse_chain(_json(row["steps"]), row["remind_after_minutes"])
        except DomainError as e:
            log.warning(
                "escalation chain %s (%s) is invalid (%s %s); using the next one", row["id"], kind, e.field, e
            )
            continue
        return config
    return esc.default_chain(kind)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


async def chains_of(conn: AsyncConnection, project_id: int) -> dict[str, dict[str, Any]]:
    """Per alert kind: the chain in force and where it comes from ('project', 'all', 'default')."""
    rows = (
        await conn.execute(
            text(
                "SELECT alert_kind, project_id FROM escalation_chains WHERE project_id = :p OR project_id IS NULL"
            ),
            {"p": project_id},
        )
    ).all()
    sources = {}
    for kind, pid in rows:
        if pid is not None or kind not in sources:
            sources[kind] = "project" if pid is not None else "all"
    out = {}
    for kind in esc.ALERT_KINDS:
        out[kind] = {
            "config": await chain_for(conn, project_id, kind),
            "source": sources.get(kind, "default"),
        }
    return out


def chain_from_form(form: Mapping[str, str]) -> tuple[list[dict[str, Any]], Any, list[int]]:
    """Rows target_0/wait_0, target_1/wait_1, … in order; a row with no target is left out.

    Return the steps, the reminder minutes and, per step, the form row it came from."""
    steps: list[dict[str, Any]] = []
    rows: list[int] = []
    indexes = sorted(int(k[7:]) for k in form if k.startswith("target_") and k[7:].isdigit())
    for i in indexes:
        target = (form.get(f"target_{i}") or "").strip()
        if not target:
            continue
        wait = (form.get(f"wait_{i}") or "").strip()
        steps.append({"target": target, "wait_after_minutes": int(wait) if wait.isdigit() else wait or None})
        rows.append(i)
    remind = (form.get("remind_after_minutes") or "").strip()
    return steps, int(remind) if remind.isdigit() else remind or None, rows


async def save_chain(
    conn: AsyncConnection,
    project_id: int,
    kind: str,
    steps: Any,
    remind_after_minutes: Any,
    actor_id: int | None,
) -> esc.ChainConfig:
    """Validate and store the project's chain for `kind`; running alerts keep their frozen one."""
    if kind not in esc.ALERT_KINDS:
        raise DomainError("not_found", N_("Unknown value %(value)s"), field="kind", value=str(kind)[:20])
    try:
        config = esc.parse_chain(
            steps, esc.DEFAULT_REMIND_AFTER_MINUTES if remind_after_minutes is None else remind_after_minutes
        )
    except DomainError as e:
        raise ValidationErrors({e.field or "steps": (e.msgid, dict(e.params))}) from e
    people = await _project_staff(conn, project_id)
    for i, s in enumerate(config.steps):
        if s.target.startswith("staff:") and int(s.target[6:]) not in people:
            raise ValidationErrors(
                {f"steps.{i}.target": (N_("Not someone of this project who can stand in this slot"), {})}
            )
    await conn.execute(
        text(
            "INSERT INTO escalation_chains (project_id, alert_kind, steps, remind_after_minutes) "
            "VALUES (:p, :k, CAST(:s AS jsonb), :r) ON CONFLICT (project_id, alert_kind) "
            "DO UPDATE SET steps = EXCLUDED.steps, remind_after_minutes = EXCLUDED.remind_after_minutes"
        ),
        {
            "p": project_id,
            "k": kind,
            "s": json.dumps(esc.chain_json(config.steps)),
            "r": config.remind_after_minutes,
        },
    )
    await audit(
        conn,
        actor_id,
        "escalation_chain",
        "change",
        {
            "project_id": project_id,
            "kind": kind,
            "steps": esc.chain_json(config.steps),
            "remind_after_minutes": config.remind_after_minutes,
        },
    )
    return config


async def reset_chain(conn: AsyncConnection, project_id: int, kind: str, actor_id: int | None) -> None:
    """Back to the all-projects (or default) chain for this kind."""
    row = (
        await conn.execute(
            text("DELETE FROM escalation_chains WHERE project_id = :p AND alert_kind = :k RETURNING steps"),
            {"p": project_id, "k": kind},
        )
    ).first()
    if row is not None:
        await audit(
            conn,
            actor_id,
            "escalation_chain",
            "reset",
            {"project_id": project_id, "kind": kind, "steps": row[0]},
        )


# ---- channels ------------------------------------------------------------------------------


async def channels_of(conn: AsyncConnection, project_id: int) -> list[dict[str, Any]]:
    rows = (
        await conn.execute(
            text(
                "SELECT id, channel, url, name, token, active FROM alert_channels WHERE project_id = :p "
                "ORDER BY active DESC, array_position(ARRAY['sms','wecom','webhook'], channel), id"
            ),
            {"p": project_id},
        )
    ).mappings()
    return [dict(r) for r in rows]


async def group_channels(conn: AsyncConnection, project_id: int) -> list[dict[str, Any]]:
    """The active group channels (WeCom robots, webhooks) every step also posts to."""
    return [c for c in await channels_of(conn, project_id) if c["active"] and c["channel"] != "sms"]


async def sms_gateway_id(conn: AsyncConnection, project_id: int) -> int | None:
    return (
        await conn.execute(
            text("SELECT id FROM alert_channels WHERE project_id = :p AND channel = 'sms' AND active"),
            {"p": project_id},
        )
    ).scalar()


async def save_channel(
    conn: AsyncConnection,
    project_id: int,
    raw: Mapping[str, Any],
    actor_id: int | None,
    channel_id: int | None = None,
) -> int:
    data = rules.parse_channel(raw)
    if channel_id is not None and not data["token"]:
        # The token is never shown again; an empty field keeps the stored one.
        data["token"] = (
            await conn.execute(
                text("SELECT token FROM alert_channels WHERE id = :i AND project_id = :p"),
                {"i": channel_id, "p": project_id},
            )
        ).scalar() or ""
    if data["channel"] == "sms" and data["active"]:
        sms = "FROM alert_channels WHERE project_id = :p AND channel = 'sms' AND active"
        if await _taken(conn, sms, {"p": project_id, "i": channel_id}):
            raise ValidationErrors(
                {"channel": (N_("The project has an SMS gateway already; switch it off first"), {})}
            )
    params = {"p": project_id, "i": channel_id, **data}
    if await _taken(
        conn, "FROM alert_channels WHERE project_id = :p AND channel = :channel AND url = :url", params
    ):
        raise ValidationErrors({"url": (N_("This channel is configured already"), {})})
    channel_id, action = await _store(
        conn, "alert_channels", project_id, channel_id, data, N_("No such channel")
    )
    details = {
        "project_id": project_id,
        "channel_id": channel_id,
        **data,
        "token": "***" if data["token"] else "",
    }
    await audit(conn, actor_id, "alert_channel", action, details)
    return channel_id


# ---- contractors and elevators -------------------------------------------------------------


async def contractors_of(
    conn: AsyncConnection, project_id: int, active_only: bool = False
) -> list[dict[str, Any]]:
    rows = (
        await conn.execute(
            text(
                "SELECT c.*, (SELECT count(*) FROM elevators e WHERE e.contractor_id = c.id AND e.active) AS elevators "
                "FROM elevator_contractors c WHERE c.project_id = :p AND (c.active OR NOT :only) ORDER BY c.active DESC, c.name"
            ),
            {"p": project_id, "only": active_only},
        )
    ).mappings()
    return [dict(r) for r in rows]


async def save_contractor(
    conn: AsyncConnection,
    project_id: int,
    raw: Mapping[str, Any],
    actor_id: int | None,
    contractor_id: int | None = None,
) -> int:
    data = rules.parse_contractor(raw)
    params = {"p": project_id, "i": contractor_id, **data}
    if await _taken(conn, "FROM elevator_contractors WHERE project_id = :p AND name = :name", params):
        raise ValidationErrors({"name": (N_("This name is taken"), {})})
    contractor_id, action = await _store(
        conn, "elevator_contractors", project_id, contractor_id, data, N_("No such contractor")
    )
    await audit(
        conn,
        actor_id,
        "elevator_contractor",
        action,
        {"project_id": project_id, "contractor_id": contractor_id, **data},
    )
    return contractor_id


async def elevators_of(
    conn: AsyncConnection, project_id: int, active_only: bool = False
) -> list[dict[str, Any]]:
    rows = (
        await conn.execute(
            text(
                "SELECT e.id, e.code, e.name, e.building_id, e.contractor_id, e.active, b.name AS building_name, "
                "c.name AS contractor_name FROM elevators e LEFT JOIN buildings b ON b.id = e.building_id "
                "LEFT JOIN elevator_contractors c ON c.id = e.contractor_id "
                "WHERE e.project_id = :p AND (e.active OR NOT :only) ORDER BY e.active DESC, b.code NULLS LAST, e.name, e.code"
            ),
            {"p": project_id, "only": active_only},
        )
    ).mappings()
    return [dict(r) for r in rows]


async def buildings_of(conn: AsyncConnection, project_id: int) -> list[dict[str, Any]]:
    rows = (
        await conn.execute(
            text("SELECT id, code, name FROM buildings WHERE project_id = :p ORDER BY code"),
            {"p": project_id},
        )
    ).mappings()
    return [dict(r) for r in rows]


async def save_elevator(
    conn: AsyncConnection,
    project_id: int,
    raw: Mapping[str, Any],
    actor_id: int | None,
    elevator_id: int | None = None,
) -> int:
    buildings = [b["id"] for b in await buildings_of(conn, project_id)]
    contractors = [c["id"] for c in await contractors_of(conn, project_id)]
    data = rules.parse_elevator(raw, buildings, contractors)
    if await _taken(conn, "FROM elevators WHERE code = :code", {"i": elevator_id, **data}):
        raise ValidationErrors({"code": (N_("This code is taken"), {})})
    elevator_id, action = await _store(
        conn, "elevators", project_id, elevator_id, data, N_("No such elevator")
    )
    await audit(
        conn, actor_id, "elevator", action, {"project_id": project_id, "elevator_id": elevator_id, **data}
    )
    return elevator_id


async def elevator_by_code(conn: AsyncConnection, code: str, *, lock: bool = False) -> dict[str, Any] | None:
    """An active elevator with its project and building; `lock` holds its row until commit, so two
    events of one elevator are handled one after the other."""
    row = (
        (
            await conn.execute(
                text(
                    "SELECT e.*, p.code AS project_code, b.name AS building_name FROM elevators e "
                    "JOIN projects p ON p.id = e.project_id LEFT JOIN buildings b ON b.id = e.building_id "
                    "WHERE e.code = :c AND e.active" + (" FOR UPDATE OF e" if lock else "")
                ),
                {"c": code},
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def delivery_target(conn: AsyncConnection, payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The URL (and token) an outbox row goes to now: its channel's or contractor's current row."""
    if payload.get("channel_id"):
        row = (
            (
                await conn.execute(
                    text("SELECT url, token FROM alert_channels WHERE id = :i AND active"),
                    {"i": payload["channel_id"]},
                )
            )
            .mappings()
            .first()
        )
    else:
        row = (
            (
                await conn.execute(
                    text(
                        "SELECT webhook AS url, '' AS token FROM elevator_contractors WHERE id = :i AND active AND webhook <> ''"
                    ),
                    {"i": payload.get("contractor_id")},
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


# ---- demo ----------------------------------------------------------------------------------


async def seed_demo(conn: AsyncConnection, project_id: int) -> None:
    """The demo's entrapment chain (the default, configured) and two elevators with their contractor."""
    await conn.execute(
        text(
            "INSERT INTO escalation_chains (project_id, alert_kind, steps, remind_after_minutes) "
            "VALUES (:p, 'entrapment', CAST(:s AS jsonb), 20)"
        ),
        {"p": project_id, "s": json.dumps(esc.chain_json(esc.DEFAULT_CHAIN))},
    )
    contractor = (
        await conn.execute(
            text(
                "INSERT INTO elevator_contractors (project_id, name, phone) VALUES (:p, '迅达电梯维保', '13800138000') "
                "RETURNING id"
            ),
            {"p": project_id},
        )
    ).scalar_one()
    for code, building, name in (("DEMO-E01", "1", "1号梯"), ("DEMO-E02", "3", "2号梯")):
        await conn.execute(
            text(
                "INSERT INTO elevators (project_id, code, building_id, name, contractor_id) "
                "SELECT :p, :c, b.id, :n, :k FROM buildings b WHERE b.project_id = :p AND b.code = :b"
            ),
            {"p": project_id, "c": code, "b": building, "n": name, "k": contractor},
        )
