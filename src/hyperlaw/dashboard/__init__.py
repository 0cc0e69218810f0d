"""The live web dashboard: `hyperlaw dashboard --storage URL` (needs `hyperlaw[dashboard]`).

Importing this package imports no web framework; `create_app` and `serve` do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from hyperlaw.store.base import Store


def create_app(store: Store, **options: Any) -> Starlette:
    """The dashboard's web app over a store; options as `hyperlaw.dashboard.app.create_app`."""
    from hyperlaw.dashboard.app import create_app as make

    return make(store, **options)


def serve(store: Store, *, host: str = "127.0.0.1", port: int = 8080,
          hosts: Sequence[str] = (), **options: Any) -> None:
    """Serve the dashboard until interrupted. Without a token it answers requests for the
    loopback names, `host` and `hosts` only (see `create_app`)."""
    import uvicorn

    app = create_app(store, hosts=[host, *hosts], **options)
    uvicorn.run(app, host=host, port=port, log_level="warning")
