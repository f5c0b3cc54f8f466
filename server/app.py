"""The Litestar application, assembled in one place."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.openapi import OpenAPIConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from server.auth import AuthMiddleware
from server.board.state import BoardState
from server.config import ROOT, Settings, get_settings
from server.persistence.migrate import is_current
from server.runtime import Runtime
from server.web import routes
from server.web.board import BoardFastPath
from server.web.errors import EXCEPTION_HANDLERS
from server.web.templates import environment

log = logging.getLogger(__name__)


class NotMigrated(SystemExit):
    pass


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    runtime = Runtime.create(settings)
    runtime.board = BoardState()  # board versions and render cache; attached to the listener at start

    async def on_startup(app: Litestar) -> None:
        if not await is_current(runtime.engine):
            # One clear line, not a traceback wall.
            raise NotMigrated("the database schema is not current: run `baoxiu migrate` (or `make migrate`)")
        await runtime.start()

    async def on_shutdown(app: Litestar) -> None:
        await runtime.stop()

    app = Litestar(
        route_handlers=[
            *routes.all_routes(),
            create_static_files_router(path="/static", directories=[ROOT / "static"]),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment())),
        openapi_config=OpenAPIConfig(title="Baoxiu 报事报修 API", version="1", path="/schema"),
        # The board's fragment is gzipped once per version by the board itself (server/web/board.py);
        # the bench-only reference endpoints answer as they are.
        compression_config=CompressionConfig(
            backend="gzip", minimum_size=2048, exclude=["/board/events", "/board/fragment", "/_bench/"]
        ),
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        debug=False,
    )
    app.state.runtime = runtime
    # Outside the router, so that an unknown route (404) and every refusal before routing
    # know the caller and answer in their language.
    app.asgi_handler = AuthMiddleware(BoardFastPath(app.asgi_handler, runtime))
    return app


def app_factory() -> Any:
    return create_app()
