"""The lifecycle table drives these tests: every step allowed and refused, per role and status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.lifecycle import ACTIONS, Actor, Effect, OrderView, Person, allowed_actions, decide
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


GOOD_VALUE: dict[str, object] = {
    "assignee_id": OTHER_ENGINEER,
    "reason": "parts",  # a pause reason from the list; any text for the others
    "code": "123456",
    "promised_at": FUTURE,
    "next_at": FUTURE,
    "appointment_at": FUTURE,
    "result": "已修好",
    "method": "phone",
    "rating": "satisfied",
    "agreed_yuan": "100",
    "remark": "业主下午三点后在家",
}


def good_inputs(action: str) -> dict[str, object]:
    """The table's required inputs of this step, each with a good value."""
    return {name: GOOD_VALUE[name] for name in ACTIONS[action].required}


def right_person(spec_person: Person, who: Actor, kind: Kind) -> dict[str, object]:
    """Order fields that make `who` the person the rule lets act."""
    if spec_person is Person.DEPARTMENT:
        return {"assignee": who.id} if kind is not Kind.MATTER else {"assignee": None}
    if spec_person is Person.TEAM:
        return {"assignee": None, "team_id": next(iter(who.team_ids))}
    return {"assignee": who.id}


def kind_for(action: str) -> Kind:
    return Kind.MATTER if action == "handle" else Kind.REPAIR


CASES = [(a, r, s) for a in ACTIONS for r in Role for s in Status]


@pytest.mark.parametrize(
    ("action", "role", "status"), CASES, ids=[f"{a}-{r.value}-{s.value}" for a, r, s in CASES]
)
def test_each_step_is_allowed_exactly_where_the_table_says(action, role, status):
    spec = ACTIONS[action]
    kind = kind_for(action)
    who = actor(role)
    # The actor is the person the step's rule asks for: the person rules have their own tests.
    o = order(status, kind, **right_person(spec.person, who, kind), fee_total_fen=1000)
    expected = status in spec.from_statuses and role in spec.roles
    try:
        t = decide(o, action, who, good_inputs(action))
    except DomainError as e:
        assert not expected, f"refused ({e.kind}: {e.msgid})"
        if status not in spec.from_statuses:
            assert e.kind == "conflict"
        else:
            assert e.kind == "forbidden"
        assert action not in allowed_actions(o, who)
        return
    assert expected
    assert t.from_status is status
    assert t.to_status in set(Status)
    assert set(t.effects) <= spec.effects, "an effect the table does not declare"
    assert action in allowed_actions(o, who)


KIND_CASES = [(a, k) for a, spec in ACTIONS.items() for k in Kind if k not in spec.kinds]


@pytest.mark.parametrize(("action", "kind"), KIND_CASES, ids=[f"{a}-{k.value}" for a, k in KIND_CASES])
def test_a_step_is_refused_on_kinds_the_table_leaves_out(action, kind):
    spec = ACTIONS[action]
    status = next(iter(spec.from_statuses))
    who = actor(Role.SUPERVISOR)
    with pytest.raises(DomainError) as e:
        decide(order(status, kind, assignee=who.id), action, who, good_inputs(action))
    assert e.value.kind == "conflict"


REQUIRED_CASES = [
    (a, name)
    for a, spec in ACTIONS.items()
    for name in spec.required
    # arrival's code may be replaced by the desk's phone confirmation (its own test)
]


@pytest.mark.parametrize(
    ("action", "missing"), REQUIRED_CASES, ids=[f"{a}-without-{n}" for a, n in REQUIRED_CASES]
)
def test_each_required_input_is_required_naming_the_field(action, missing):
    spec = ACTIONS[action]
    status = next(s for s in Status if s in spec.from_statuses)
    kind = kind_for(action) if kind_for(action) in spec.kinds else next(iter(spec.kinds))
    who = actor(Role.SUPERVISOR)
    o = order(status, kind, **right_person(spec.person, who, kind))
    inputs = {k: v for k, v in good_inputs(action).items() if k != missing}
    with pytest.raises(DomainError) as e:
        decide(o, action, who, inputs)
    assert e.value.kind == "invalid" and e.value.field == missing


PERSON_CASES = [
    (a, r) for a, spec in ACTIONS.items() if spec.person is not Person.ANYONE for r in sorted(spec.roles)
]


@pytest.mark.parametrize(("action", "role"), PERSON_CASES, ids=[f"{a}-{r.value}" for a, r in PERSON_CASES])
def test_the_person_rule_of_each_step(action, role):
    """Wrong person: refused, unless a supervisor (override) or the desk acting for the assignee."""
    spec = ACTIONS[action]
    kind = kind_for(action) if kind_for(action) in spec.kinds else next(iter(spec.kinds))
    status = next(s for s in Status if s in spec.from_statuses)
    who = actor(role, teams=frozenset({1}), dept=Department.ORDER)
    stranger: dict[str, object]
    if spec.person is Person.TEAM:
        stranger = {"assignee": None, "team_id": 9}  # another team's pool
    elif spec.person is Person.DEPARTMENT and kind is Kind.MATTER:
        stranger = {"assignee": None, "department": Department.CLEANING}  # another department's
    else:
        stranger = {"assignee": OTHER_ENGINEER + 100}  # somebody else's order
    o = order(status, kind, **stranger)
    overrides = role is Role.SUPERVISOR or (
        spec.person is Person.ASSIGNEE_OR_DESK and role in {Role.DISPATCHER, Role.MONITOR, Role.MANAGER}
    )
    try:
        decide(o, action, who, good_inputs(action))
    except DomainError as e:
        assert not overrides, f"{role} refused: {e.msgid}"
        assert e.kind == "forbidden"
        assert action not in allowed_actions(o, who)
        return
    assert overrides, f"{role} may act on somebody else's order"


def test_only_the_assigned_engineer_may_arrive_and_finish():
    o = order(Status.ACCEPTED)
    with pytest.raises(DomainError) as e:
        decide(o, "arrive", actor(Role.ENGINEER, OTHER_ENGINEER), {"code": "123456"})
    assert e.value.kind == "forbidden" and "assigned engineer" in e.value.msgid
    with pytest.raises(DomainError):
        decide(order(Status.ON_SITE), "finish", actor(Role.ENGINEER, OTHER_ENGINEER), {"result": "好"})
    assert (
        decide(order(Status.ON_SITE), "finish", actor(Role.SUPERVISOR), {"result": "好"}).to_status
        is Status.DONE
    )


def test_a_handler_accepts_a_matter_routed_to_his_department_only():
    o = order(Status.ASSIGNED, Kind.MATTER, assignee=None, department=Department.ORDER)
    t = decide(o, "accept", actor(Role.HANDLER, dept=Department.ORDER), {})
    assert t.to_status is Status.ACCEPTED and t.changes["assignee_id"] == HANDLER
    with pytest.raises(DomainError) as e:
        decide(o, "accept", actor(Role.HANDLER, dept=Department.GREENING), {})
    assert e.value.kind == "forbidden"


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
    assert e.value.kind == "invalid" and e.value.field == "labour_yuan"
    agreed_only = order(Status.ON_SITE, agreement_recorded=True, agreed_fen=60000)
    with pytest.raises(DomainError):
        decide(agreed_only, "finish", actor(Role.ENGINEER), {"result": "换管", "labour_yuan": "600"})
    ok = order(Status.ON_SITE, agreement_recorded=True, prepaid=True, agreed_fen=60000)
    t = decide(ok, "finish", actor(Role.ENGINEER), {"result": "换管", "labour_yuan": "600"})
    assert t.changes["total_fen"] == 60000
    with pytest.raises(DomainError) as e:
        decide(ok, "finish", actor(Role.ENGINEER), {"result": "换管", "labour_yuan": "650"})
    assert "exceed what the customer agreed" in e.value.msgid


def test_arrival_and_start_are_refused_until_a_big_fee_is_agreed_and_prepaid():
    big = order(Status.ACCEPTED, catalog_fee_fen=80000)
    with pytest.raises(DomainError) as e:
        decide(big, "arrive", actor(Role.ENGINEER), {"code": "123456"})
    assert e.value.kind == "conflict" and "before work starts" in e.value.msgid
    t = decide(big, "record_agreement", actor(Role.DISPATCHER), {"agreed_yuan": "800", "prepaid": "1"})
    assert t.changes == {"agreement_recorded": True, "prepaid": True, "agreed_fen": 80000}
    agreed = order(
        Status.ACCEPTED, catalog_fee_fen=80000, agreement_recorded=True, prepaid=True, agreed_fen=80000
    )
    assert decide(agreed, "arrive", actor(Role.ENGINEER), {"code": "123456"}).to_status is Status.ON_SITE
    # Out-of-catalog work quoted on site: the quote is recorded, work starts once prepaid.
    quoted = order(Status.ON_SITE, agreement_recorded=True, agreed_fen=90000)
    with pytest.raises(DomainError) as e:
        decide(quoted, "start", actor(Role.ENGINEER), {})
    assert "before work starts" in e.value.msgid
    paid = order(Status.ON_SITE, agreement_recorded=True, agreed_fen=90000, prepaid=True)
    assert decide(paid, "start", actor(Role.ENGINEER), {}).to_status is Status.ON_SITE
    assert decide(order(Status.ON_SITE), "start", actor(Role.ENGINEER), {}).to_status is Status.ON_SITE


def test_finish_totals_catalog_labour_and_several_material_lines_in_fen():
    t = decide(
        order(Status.ON_SITE, catalog_fee_fen=1500),
        "finish",
        actor(Role.ENGINEER),
        {
            "result": "换龙头",
            "labour_yuan": "20",
            "man_hours": "1.5",
            "materials": [
                {"name": "水龙头", "quantity": "2", "unit": "个", "unit_price_yuan": "35.5"},
                {"name": "软管", "quantity": "1", "unit": "根", "provided_by": "customer", "verified": "ok"},
                {"name": "生料带", "quantity": "0.5", "unit": "卷", "unit_price_yuan": "3.33"},
            ],
        },
    )
    # 2 × 35.50 + 0.5 × 3.33 (rounded half even to the fen) ; the customer's hose costs nothing
    assert t.changes["material_fen"] == 7100 + 166
    assert t.changes["total_fen"] == 1500 + 2000 + 7266
    assert [m["verified"] for m in t.event_inputs["materials"]] == [None, True, None]
    assert t.changes["man_hours"] == Decimal("1.5")


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"name": "", "quantity": "1", "unit_price_yuan": "1"}, "materials[0].name"),
        ({"name": "管", "quantity": "0", "unit_price_yuan": "1"}, "materials[0].quantity"),
        ({"name": "管", "quantity": "-2", "unit_price_yuan": "1"}, "materials[0].quantity"),
        ({"name": "管", "quantity": "abc", "unit_price_yuan": "1"}, "materials[0].quantity"),
        ({"name": "管", "quantity": "1", "unit_price_yuan": "-1"}, "materials[0].unit_price_yuan"),
        ({"name": "管", "quantity": "1"}, "materials[0].unit_price_yuan"),
        ({"name": "管", "quantity": "1", "provided_by": "customer"}, "materials[0].verified"),
        ({"name": "管", "quantity": "1", "provided_by": "neighbour"}, "materials[0].provided_by"),
        ({"name": "管" * 101, "quantity": "1", "unit_price_yuan": "1"}, "materials[0].name"),
    ],
)
def test_a_bad_material_line_is_refused_naming_its_field(line, field):
    with pytest.raises(DomainError) as e:
        decide(order(Status.ON_SITE), "finish", actor(Role.ENGINEER), {"result": "好", "materials": [line]})
    assert e.value.kind == "invalid" and e.value.field == field


def test_the_forms_customer_material_needs_its_verdict():
    inputs = {"result": "好", "material_name": "软管", "material_provided_by": "customer"}
    with pytest.raises(DomainError) as e:
        decide(order(Status.ON_SITE), "finish", actor(Role.ENGINEER), inputs)
    assert e.value.field == "material_verified"
    t = decide(order(Status.ON_SITE), "finish", actor(Role.ENGINEER), {**inputs, "material_verified": "bad"})
    assert t.event_inputs["materials"][0]["verified"] is False and t.changes["total_fen"] == 0


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


def test_reopen_counts_the_rework_and_links_a_rework_order():
    t = decide(order(Status.CLOSED, reopen_count=1), "reopen", actor(Role.SUPERVISOR), {"reason": "又漏了"})
    assert t.changes["reopen_count"] == 2 and t.to_status is Status.CLOSED
    assert Effect.LINK_REWORK in t.effects and t.event_inputs["reason"] == "又漏了"
    assert not ACTIONS["reopen"].clocks  # the rework order runs its own clocks


@pytest.mark.parametrize(
    ("kind", "status", "inputs", "to", "changes"),
    [
        (Kind.REPAIR, Status.ACCEPTED, {}, Status.POOLED, {"assignee_id": None}),
        (Kind.REPAIR, Status.ASSIGNED, {"team_id": "2"}, Status.POOLED, {"assignee_id": None, "team_id": 2}),
        (
            Kind.REPAIR,
            Status.ACCEPTED,
            {"assignee_id": OTHER_ENGINEER},
            Status.ASSIGNED,
            {"assignee_id": OTHER_ENGINEER},
        ),
        (
            Kind.REPAIR,
            Status.ASSIGNED,
            {"department": "order"},
            Status.ASSIGNED,
            {"assignee_id": None, "department_code": "order"},
        ),
        (
            Kind.MATTER,
            Status.ACCEPTED,
            {"department": "cleaning"},
            Status.ASSIGNED,
            {"assignee_id": None, "department_code": "cleaning"},
        ),
        (Kind.MATTER, Status.ACCEPTED, {}, Status.ASSIGNED, {"assignee_id": None}),
        (Kind.ENTRAPMENT, Status.ASSIGNED, {}, Status.NEW, {"assignee_id": None}),
    ],
)
def test_transfer_to_a_person_team_or_department_and_without_target_back_to_the_pool(
    kind, status, inputs, to, changes
):
    t = decide(order(status, kind), "transfer", actor(Role.ENGINEER), {"reason": "手头有急活", **inputs})
    assert t.to_status is to
    assert t.changes == changes
    assert t.event_inputs["reason"] == "手头有急活"


def test_transfer_refuses_a_bad_target_naming_it():
    for inputs, field in (({"department": "kitchen"}, "department"), ({"team_id": "x"}, "team_id")):
        with pytest.raises(DomainError) as e:
            decide(order(Status.ACCEPTED), "transfer", actor(Role.DISPATCHER), {"reason": "r", **inputs})
        assert e.value.field == field
    with pytest.raises(DomainError) as e:
        decide(
            order(Status.ACCEPTED),
            "transfer",
            actor(Role.DISPATCHER),
            {"reason": "r", "assignee_id": ENGINEER},
        )
    assert e.value.field == "assignee_id"


def test_return_puts_the_order_back_in_the_pool_with_a_reason():
    t = decide(order(Status.ACCEPTED), "return", actor(Role.ENGINEER), {"reason": "不会修"})
    assert t.to_status is Status.POOLED and t.changes == {"assignee_id": None}
    with pytest.raises(DomainError) as e:
        decide(order(Status.ACCEPTED), "return", actor(Role.ENGINEER), {})
    assert e.value.field == "reason"


def test_unfinished_then_a_new_appointment_dispatches_again_to_the_same_engineer():
    t = decide(
        order(Status.ON_SITE), "unfinished", actor(Role.ENGINEER), {"reason": "缺件", "next_at": FUTURE}
    )
    assert t.to_status is Status.UNFINISHED
    t = decide(order(Status.UNFINISHED), "reappoint", actor(Role.DISPATCHER), {"appointment_at": FUTURE})
    assert t.to_status is Status.ASSIGNED and t.changes["assignee_id"] == ENGINEER
    t = decide(order(Status.UNFINISHED), "assign", actor(Role.SUPERVISOR), {"assignee_id": OTHER_ENGINEER})
    assert t.to_status is Status.ASSIGNED and t.changes["assignee_id"] == OTHER_ENGINEER


def test_a_promised_finish_time_and_a_remark_change_no_status():
    t = decide(
        order(Status.ACCEPTED), "promise", actor(Role.ENGINEER), {"promised_at": FUTURE, "reason": "等配件"}
    )
    assert t.to_status is Status.ACCEPTED and t.changes["promised_at"] == datetime.fromisoformat(FUTURE)
    assert t.event_inputs == {"promised_at": FUTURE, "reason": "等配件"}
    with pytest.raises(DomainError) as e:
        decide(order(Status.ACCEPTED), "promise", actor(Role.ENGINEER), {"promised_at": "soon"})
    assert e.value.field == "promised_at"
    for status in (Status.POOLED, Status.CLOSED, Status.CANCELLED):
        t = decide(order(status), "remark", actor(Role.DISPATCHER), {"remark": "业主电话改了"})
        assert t.to_status is status and t.changes == {} and t.event_inputs == {"remark": "业主电话改了"}
    with pytest.raises(DomainError) as e:
        decide(order(Status.POOLED), "remark", actor(Role.DISPATCHER), {"remark": "x" * 501})
    assert e.value.field == "remark"


def test_mark_paid_needs_a_fee():
    with pytest.raises(DomainError) as e:
        decide(order(Status.DONE), "mark_paid", actor(Role.FINANCE), {})
    assert e.value.kind == "conflict"
    assert decide(order(Status.DONE, fee_total_fen=100), "mark_paid", actor(Role.FINANCE), {}).changes == {
        "paid": True
    }


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
    assert allowed_actions(order(Status.CLOSED), actor(Role.ENGINEER)) == ["remark"]


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
        given_inputs = good_inputs(action) if inputs == 0 else INPUT_CHOICES[inputs]
        try:
            t = decide(o, action, ACTORS[who], given_inputs)
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
            in (
                "assignee_id",
                "paused_from",
                "reopen_count",
                "agreement_recorded",
                "prepaid",
                "total_fen",
                "agreed_fen",
                "team_id",
                "department_code",
            )
        }
        dept = changes.get("department_code")
        paused_from = changes.get("paused_from", o.paused_from)
        o = OrderView(
            status=t.to_status,
            kind=o.kind,
            version=o.version + 1,
            assignee_id=changes.get("assignee_id", o.assignee_id),  # type: ignore[arg-type]
            team_id=changes.get("team_id", o.team_id),  # type: ignore[arg-type]
            department=Department(dept) if dept else o.department,
            verification_code=o.verification_code,
            paused_from=Status(paused_from) if paused_from else None,
            agreed_fen=int(changes.get("agreed_fen", o.agreed_fen)),  # type: ignore[arg-type]
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


def test_a_total_beyond_any_real_repair_is_refused():
    lines = [{"name": f"料{i}", "quantity": "100", "unit_price_yuan": "9999.99"} for i in range(20)]
    ok = order(Status.ON_SITE, agreement_recorded=True, prepaid=True, agreed_fen=10**9)
    with pytest.raises(DomainError) as e:
        decide(ok, "finish", actor(Role.ENGINEER), {"result": "好", "materials": lines})
    assert e.value.kind == "invalid" and e.value.msgid == "The amount is too large"


def _exits(status: Status, kind: Kind) -> set[Status]:
    """Where the table's steps lead from this status, each taken by its right person."""
    out = set()
    for name, spec in ACTIONS.items():
        if status not in spec.from_statuses or kind not in spec.kinds:
            continue
        for role in spec.roles:
            who = actor(role)
            try:
                t = decide(
                    order(status, kind, **right_person(spec.person, who, kind), fee_total_fen=100),
                    name,
                    who,
                    good_inputs(name),
                )
            except DomainError:
                continue
            out.add(t.to_status)
    return out


@pytest.mark.parametrize(
    ("kind", "start"),
    [
        (Kind.REPAIR, Status.POOLED),
        (Kind.REPAIR, Status.NEW),
        (Kind.MATTER, Status.ASSIGNED),
        (Kind.ENTRAPMENT, Status.NEW),
    ],
)
def test_the_machine_reaches_closed_from_registration_and_every_open_status_has_a_way_out(kind, start):
    seen, todo = {start}, [start]
    while todo:
        for nxt in _exits(todo.pop(), kind) - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert {Status.CLOSED, Status.CANCELLED} <= seen
    assert Status.CALLBACK not in seen  # kept for old data only: done is the callback queue
    for status in seen - {Status.CLOSED, Status.CANCELLED}:
        assert _exits(status, kind) - {status}, f"{kind}: stuck in {status}"
    if kind is Kind.REPAIR:
        assert {Status.PAUSED, Status.UNFINISHED, Status.ON_SITE, Status.DONE} <= seen


@pytest.mark.parametrize(
    ("action", "status", "key", "extra"),
    [
        ("pause", Status.ON_SITE, "promised_at", {"reason": "parts"}),
        ("promise", Status.ACCEPTED, "promised_at", {}),
        ("unfinished", Status.ON_SITE, "next_at", {"reason": "缺件"}),
        ("reappoint", Status.UNFINISHED, "appointment_at", {}),
    ],
)
def test_times_given_must_not_be_in_the_past_nor_absurdly_far(action, status, key, extra):
    now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    who = actor(Role.SUPERVISOR)
    for bad in ((now - timedelta(hours=1)).isoformat(), (now + timedelta(days=3000)).isoformat()):
        with pytest.raises(DomainError) as e:
            decide(order(status), action, who, {**extra, key: bad}, now=now)
        assert e.value.field == key
    ok = decide(order(status), action, who, {**extra, key: (now + timedelta(days=1)).isoformat()}, now=now)
    assert ok.changes[key] == now + timedelta(days=1)
