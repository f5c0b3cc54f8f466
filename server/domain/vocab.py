"""The domain's closed vocabularies: codes stored in the database and used by the API.

Chinese labels are what users see; they live in the gettext catalogs, keyed by the
English msgids below, so the UI is zh-CN first and English second.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    DISPATCHER = "dispatcher"  # 客服 / 前台
    MONITOR = "monitor"  # 监控中心值班员
    SUPERVISOR = "supervisor"  # 工程主管
    ENGINEER = "engineer"  # 维修工
    HANDLER = "handler"  # 部门处理人 (秩序部 / 客服部 / 保洁 / 绿化)
    MANAGER = "manager"  # 客服主管 / 经理
    FINANCE = "finance"  # 财务
    ADMIN = "admin"  # 系统管理员


class Kind(StrEnum):
    REPAIR = "repair"  # 报修
    MATTER = "matter"  # 报事
    ENTRAPMENT = "entrapment"  # 电梯困人


class Urgency(StrEnum):
    EMERGENCY = "emergency"  # 紧急
    NORMAL = "normal"  # 一般
    LOW = "low"  # 低


class Channel(StrEnum):
    PHONE = "phone"  # 电话
    VISIT = "visit"  # 来访
    WRITTEN = "written"  # 书面
    ONLINE = "online"  # 线上
    PATROL = "patrol"  # 巡检/自检
    DEPARTMENT = "department"  # 其他部门
    HANDOVER = "handover"  # 验房


class Status(StrEnum):
    NEW = "new"  # 待派单
    POOLED = "pooled"  # 待抢单
    ASSIGNED = "assigned"  # 已派单
    ACCEPTED = "accepted"  # 已接单
    ON_SITE = "on_site"  # 已到场 / 处理中
    PAUSED = "paused"  # 挂起
    UNFINISHED = "unfinished"  # 未完成
    DONE = "done"  # 已完工
    CALLBACK = "callback"  # 待回访
    CLOSED = "closed"  # 已关闭
    CANCELLED = "cancelled"  # 已取消


OPEN_STATUSES: frozenset[Status] = frozenset(Status) - {Status.CLOSED, Status.CANCELLED}


class Category(StrEnum):
    """Repair categories (报修) and matter natures (报事) share one code list."""

    ELECTRICAL = "electrical"  # 供电
    PLUMBING = "plumbing"  # 给排水
    BUILDING = "building"  # 土建/门窗锁
    ELEVATOR = "elevator"  # 电梯
    FIRE = "fire"  # 消防
    SECURITY_SYSTEMS = "security_systems"  # 安防/监控
    HVAC = "hvac"  # 空调暖通
    NETWORK = "network"  # 网络/电话
    ENQUIRY = "enquiry"  # 咨询
    COMPLAINT = "complaint"  # 投诉
    LOSS = "loss"  # 报失
    SECURITY_CHECK = "security_check"  # 安全/户内检查
    ADMIN_AFFAIR = "admin_affair"  # 事务 (入驻, 二次装修)
    SUGGESTION = "suggestion"  # 建议
    HELP = "help"  # 求助
    CLEANING = "cleaning"  # 保洁
    GREENING = "greening"  # 绿化


REPAIR_CATEGORIES: frozenset[Category] = frozenset(
    {
        Category.ELECTRICAL,
        Category.PLUMBING,
        Category.BUILDING,
        Category.ELEVATOR,
        Category.FIRE,
        Category.SECURITY_SYSTEMS,
        Category.HVAC,
        Category.NETWORK,
    }
)
MATTER_CATEGORIES: frozenset[Category] = frozenset(Category) - REPAIR_CATEGORIES


class Department(StrEnum):
    ENGINEERING = "engineering"  # 工程部
    ORDER = "order"  # 秩序部
    CUSTOMER_SERVICE = "customer_service"  # 客服部
    CLEANING = "cleaning"  # 保洁
    GREENING = "greening"  # 绿化


class ClockKind(StrEnum):
    DISPATCH = "dispatch"  # 派单/抢单 (grab pool unclaimed)
    ARRIVAL = "arrival"  # 到场
    FIRST_CALLBACK = "first_callback"  # 派工后首次回访 (did the engineer arrive?)
    PROGRESS = "progress"  # 无进展
    COMPLETION = "completion"  # 完工
    CALLBACK = "callback"  # 完工后回访
    ACK = "ack"  # 告警确认 (entrapment)


class ClockState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    BREACHED = "breached"
    CANCELLED = "cancelled"


class CallbackMethod(StrEnum):
    PHONE = "phone"  # 电话
    VISIT = "visit"  # 登门
    LETTER = "letter"  # 信函


class Rating(StrEnum):
    SATISFIED = "satisfied"  # 满意
    FAIRLY = "fairly"  # 基本满意
    UNSATISFIED = "unsatisfied"  # 不满意
