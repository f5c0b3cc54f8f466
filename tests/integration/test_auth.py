"""Login, logout, session id rotation, idle timeout, throttling, CSRF, PIN login."""

from __future__ import annotations

import re

import pytest

from tests.conftest import csrf_of, make_client, post_login


async def test_login_page_is_chinese_by_default(client):
    r = await client.get("/login")
    assert r.status_code == 200
    assert "登录" in r.text


async def test_login_redirects_to_the_roles_home(client):
    r = await post_login(client, {"username": "kefu", "password": "demo1234"})
    assert r.status_code == 303
    assert r.headers["location"] == "/desk"


async def test_unknown_user_and_wrong_password_get_one_message(client):
    a = await post_login(client, {"username": "nobody", "password": "x"})
    b = await post_login(client, {"username": "kefu", "password": "wrong"})
    assert a.status_code == b.status_code == 401
    msg = re.compile(r'class="flash flash-error"[^>]*>([^<]+)<')
    assert msg.search(a.text).group(1) == msg.search(b.text).group(1)


async def test_login_issues_a_new_session_id(client, login):
    client.cookies.set("bx_session", "attacker-chosen-id", domain="127.0.0.1")
    await login("kefu")
    sid = client.cookies.get("bx_session")
    assert sid and sid != "attacker-chosen-id"
    await login("kefu")
    assert client.cookies.get("bx_session") != sid


async def test_logout_ends_the_session(client, login):
    token = await login("kefu")
    sid = client.cookies.get("bx_session")
    r = await client.post("/logout", headers={"X-CSRF-Token": token})
    assert r.status_code == 303
    client.cookies.set("bx_session", sid, domain="127.0.0.1")
    r = await client.get("/account")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_idle_session_expires(client, login, redis):
    await login("kefu")
    sid = client.cookies.get("bx_session")
    await redis.delete(f"sess:{sid}")  # what the idle TTL does
    from server.auth import SessionStore  # noqa: F401  (cache is dropped by NOTIFY on destroy; here TTL)

    r = await client.get("/account")
    assert r.status_code in (200, 303)
    # The in-process cache may still hold it until the next touch; force the touch window.
    import server.auth as auth_mod

    old = auth_mod.TOUCH_EVERY
    auth_mod.TOUCH_EVERY = -1
    try:
        r = await client.get("/account")
    finally:
        auth_mod.TOUCH_EVERY = old
    assert r.status_code == 303


async def test_login_is_throttled_per_account(client):
    for _ in range(5):
        r = await post_login(client, {"username": "shifu3", "password": "bad"})
        assert r.status_code == 401
    r = await post_login(client, {"username": "shifu3", "password": "demo1234"})
    assert r.status_code == 429
    assert "分钟" in r.text


async def test_post_without_csrf_token_is_refused(client, login):
    await login("kefu")
    r = await client.post("/account/tokens", data={"name": "x"})
    assert r.status_code == 403
    token = await csrf_of(client)
    r = await client.post("/account/tokens", data={"name": "x", "_csrf": token})
    assert r.status_code == 200


async def test_engineer_pin_login(client):
    r = await post_login(client, {"username": "shifu1", "pin": "2580"}, "/login/pin")
    assert r.status_code == 303 and r.headers["location"] == "/tablet"


async def test_pin_login_is_refused_for_desk_roles(client):
    r = await post_login(client, {"username": "kefu", "pin": "2580"}, "/login/pin")
    assert r.status_code == 401


async def test_disabled_user_loses_the_session_at_the_next_request(client, login, engine):
    await login("shifu4")
    assert (await client.get("/account")).status_code == 200
    from server.persistence import staff as staff_db

    async with engine.begin() as conn:
        sid = (await staff_db.by_username(conn, "shifu4")).id
        await staff_db.set_active(conn, sid, False)
    try:
        import asyncio

        # A write from elsewhere (another process, psql) reaches this process by NOTIFY: wait
        # for it (no timing assertion, only an upper bound for a broken listener).
        for _ in range(200):
            r = await client.get("/account")
            if r.status_code != 200:
                break
            await asyncio.sleep(0.05)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    finally:
        async with engine.begin() as conn:
            await staff_db.set_active(conn, sid, True)


# ---- CSRF on the login forms; refusals are pages in the user's language ------------------


async def test_a_login_post_without_its_csrf_token_is_refused(client):
    """A forged cross-site login (logging the victim into the attacker's account) is refused."""
    r = await client.post("/login", data={"username": "kefu", "password": "demo1234"})
    assert r.status_code == 403
    assert "bx_session" not in r.headers.get("set-cookie", "")
    assert "<html" in r.text and "页面已过期" in r.text  # a whole page, in Chinese
    r = await client.post("/login/pin", data={"username": "shifu1", "pin": "2580"})
    assert r.status_code == 403


async def test_a_login_token_only_works_with_its_own_cookie(client, new_client):
    page = await client.get("/login")
    token = re.search(r'name="_csrf" value="([^"]+)"', page.text).group(1)
    async with new_client() as other:  # another browser: the attacker's token is not theirs
        await other.get("/login")
        r = await other.post("/login", data={"username": "kefu", "password": "demo1234", "_csrf": token})
        assert r.status_code == 403
    r = await client.post("/login", data={"username": "kefu", "password": "demo1234", "_csrf": token})
    assert r.status_code == 303


async def test_the_csrf_refusal_is_in_english_for_an_english_user(client, login):
    client.cookies.set("bx_lang", "en", domain="127.0.0.1")
    r = await client.post("/login", data={"username": "kefu", "password": "demo1234"})
    assert r.status_code == 403 and "Your form has expired" in r.text
    await login("kefu")
    r = await client.post("/account/tokens", data={"name": "x"})
    assert r.status_code == 403 and "Your form has expired" in r.text and "<html" in r.text
    r = await client.post("/account/tokens", data={"name": "x"}, headers={"HX-Request": "true"})
    assert r.status_code == 403 and r.headers["hx-retarget"] == "#flash"
    assert "Your form has expired" in r.text and "<html" not in r.text  # a message swapped in place


async def test_an_htmx_request_passes_with_the_header_alone(client, login):
    """app.js puts the meta tag's token into X-CSRF-Token on every htmx request."""
    token = await login("kefu")
    r = await client.post(
        "/account/tokens", data={"name": "x"}, headers={"HX-Request": "true", "X-CSRF-Token": token}
    )
    assert r.status_code == 200
    r = await client.post(
        "/account/tokens", data={"name": "x"}, headers={"HX-Request": "true", "X-CSRF-Token": "forged"}
    )
    assert r.status_code == 403


async def test_an_unknown_route_is_a_404_page_in_the_users_language(client, login):
    r = await client.get("/no-such-page")
    assert r.status_code == 404 and "未找到" in r.text
    client.cookies.set("bx_lang", "en", domain="127.0.0.1")
    r = await client.get("/no-such-page")
    assert r.status_code == 404 and "Not found" in r.text and "未找到" not in r.text
    r = await client.get("/api/v1/no-such-thing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_an_english_users_profile_language_shows_on_an_unknown_route(client, login, engine):
    """Without a language cookie the logged-in user's own choice applies, even off the routes."""
    from sqlalchemy import text

    await login("caiwu")
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE staff SET locale = 'en' WHERE username = 'caiwu'"))
    try:
        await login("caiwu")  # a fresh session reads the profile
        r = await client.get("/no-such-page")
        assert r.status_code == 404 and "Not found" in r.text
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE staff SET locale = 'zh_CN' WHERE username = 'caiwu'"))


# ---- Redis, PostgreSQL or the schema unavailable -------------------------------------------


@pytest.fixture
async def app_without_redis(settings):
    """A second web process whose Redis is gone (a port nobody listens on)."""
    from dataclasses import replace

    from server.app import create_app

    application = create_app(replace(settings, redis_url="redis://127.0.0.1:1/0"))
    for hook in application.on_startup:
        await hook(application)
    yield application
    for hook in application.on_shutdown:
        await hook(application)


async def test_redis_down_gives_a_503_page_in_the_users_language(app_without_redis):
    async with make_client(app_without_redis) as c:
        c.cookies.set("bx_session", "some-session-id", domain="127.0.0.1")
        r = await c.get("/desk")
        assert r.status_code == 503 and "<html" in r.text and "暂时不可用" in r.text
        c.cookies.set("bx_lang", "en", domain="127.0.0.1")
        r = await c.get("/desk")
        assert r.status_code == 503 and "temporarily unavailable" in r.text
        r = await c.get("/desk", headers={"HX-Request": "true"})
        assert r.status_code == 503 and "temporarily unavailable" in r.text and "<html" not in r.text


async def test_redis_down_at_login_is_a_503_not_a_500(app_without_redis):
    async with make_client(app_without_redis) as c:
        r = await post_login(c, {"username": "kefu", "password": "demo1234"})
        assert r.status_code == 503 and "暂时不可用" in r.text


async def _readyz_of(settings, **changes):
    from dataclasses import replace

    from server.app import create_app

    application = create_app(replace(settings, **changes))  # no startup: it would refuse to start
    try:
        async with make_client(application) as c:
            return await c.get("/readyz")
    finally:
        await application.state.runtime.stop()


async def test_readyz_is_200_when_everything_answers(client):
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"ready": True, "database": "ok", "migrations": "ok", "redis": "ok"}


async def test_readyz_names_redis_when_it_is_down(settings):
    r = await _readyz_of(settings, redis_url="redis://127.0.0.1:1/0")
    assert r.status_code == 503
    body = r.json()
    assert body["ready"] is False and body["redis"].startswith("unreachable") and body["database"] == "ok"


async def test_readyz_names_the_database_when_it_is_down(settings):
    r = await _readyz_of(settings, database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none")
    assert r.status_code == 503
    body = r.json()
    assert body["database"].startswith("unreachable") and body["redis"] == "ok"


async def test_readyz_names_migrations_that_are_not_current(settings, engine):
    from sqlalchemy import text

    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("DROP DATABASE IF EXISTS baoxiu_ready_empty WITH (FORCE)"))
        await conn.execute(text("CREATE DATABASE baoxiu_ready_empty"))
    url = engine.url.set(database="baoxiu_ready_empty").render_as_string(hide_password=False)
    r = await _readyz_of(settings, database_url=url)
    assert r.status_code == 503
    body = r.json()
    assert body["database"] == "ok" and "baoxiu migrate" in body["migrations"] and body["redis"] == "ok"


# ---- the client's address behind a reverse proxy -------------------------------------------


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "expected"),
    [
        ("203.0.113.9", "1.2.3.4", (), "203.0.113.9"),  # no proxies configured: header ignored
        ("203.0.113.9", "1.2.3.4", ("10.0.0.0/8",), "203.0.113.9"),  # peer is not a proxy
        ("10.0.0.2", "1.2.3.4", ("10.0.0.0/8",), "1.2.3.4"),
        ("10.0.0.2", "6.6.6.6, 1.2.3.4", ("10.0.0.0/8",), "1.2.3.4"),  # left part forged by the client
        ("10.0.0.2", "1.2.3.4, 10.0.0.7", ("10.0.0.0/8",), "1.2.3.4"),  # two proxies deep
        ("10.0.0.2", "not-an-ip", ("10.0.0.0/8",), "10.0.0.2"),
        ("10.0.0.2", None, ("10.0.0.0/8",), "10.0.0.2"),
        ("::1", "2001:db8::5", ("::1",), "2001:db8::5"),
    ],
)
def test_the_client_ip_believes_only_trusted_proxies(peer, xff, trusted, expected):
    from server.security import client_ip

    assert client_ip(peer, xff, trusted) == expected


async def _fail_logins(c, n, xff):
    """n failed logins under distinct usernames (so only the per-IP counter can trip)."""
    last = None
    for i in range(n):
        page = await c.get("/login")
        token = re.search(r'name="_csrf" value="([^"]+)"', page.text).group(1)
        last = await c.post(
            "/login",
            data={"username": f"nobody{i}-{xff(i)}", "password": "x", "_csrf": token},
            headers={"X-Forwarded-For": xff(i)},
        )
    return last


async def test_a_forged_forwarded_for_does_not_escape_ip_throttling(client, settings):
    """Without TRUSTED_PROXIES the header is ignored: the 6th failure from one peer is throttled."""
    assert settings.trusted_proxies == ()
    r = await _fail_logins(client, 6, lambda i: f"198.51.100.{i}")
    assert r.status_code == 429


@pytest.fixture
async def app_behind_proxy(settings, redis):
    from dataclasses import replace

    from server.app import create_app

    keys = await redis.keys("login:*")
    if keys:
        await redis.delete(*keys)
    application = create_app(replace(settings, trusted_proxies=("127.0.0.1/32",)))
    for hook in application.on_startup:
        await hook(application)
    yield application
    for hook in application.on_shutdown:
        await hook(application)


async def test_behind_a_trusted_proxy_each_client_is_throttled_by_its_own_address(app_behind_proxy):
    async with make_client(app_behind_proxy) as c:  # the test client's peer is 127.0.0.1: the proxy
        r = await _fail_logins(c, 6, lambda i: f"198.51.100.{i}")
        assert r.status_code == 401  # six residents behind one nginx, one failure each
        r = await _fail_logins(c, 6, lambda i: "192.0.2.77")
        assert r.status_code == 429  # one client failing six times
        page = await c.get("/login")
        token = re.search(r'name="_csrf" value="([^"]+)"', page.text).group(1)
        r = await c.post(
            "/login",
            data={"username": "kefu", "password": "demo1234", "_csrf": token},
            headers={"X-Forwarded-For": "192.0.2.78", "X-Forwarded-Proto": "https"},
        )
        assert r.status_code == 303  # a neighbour is not locked out by the throttled one
        assert "secure" in r.headers["set-cookie"].lower()  # https as the proxy says


async def test_an_untrusted_peer_cannot_claim_https(client):
    page = await client.get("/login")
    token = re.search(r'name="_csrf" value="([^"]+)"', page.text).group(1)
    r = await client.post(
        "/login",
        data={"username": "kefu", "password": "demo1234", "_csrf": token},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert r.status_code == 303 and "secure" not in r.headers["set-cookie"].lower()


# ---- roles × routes, from one table ---------------------------------------------------------

# Columns: dispatcher, engineer, supervisor, monitor, manager, finance, admin, the outsider (a
# dispatcher of project OTHER), anonymous. Pages are opened with the person's session, /api with
# their personal token. ok = 200, no = 403 (role), hid = 404 (another project's: its existence
# is private), none = 200 without any DEMO order, in = sent to the login page (pages) or 401 (API).
PEOPLE = ["kefu", "shifu1", "zhuguan", "jiankong", "jingli", "caiwu", "admin", "other_kefu", None]
ACCESS = """
route                        kefu shifu1 zhuguan jiankong jingli caiwu admin other_kefu anon
/desk                        ok   no     ok      ok       no     no    no    ok         in
/triage                      ok   no     ok      ok       ok     no    no    ok         in
/tablet                      no   ok     ok      no       no     no    no    no         in
/board?project=DEMO          ok   ok     ok      ok       ok     ok    ok    hid        in
/reports?project=DEMO        no   no     ok      no       ok     no    ok    no         in
/finance                     ok   no     no      no       ok     ok    no    ok         in
/callbacks                   ok   no     ok      ok       ok     no    no    ok         in
/shift                       ok   no     ok      ok       ok     no    no    ok         in
/alerts                      ok   no     ok      ok       ok     no    ok    ok         in
/admin                       no   no     ok      no       no     no    ok    no         in
/admin/staff                 no   no     no      no       no     no    ok    no         in
/admin/projects              no   no     no      no       no     no    ok    no         in
/account                     ok   ok     ok      ok       ok     ok    ok    ok         in
/orders/{order}              ok   ok     ok      ok       ok     ok    ok    hid        in
/api/v1/orders?project=DEMO  ok   ok     ok      ok       ok     ok    ok    none       in
/api/v1/orders/{order}       ok   ok     ok      ok       ok     ok    ok    hid        in
/api/v1/alerts               ok   ok     ok      ok       ok     no    ok    ok         in
/api/v1/oncall?project=DEMO  ok   ok     ok      ok       ok     ok    ok    hid        in
"""


def _access_table() -> list[tuple[str, str | None, str]]:
    lines = [line.split() for line in ACCESS.strip().splitlines()]
    header, rows = lines[0][1:], lines[1:]
    assert header[:-1] == PEOPLE[:-1] and len(header) == len(PEOPLE)
    cases = []
    for route, *cells in rows:
        assert len(cells) == len(PEOPLE), route
        cases += [(route, person, cell) for person, cell in zip(PEOPLE, cells, strict=True)]
    return cases


@pytest.fixture(scope="module")
def access_tokens() -> dict[str, str]:
    return {}


@pytest.mark.parametrize("person", PEOPLE, ids=[p or "anonymous" for p in PEOPLE])
async def test_roles_by_routes(person, app, engine, redis, access_tokens):
    from sqlalchemy import text

    from server.persistence import staff as staff_db
    from server.security import new_token, token_hash

    async with engine.connect() as conn:
        order = (
            await conn.execute(
                text(
                    "SELECT o.number FROM orders o JOIN projects p ON p.id = o.project_id"
                    " WHERE p.code = 'DEMO' ORDER BY o.id LIMIT 1"
                )
            )
        ).scalar_one()
    keys = await redis.keys("login:*")
    if keys:
        await redis.delete(*keys)
    headers: dict[str, str] = {}
    async with make_client(app) as c:
        if person:
            token = new_token("bx")
            async with engine.begin() as conn:
                row = await staff_db.by_username(conn, person)
                await staff_db.create_api_token(conn, row.id, token_hash(token), "access table")
            headers = {"Authorization": f"Bearer {token}"}
            r = await post_login(c, {"username": person, "password": "demo1234"})
            assert r.status_code == 303
        wrong = []
        for route, who, expected in _access_table():
            if who != person:
                continue
            path = route.format(order=order)
            api = path.startswith("/api/")
            r = await c.get(path, headers=headers if api else {})
            got = {200: "ok", 403: "no", 404: "hid", 401: "in"}.get(r.status_code, str(r.status_code))
            if r.status_code == 303 and r.headers["location"].startswith("/login"):
                got = "in"
            if got == "ok" and expected == "none":
                got = "none" if not [o for o in r.json()["orders"] if o["project"] == "DEMO"] else "DEMO rows"
            if got != expected:
                wrong.append(f"{path}: expected {expected}, got {got}")
            if got in ("no", "hid") and not api:  # a refusal is a page in the user's language
                assert "<html" in r.text and 'lang="zh-CN"' in r.text, path
        assert not wrong, wrong


async def test_postgresql_down_gives_a_503_page_not_a_500(settings, redis):
    from dataclasses import replace

    from server.app import create_app

    keys = await redis.keys("login:*")
    if keys:
        await redis.delete(*keys)
    application = create_app(replace(settings, database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none"))
    try:  # no startup hooks: the real process would refuse to start; this is the database dying later
        async with make_client(application) as c:
            r = await post_login(c, {"username": "kefu", "password": "demo1234"})
            assert r.status_code == 503 and "暂时不可用" in r.text
            r = await c.get(
                "/api/v1/orders", headers={"Authorization": "Bearer bx_whatever", "Accept-Language": "en"}
            )
            assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable"
    finally:
        await application.state.runtime.stop()
