"""Display labels of the domain codes (English msgids; zh-CN in the catalog)."""

from __future__ import annotations

from server.domain.messages import N_
from server.i18n import gettext

LABELS: dict[str, str] = {
    # roles
    "dispatcher": N_("Dispatcher"),
    "monitor": N_("Monitoring duty"),
    "supervisor": N_("Engineering supervisor"),
    "engineer": N_("Engineer"),
    "handler": N_("Department handler"),
    "manager": N_("Manager"),
    "finance": N_("Finance"),
    "admin": N_("Administrator"),
    # kinds
    "repair": N_("Repair"),
    "matter": N_("Matter"),
    "entrapment": N_("Elevator entrapment"),
    # urgency
    "emergency": N_("Emergency"),
    "normal": N_("Normal"),
    "low": N_("Low"),
    # channels
    "phone": N_("Phone"),
    "visit": N_("Walk-in"),
    "written": N_("Written"),
    "online": N_("Online"),
    "patrol": N_("Patrol / self-inspection"),
    "department": N_("Other department"),
    "handover": N_("Handover inspection"),
    # alert delivery channels
    "screen": N_("On screen"),
    "sms": N_("SMS"),
    "wecom": N_("WeCom group robot"),
    "webhook": N_("Webhook"),
    # statuses
    "new": N_("To dispatch"),
    "pooled": N_("In grab pool"),
    "assigned": N_("Dispatched"),
    "accepted": N_("Accepted"),
    "on_site": N_("On site"),
    "paused": N_("Paused"),
    "unfinished": N_("Unfinished"),
    "done": N_("Done"),
    "callback": N_("Awaiting callback"),
    "closed": N_("Closed"),
    "cancelled": N_("Cancelled"),
    # categories
    "electrical": N_("Electrical"),
    "plumbing": N_("Plumbing"),
    "building": N_("Building, doors & locks"),
    "elevator": N_("Elevator"),
    "fire": N_("Fire safety"),
    "security_systems": N_("Security systems"),
    "hvac": N_("HVAC"),
    "network": N_("Network & phone"),
    "enquiry": N_("Enquiry"),
    "complaint": N_("Complaint"),
    "loss": N_("Loss report"),
    "security_check": N_("Security check"),
    "admin_affair": N_("Move-in & renovation"),
    "suggestion": N_("Suggestion"),
    "help": N_("Help"),
    "cleaning": N_("Cleaning"),
    "greening": N_("Greening"),
    # departments
    "engineering": N_("Engineering dept."),
    "order": N_("Security dept."),
    "customer_service": N_("Customer service dept."),
    # clocks
    "dispatch": N_("Dispatch"),
    "arrival": N_("Arrival"),
    "first_callback": N_("First callback"),
    "progress": N_("Progress"),
    "completion": N_("Completion"),
    "ack": N_("Acknowledgement"),
    # callback
    "letter": N_("Letter"),
    "satisfied": N_("Satisfied"),
    "fairly": N_("Fairly satisfied"),
    "unsatisfied": N_("Unsatisfied"),
    # areas
    "private": N_("In-home"),
    "public": N_("Public area"),
    # clock states
    "running": N_("Running"),
    "met": N_("Met"),
    "breached": N_("Breached"),
    # pause reasons and action inputs
    "parts": N_("Waiting for parts"),
    "customer_absent": N_("Customer absent"),
    "supplier": N_("Waiting for supplier"),
    "other": N_("Other"),
    "reason": N_("Reason"),
    "result": N_("Result"),
    "comment": N_("Comment"),
    "code": N_("Customer code"),
    "team_id": N_("Team"),
    "agreed_yuan": N_("Agreed fee (yuan)"),
    "remark": N_("Remark"),
}

ACTION_LABELS: dict[str, str] = {
    "register": N_("Registered"),
    "pool": N_("Put in grab pool"),
    "assign": N_("Assign"),
    "grab": N_("Grab"),
    "accept": N_("Accept"),
    "reassign": N_("Reassign"),
    "transfer": N_("Transfer"),
    "return": N_("Return"),
    "arrive": N_("Arrive"),
    "pause": N_("Pause"),
    "resume": N_("Resume"),
    "finish": N_("Finish"),
    "unfinished": N_("Cannot finish"),
    "reappoint": N_("New appointment"),
    "handle": N_("Handled"),
    "callback": N_("Record callback"),
    "reopen": N_("Reopen for rework"),
    "cancel": N_("Cancel"),
    "escalate": N_("Escalate"),
    "breach": N_("Deadline missed"),
    "acknowledge": N_("Acknowledge"),
    "page": N_("Paged"),
    "delivery_failed": N_("Delivery failed"),
    "resolve": N_("Resolved"),
    "alert": N_("Alert opened"),
    "delivered": N_("Delivered"),
    "reminder": N_("Reminder"),
    "no_contractor": N_("No elevator contractor notified"),
    "slip_returned": N_("Slip returned"),
    "record_agreement": N_("Record fee agreement"),
    "mark_paid": N_("Mark paid"),
    "spawn_repair": N_("Spawn repair"),
    "start": N_("Start work"),
    "promise": N_("Promise a finish time"),
    "remark": N_("Add a remark"),
}


def label(code: str | None) -> str:
    if not code:
        return ""
    msgid = LABELS.get(code)
    return gettext(msgid) if msgid else code


def action_label(code: str | None) -> str:
    if not code:
        return ""
    msgid = ACTION_LABELS.get(code)
    return gettext(msgid) if msgid else code
