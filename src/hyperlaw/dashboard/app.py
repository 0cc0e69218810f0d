"""The dashboard's web application (Starlette): a JSON API over the Store API and one page.

Every route is a GET: the dashboard never writes to the storage. With a token, every request
must carry it (`Authorization: Bearer TOKEN`, or `?token=TOKEN` once, which sets a cookie).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Sequence
from importlib.resources import files
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hyperlaw.analysis.columns import STATES, StudyColumns
from hyperlaw.dashboard.cache import StudyCache
from hyperlaw.dashboard.panels import build_panel, panels_for
from hyperlaw.dashboard.table import TableQuery, query_table
from hyperlaw.errors import HyperlawError, StorageError, StudyNotFoundError
from hyperlaw.export import trial_to_dict
from hyperlaw.plot.figures import clean, inline_json, trial_curve_figure
from hyperlaw.store.base import Store, StudyInfo

log = logging.getLogger("hyperlaw.dashboard")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
MAX_TRIAL_NUMBER = 2**31 - 1  # trial numbers are 32-bit in every store
STATIC = files("hyperlaw.dashboard") / "static"
TOKEN_COOKIE = "hyperlaw_token"


class _Json(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            text = json.dumps(content, allow_nan=False, separators=(",", ":"))
        except ValueError:
            text = json.dumps(clean(content), allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8")


def _error(status: int, message: str) -> Response:
    return _Json({"error": message}, status_code=status)


class _TokenGate(BaseHTTPMiddleware):
    """Refuse requests without the token (header, cookie, or `?token=` which sets the cookie)."""

    def __init__(self, app: Any, token: str) -> None:
        super().__init__(app)
        self._token = token.encode("utf-8")

    def _matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode("utf-8"), self._token)

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        header = request.headers.get("authorization", "")
        bearer = header[7:] if header.lower().startswith("bearer ") else None
        from_query = request.query_params.get("token")
        if self._matches(bearer) or self._matches(request.cookies.get(TOKEN_COOKIE)):
            return await call_next(request)
        if self._matches(from_query):
            response = await call_next(request)
            response.set_cookie(TOKEN_COOKIE, from_query or "", httponly=True,
                                samesite="strict")
            return response
        message = ("this dashboard needs its token: open it as /?token=TOKEN or send "
                   "'Authorization: Bearer TOKEN'")
        if request.url.path.startswith("/api/"):
            return _error(401, message)
        return HTMLResponse(f"<!doctype html><title>hyperlaw: token needed</title>"
                            f"<h1>401 Unauthorized</h1><p>{message}</p>", status_code=401)


class _HostGate(BaseHTTPMiddleware):
    """Without a token, answer only requests addressed to an allowed host name: a web page
    elsewhere cannot then reach the dashboard through a DNS name it points at 127.0.0.1
    (DNS rebinding)."""

    def __init__(self, app: Any, hosts: frozenset[str]) -> None:
        super().__init__(app)
        self._hosts = hosts

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        host = _host_name(request.headers.get("host", ""))
        if host in self._hosts:
            return await call_next(request)
        message = (f"this dashboard answers only requests for {', '.join(sorted(self._hosts))},"
                   f" not for host {host!r}; open it by one of those names, or start it with "
                   "--allow-host NAME (or with --token)")
        return _error(421, message)


def _host_name(header: str) -> str:
    """The host name of a Host header: no port, IPv6 without brackets, lower case."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def allowed_hosts(extra: Sequence[str] = ()) -> frozenset[str]:
    """The loopback names and `extra` (host names or addresses; a wildcard address such as
    0.0.0.0, which no request names, is left out)."""
    names = {_host_name(h if ":" not in h or h.startswith("[") else f"[{h}]") for h in extra}
    return frozenset(set(LOOPBACK_HOSTS) | names - {"0.0.0.0", "::", ""})


def create_app(store: Store, *, token: str | None = None, poll_interval: float = 1.0,
               refresh_interval: float = 0.25, preload: bool = True,
               hosts: Sequence[str] = ()) -> Starlette:
    """The dashboard app over `store`. `poll_interval` is how often the page asks for news;
    with `preload`, a background thread reads every study once at start, so that the first
    visit to a large study does not wait for its first full read.

    Without `token`, only requests whose Host header names a loopback name or one of `hosts`
    (e.g. the address the server is bound to) are answered; with a token, any host is."""
    cache = StudyCache(store, min_interval=refresh_interval)

    def study_name(request: Request) -> str:
        name = request.query_params.get("study")
        if not name:
            raise HyperlawError("pass the study name as ?study=NAME")
        return name

    async def index(request: Request) -> Response:
        html = (STATIC / "index.html").read_text(encoding="utf-8")
        config = inline_json({"pollMs": int(poll_interval * 1000)})
        return HTMLResponse(html.replace("/*HYPERLAW_CONFIG*/{}", config),
                            headers={"Cache-Control": "no-store"})

    def list_studies(request: Request) -> Response:
        return _Json({"studies": [{
            "name": s.name, "direction": s.direction, "n_trials": s.n_trials,
            "directions": list(s.directions or (s.direction,)),
            "counts": {state.value: s.counts.get(state, 0) for state in STATES},
            "best_value": s.best_value, "created_at": s.created_at,
            "last_activity": s.last_activity} for s in store.list_studies()]})

    def study_summary(request: Request) -> Response:
        def summary(info: StudyInfo, columns: StudyColumns) -> dict[str, Any]:
            best = None if columns.is_multi_objective else columns.best_number()
            return {"name": info.name, "direction": info.direction, "cursor": columns.cursor,
                    "directions": list(columns.directions),
                    "objectives": columns.objective_labels(),
                    "front": columns.front().tolist() if columns.is_multi_objective else None,
                    "n_trials": columns.n, "counts": columns.counts(),
                    "best": None if best is None else columns.row(best),
                    "last_activity": _last_activity(columns),
                    "params": columns.param_names(), "user_attrs": info.user_attrs,
                    "panels": panels_for(columns, info)}

        return _Json(cache.read(study_name(request), summary))

    def panel(request: Request) -> Response:
        query = {k: v for k, v in request.query_params.items() if k not in ("study", "token")}
        figure = cache.read(study_name(request), lambda info, columns: build_panel(
            request.path_params["panel"], columns, query))
        return _Json(figure)

    def trials(request: Request) -> Response:
        query = TableQuery.parse(dict(request.query_params))
        return _Json(cache.read(study_name(request),
                                lambda info, columns: query_table(columns, query)))

    def trial(request: Request) -> Response:
        name = study_name(request)
        number = request.path_params["number"]
        if number > MAX_TRIAL_NUMBER:
            return _error(404, f"study {name!r} has no trial #{number}; trial numbers count "
                               "from 0 up to the study's number of trials")
        with cache.study(name) as (info, _columns):
            study_id = info.id
        try:
            record = store.get_trial(study_id, number)
        except StorageError as exc:
            return _error(404, str(exc))
        out = trial_to_dict(record, intermediate=False)
        out["duration"] = record.duration
        out["n_intermediate"] = len(record.intermediate)
        out["figure"] = trial_curve_figure(record.number, record.intermediate,
                                           record.state.value)
        return _Json(out)

    routes = [
        Route("/", index),
        Route("/api/studies", list_studies),
        Route("/api/study", study_summary),
        Route("/api/study/panel/{panel}", panel),
        Route("/api/study/trials", trials),
        Route("/api/study/trial/{number:int}", trial),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]
    if token:
        middleware = [Middleware(_TokenGate, token=token)]
    else:
        middleware = [Middleware(_HostGate, hosts=allowed_hosts(hosts))]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={
        StudyNotFoundError: lambda request, exc: _error(404, str(exc)),
        StorageError: lambda request, exc: _error(503, str(exc)),
        HyperlawError: lambda request, exc: _error(400, str(exc)),
    })
    app.state.cache = cache
    threading.Thread(target=_warm_up, args=(cache if preload else None,),
                     name="hyperlaw-warm-up", daemon=True).start()
    return app


def _warm_up(cache: StudyCache | None) -> None:
    """Import what the first panels need (seconds of scipy import), then read each study."""
    import scipy.interpolate
    import scipy.stats  # noqa: F401

    if cache is None:
        return
    try:
        names = [s.name for s in sorted(cache.store.list_studies(),
                                        key=lambda s: -(s.last_activity or 0.0))]
    except HyperlawError as exc:
        log.warning("dashboard: cannot list the studies to preload them: %s", exc)
        return
    for name in names:
        try:
            cache.read(name, lambda info, columns: None)
        except HyperlawError as exc:  # deleted meanwhile, or the storage went away
            log.warning("dashboard: cannot preload study %r: %s", name, exc)


def _last_activity(columns: StudyColumns) -> float | None:
    stamps = [a[~np.isnan(a)] for a in (columns.finished_at, columns.started_at,
                                        columns.created_at)]
    return max((float(a.max()) for a in stamps if len(a)), default=None)
