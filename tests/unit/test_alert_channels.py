"""What the channels send and what an administrator may configure, with no network."""

from __future__ import annotations

import pytest

from server.channels import ScreenChannel, sms_body, webhook_body, wecom_body
from server.domain.alert_setup import (
    Contractor,
    contractors_to_notify,
    parse_channel,
    parse_contractor,
    parse_elevator,
    parse_elevator_choice,
)
from server.domain.messages import ValidationErrors

PAYLOAD = {
    "alert": 7,
    "kind": "entrapment",
    "title": "电梯困人 · 3栋2号梯",
    "number": "KR-20261124-0001",
    "project": "DEMO",
    "location": "3栋2号梯",
    "step": 5,
    "round": 2,
    "purpose": "step",
    "text": "[电梯困人] KR-20261124-0001 3栋2号梯：请立即确认并赶赴现场",
    "phone": "13912345678",
    "paged": ["张师傅"],
}


def test_group_webhooks_get_the_alert_facts_but_no_personal_phone():
    body = webhook_body({"phone": "13912345678"}, PAYLOAD)
    assert body["number"] == "KR-20261124-0001" and body["paged"] == ["张师傅"] and body["round"] == 2
    assert "13912345678" not in repr(body)
    assert "13912345678" not in repr(wecom_body({"phone": "13912345678"}, PAYLOAD))


def test_the_wecom_robot_gets_markdown_with_step_and_round():
    body = wecom_body({}, {**PAYLOAD, "title": "<b>困人</b> *急*"})
    assert body["msgtype"] == "markdown" and set(body) == {"msgtype", "markdown"}
    content = body["markdown"]["content"]
    assert "KR-20261124-0001" in content and "第2轮 第6步" in content and "<b>" not in content


def test_an_sms_gateway_gets_one_phone_and_one_text():
    assert sms_body({"phone": "13912345678"}, PAYLOAD) == {"phone": "13912345678", "text": PAYLOAD["text"]}


async def test_an_alert_screen_row_reaching_the_worker_was_not_seen_and_fails():
    assert (await ScreenChannel().deliver({}, PAYLOAD)).outcome == "failed"
    assert (await ScreenChannel().deliver({}, {"text": "breach notice"})).outcome == "sent"


def test_channels_contractors_and_elevators_are_validated_field_by_field():
    with pytest.raises(ValidationErrors) as e:
        parse_channel({"channel": "fax", "url": "ftp://x", "name": "x" * 41})
    assert set(e.value.errors) == {"channel", "url", "name"}
    with pytest.raises(ValidationErrors) as e:
        parse_channel({"channel": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"})
    assert set(e.value.errors) == {"url"}
    ok = parse_channel(
        {"channel": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc"}
    )
    assert ok["active"] is True and ok["token"] == ""
    with pytest.raises(ValidationErrors) as e:
        parse_contractor({"name": "迅达"})
    assert set(e.value.errors) == {"phone"}  # unreachable: refused
    assert parse_contractor({"name": "迅达", "phone": "138-0013-8000"})["phone"] == "13800138000"
    with pytest.raises(ValidationErrors) as e:
        parse_elevator({"code": "bad code!", "name": "", "building_id": "99"}, buildings=[1], contractors=[2])
    assert set(e.value.errors) == {"code", "name", "building_id"}
    assert (
        parse_elevator({"code": "E-1", "name": "1号梯", "contractor_id": "2"}, [1], [2])["contractor_id"] == 2
    )
    assert parse_elevator_choice(" ") is None and parse_elevator_choice("DEMO-E01") == "DEMO-E01"
    with pytest.raises(ValidationErrors):
        parse_elevator_choice("no such thing!")


def test_an_entrapment_reaches_its_elevators_contractor_or_all_of_them_when_unknown():
    a, b = Contractor(1, "迅达", "13800138000", ""), Contractor(2, "奥的斯", "", "https://x.example/hook")
    mute = Contractor(3, "无联系方式", "", "")
    assert contractors_to_notify(2, True, [a, b, mute]) == [b]
    assert contractors_to_notify(None, False, [a, b, mute]) == [a, b]
    assert contractors_to_notify(3, True, [a, b, mute]) == []  # unreachable: the caller flags it
    assert contractors_to_notify(None, True, [a, b]) == []  # an elevator with no contractor
    assert b.channel == "webhook" and a.channel == "sms"
