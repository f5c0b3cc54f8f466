"""The lifecycle table drives these tests: every step allowed and refused, per role and status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.lifecycle import ACTIONS, Actor, Effect, OrderView, allowed_actions, decide
from server.domain.messages import DomainError
from server.domain.vocab import Department, Kind, Role, Status

ENGINEER, OTHER_ENGINEER, HANDLER, SUPERVISOR = 11, 12, 21, 31
FUTURE = (datetime(2030, 1, 1, tzinfo=UTC)).isoformat()

GOOD_INPUTS: dict[str, object] = {
    "assignee_id": ENGINEER,
    "reason": "业主要求",
    "code": "123456",
    "promised_at": FUTURE,
    "next_at": FUTURE,
    "appointment_at": FUTURE,
    "result": "已修好",
    "method": "phone",
    "rating": "satisfied",
    "agreed_yuan": "100",
}


def actor(
    role: Role,
    staff_id: int | None = None,
    teams: frozenset[int] = frozenset({1}),
    dept: Department | None = None,
) -> Actor:
    ids = {Role.ENGINEER: ENGINEER, Role.HANDLER: HANDLER, Role.SUPERVISOR: SUPERVISOR}
    return Actor(
        id=staff_id or ids.get(role, 99),
        name=role.value,
        roles=frozenset({role}),
        team_ids=teams,
        department=dept or (Department.ORDER if role is Role.HANDLER else None),
    )


def order(
    status: Status, kind: Kind = Kind.REPAIR, assignee: int | None = ENGINEER, **kw: object
) -> OrderView:
    base: dict[str, object] = dict(
        status=status,
        kind=kind,
        version=1,
        assignee_id=assignee,
        team_id=1,
        department=Department.ORDER if kind is Kind.MATTER else Department.ENGINEERING,
        verification_code="123456",
        paused_from=Status.ON_SITE,
        designated_engineer_id=None,
    )
    base.update(kw)
    return OrderView(**base)  # type: ignore[arg-type]


CASES = [(a, r, s) for a in ACTIONS for r in Role for s in Status]


@pytest.mark.parametrize(
    ("action", "role", "status"), CASES, ids=[f"{a}-{r.value}-{s.value}" for a, r, s in CASES]
)
def test_each_step_is_allowed_exactly_where_the_table_says(action, role, status):
    spec = ACTIONS[action]
    kind = Kind.MATTER if action == "handle" else Kind.REPAIR
    who = actor(role)
    # The actor is the assignee here: the person rules have their own tests below.
    o = order(status, kind, assignee=None if action == "handle" else who.id)
    expected = status in spec.from_statuses and role in spec.roles
    inputs = {**GOOD_INPUTS, "reason": "parts"} if action == "pause" else GOOD_INPUTS
    try:
        t = decide(o, action, who, inputs)
    except DomainError as e:
        assert not expected, f"refused ({e.kind}: {e.msgid})"
        assert e.kind in ("conflict", "forbidden")
        if status not in spec.from_statuses:
            assert e.kind == "conflict"
        else:
            assert e.kind == "forbidden"
        return
    assert expected
    assert t.from_status is status
    assert t.to_status in set(Status)


def test_the_grab_loser_is_told_who_won():
    o = order(Status.ACCEPTED, assignee_name="张师傅")
    with pytest.raises(DomainError) as e:
        decide(o, "grab", actor(Role.ENGINEER, OTHER_ENGINEER), {})
    assert e.value.kind == "conflict" and e.value.params["engineer"] == "张师傅"


def test_grab_by_engineer_outside_the_team_is_refused():
    with pytest.raises(DomainError) as e:
        decide(order(Status.POOLED, assignee=None, team_id=7), "grab", actor(Role.ENGINEER), {})
    assert e.value.kind == "forbidden"


def test_only_the_assignee_may_accept():
    with pytest.raises(DomainError) as e:
        decide(order(Status.ASSIGNED), "accept", actor(Role.ENGINEER, OTHER_ENGINEER), {})
    assert e.value.kind == "forbidden"


def test_arrival_needs_the_customers_code():
    o = order(Status.ACCEPTED)
    with pytest.raises(DomainError) as e:
        decide(o, "arrive", actor(Role.ENGINEER), {"code": "000000"})
    assert e.value.field == "code"
    with pytest.raises(DomainError):
        decide(o, "arrive", actor(Role.ENGINEER), {})
    assert decide(o, "arrive", actor(Role.ENGINEER), {"code": "123456"}).to_status is Status.ON_SITE


def test_only_the_desk_records_a_phone_confirmation():
    o = order(Status.ACCEPTED)
    with pytest.raises(DomainError) as e:
        decide(o, "arrive", actor(Role.ENGINEER), {"phone_confirmed": "1"})
    assert e.value.kind == "forbidden"
    t = decide(o, "arrive", actor(Role.DISPATCHER), {"phone_confirmed": "1"})
    assert t.event_inputs["confirmed_by"] == "phone"


def test_finish_over_500_yuan_needs_agreement_and_prepayment():
    o = order(Status.ON_SITE)
    with pytest.raises(DomainError) as e:
        decide(o, "finish", actor(Role.ENGINEER), {"result": "换管", "labour_yuan": "600"})
    assert e.value.kind == "invalid"
    ok = order(Status.ON_SITE, agreement_recorded=True, prepaid=True)
    t = decide(ok, "finish", actor(Role.ENGINEER), {"result": "换管", "labour_yuan": "600"})
    assert t.changes["total_fen"] == 60000


def test_finish_records_material_in_fen():
    t = decide(
        order(Status.ON_SITE),
        "finish",
        actor(Role.ENGINEER),
        {
            "result": "换龙头",
            "labour_yuan": "20",
            "material_name": "水龙头",
            "material_qty": "2",
            "material_price_yuan": "35.5",
        },
    )
    assert t.changes["material_fen"] == 7100 and t.changes["total_fen"] == 9100
    assert Effect.SAVE_MATERIALS in t.effects


def test_pause_needs_a_reason_from_the_list_and_a_promised_time():
    o = order(Status.ON_SITE)
    with pytest.raises(DomainError) as e:
        decide(o, "pause", actor(Role.ENGINEER), {"reason": "lunch", "promised_at": FUTURE})
    assert e.value.field == "reason"
    t = decide(o, "pause", actor(Role.ENGINEER), {"reason": "parts", "promised_at": FUTURE})
    assert t.to_status is Status.PAUSED and t.changes["paused_from"] == "on_site"


def test_resume_returns_to_where_it_paused():
    t = decide(order(Status.PAUSED, paused_from=Status.ACCEPTED), "resume", actor(Role.ENGINEER), {})
    assert t.to_status is Status.ACCEPTED


def test_unsatisfied_callback_notifies_the_supervisor_and_offers_reopen():
    t = decide(
        order(Status.DONE), "callback", actor(Role.DISPATCHER), {"method": "phone", "rating": "unsatisfied"}
    )
    assert t.to_status is Status.CLOSED
    assert {Effect.NOTIFY_SUPERVISOR, Effect.OFFER_REOPEN} <= set(t.effects)


def test_reopen_counts_the_rework():
    t = decide(order(Status.CLOSED, reopen_count=1), "reopen", actor(Role.SUPERVISOR), {"reason": "又漏了"})
    assert t.changes["reopen_count"] == 2 and t.to_status is Status.ASSIGNED


def test_cancel_needs_a_reason():
    with pytest.raises(DomainError) as e:
        decide(order(Status.POOLED), "cancel", actor(Role.DISPATCHER), {"reason": "  "})
    assert e.value.field == "reason"


def test_a_matter_is_handled_by_its_department():
    o = order(Status.ASSIGNED, Kind.MATTER, assignee=None)
    with pytest.raises(DomainError):
        decide(o, "handle", actor(Role.HANDLER, dept=Department.CLEANING), {"result": "已处理"})
    t = decide(o, "handle", actor(Role.HANDLER), {"result": "已处理"})
    assert t.to_status is Status.DONE and t.changes["assignee_id"] == HANDLER


def test_unknown_action_is_not_found():
    with pytest.raises(DomainError) as e:
        decide(order(Status.NEW), "teleport", actor(Role.SUPERVISOR), {})
    assert e.value.kind == "not_found"


def test_allowed_actions_are_the_buttons_to_show():
    assert "grab" in allowed_actions(order(Status.POOLED, assignee=None), actor(Role.ENGINEER))
    assert "grab" not in allowed_actions(order(Status.POOLED, assignee=None, team_id=9), actor(Role.ENGINEER))
    assert allowed_actions(order(Status.CLOSED), actor(Role.ENGINEER)) == []


# ---- random walks ----------------------------------------------------------------------------

ACTORS = [
    actor(Role.ENGINEER),
    actor(Role.ENGINEER, OTHER_ENGINEER),
    actor(Role.DISPATCHER),
    actor(Role.SUPERVISOR),
    actor(Role.HANDLER),
    actor(Role.MANAGER),
    actor(Role.FINANCE),
    actor(Role.ADMIN),
    actor(Role.MONITOR),
]
INPUT_CHOICES = [GOOD_INPUTS, {}, {"reason": "x", "code": "000000"}, {**GOOD_INPUTS, "rating": "unsatisfied"}]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(ACTIONS)),
            st.sampled_from(range(len(ACTORS))),
            st.sampled_from(range(len(INPUT_CHOICES))),
        ),
        max_size=40,
    ),
    st.sampled_from([Kind.REPAIR, Kind.MATTER, Kind.ENTRAPMENT]),
)
def test_random_steps_never_leave_the_machine_nor_lose_history(steps, kind):
    o = order(Status.POOLED if kind is Kind.REPAIR else Status.ASSIGNED, kind, assignee=None)
    history: list[tuple[Status, Status]] = []
    for action, who, inputs in steps:
        try:
            t = decide(o, action, ACTORS[who], INPUT_CHOICES[inputs])
        except DomainError as e:
            assert e.kind in ("conflict", "forbidden", "invalid", "not_found")
            continue
        assert t.from_status is o.status
        assert t.to_status in set(Status)
        history.append((t.from_status, t.to_status))
        changes = {
            k: v
            for k, v in t.changes.items()
            if k
            in ("assignee_id", "paused_from", "reopen_count", "agreement_recorded", "prepaid", "total_fen")
        }
        paused_from = changes.get("paused_from", o.paused_from)
        o = OrderView(
            status=t.to_status,
            kind=o.kind,
            version=o.version + 1,
            assignee_id=changes.get("assignee_id", o.assignee_id),  # type: ignore[arg-type]
            team_id=o.team_id,
            department=o.department,
            verification_code=o.verification_code,
            paused_from=Status(paused_from) if paused_from else None,
            designated_engineer_id=None,
            fee_total_fen=int(changes.get("total_fen", o.fee_total_fen)),  # type: ignore[arg-type]
            agreement_recorded=bool(changes.get("agreement_recorded", o.agreement_recorded)),
            prepaid=bool(changes.get("prepaid", o.prepaid)),
            reopen_count=int(changes.get("reopen_count", o.reopen_count)),  # type: ignore[arg-type]
        )
    # The history is a chain: each step starts where the previous one ended.
    for (_, prev_to), (nxt_from, _) in pairwise(history):
        assert prev_to is nxt_from


def test_dates_in_inputs_must_be_dates():
    with pytest.raises(DomainError) as e:
        decide(
            order(Status.ON_SITE),
            "unfinished",
            actor(Role.ENGINEER),
            {"reason": "缺件", "next_at": "tomorrow"},
        )
    assert e.value.field == "next_at"
    t = decide(
        order(Status.ON_SITE),
        "unfinished",
        actor(Role.ENGINEER),
        {"reason": "缺件", "next_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
    )
    assert t.to_status is Status.UNFINISHED
