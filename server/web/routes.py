"""Every route module's ROUTES, in one list."""

from __future__ import annotations

from typing import Any


def all_routes() -> list[Any]:
    from server.web import (
        account,
        admin,
        alerts,
        api_orders,
        auth_routes,
        board,
        desk,
        followup,
        health,
        public_form,
        reports,
        work,
    )

    return [
        *health.ROUTES,
        *auth_routes.ROUTES,
        *account.ROUTES,
        *reports.ROUTES,
        *api_orders.ROUTES,
        *desk.ROUTES,
        *work.ROUTES,
        *public_form.ROUTES,
        *followup.ROUTES,
        *alerts.ROUTES,
        *admin.ROUTES,
        *board.ROUTES,
    ]
