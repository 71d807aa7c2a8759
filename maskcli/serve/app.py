"""The ASGI application: the library's masks and composites over HTTP (Starlette), and a page to drop photos on.

``POST /segment`` and ``POST /apply`` take an image as the body or as the ``image`` part of a multipart upload
(``apply`` also a ``mask`` part), and their options as query or form fields named as the command line names them
(:mod:`maskcli.serve.options`). The answer is the image, its record in the ``X-Maskcli-Record`` header, or with
``json=true`` (or ``Accept: application/json``) the record as JSON with the image in base64. ``GET /methods``,
``/modes``, ``/models`` and ``/health`` describe the server; ``GET /`` is the page.

Every refusal is one JSON line: 400 a wrong option or an unreadable image, 401 a missing token, 413 a body or
image over the limits, 503 too many requests at once (with ``Retry-After``), 504 a request over its time limit.
Decoding, compositing and encoding run in a pool of threads, a CNN in batches on a thread of its own
(:mod:`maskcli.serve.batching`): the event loop only moves bytes.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import PurePosixPath
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from maskcli.errors import InputError, MaskcliError, OptionError, PixelLimit
from maskcli.serve.batching import Admission, Busy, Lanes
from maskcli.serve.limits import BearerToken, BodyLimit, HTTPProblem, problem_body
from maskcli.serve.options import Fields, MethodCache, plan_apply, plan_segment
from maskcli.serve.settings import ServeSettings
from maskcli.serve.work import Output, Work

#: The type of a form upload; any other body is the image itself (``curl --data-binary @photo.jpg`` says
#: application/x-www-form-urlencoded of what is a JPEG).
_FORMS = ("multipart/form-data",)


class Service:
    """The state of one running app: its thread pool, method cache, batch lanes, admission and readiness."""

    def __init__(self, settings: ServeSettings, describe: Callable[[BaseException], str]) -> None:
        self.settings = settings
        self.describe = describe
        self.methods = MethodCache()
        self.admission = Admission(settings.max_queue)
        self.lanes: Lanes | None = None
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.ready = threading.Event()
        self.failure: str | None = None

    async def start(self) -> None:
        from maskcli.cnn.device import limit_threads
        from maskcli.composite import modes
        from maskcli.methods import methods

        # The registries fill themselves on first use: fill them now, so that the first request does not wait.
        methods.names()
        modes.names()
        limit_threads(1)  # requests run side by side in the pool: OpenCV and a model's torch at one thread each
        self.pool = concurrent.futures.ThreadPoolExecutor(self.settings.threads, thread_name_prefix="maskcli-work")
        self.lanes = Lanes(self.settings.batch_window, self.settings.max_batch)
        asyncio.get_running_loop().run_in_executor(self.pool, self._warm_up)

    async def stop(self) -> None:
        if self.lanes is not None:
            await self.lanes.close()
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def _warm_up(self) -> None:
        """Load the default model before saying ready: the first request must not pay for it."""
        import numpy as np

        try:
            method = self.methods.get("cnn", {})
            method.compute_batch([np.zeros((32, 32, 3), np.float32)])
        except Exception as error:  # noqa: BLE001 - /health says why, and the server stays up for other methods
            self.failure = problem_of(error, self.describe).message
        else:
            self.ready.set()

    async def run(self, call: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, call, *args)

    async def process(self, work: Work) -> Output:
        await self.run(work.load)
        if work.batched and self.lanes is not None:
            started = time.perf_counter()
            segmentation = await self.lanes.submit(work.method, work.model_input())
            batch_ms = (time.perf_counter() - started) * 1000
            return await self.run(work.finish, segmentation, batch_ms)
        return await self.run(work.finish)


# -- reading a request ------------------------------------------------------------------------------------------

async def _read(request: Request, settings: ServeSettings) -> tuple[Fields, bytes, str, bytes | None]:
    """The request's fields, image bytes, image name and mask bytes (None: no mask part)."""
    pairs = list(request.query_params.multi_items())
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in _FORMS:
        return Fields(pairs), await request.body(), "upload", None
    files: dict[str, tuple[bytes, str]] = {}
    # Parts over the memory threshold are spooled to temp files: the form is closed (and they are gone) when
    # this block ends, before the work starts.
    async with request.form(max_files=2, max_fields=200, max_part_size=settings.max_body) as form:
        for key, value in form.multi_items():
            if isinstance(value, str):
                pairs.append((key, value))
            elif key in ("image", "file", "mask") and key not in files:
                files["image" if key == "file" else key] = (await value.read(), value.filename or "upload")
            else:
                raise HTTPProblem(400, f"unexpected file part {key!r}: send the image as 'image' and a mask as "
                                       "'mask'")
    if "image" not in files:
        raise HTTPProblem(400, "no image: send it as the request body or as the 'image' part of a form")
    data, name = files["image"]
    mask = files["mask"][0] if "mask" in files else None
    return Fields(pairs), data, PurePosixPath(name.replace("\\", "/")).name or "upload", mask


def problem_of(error: BaseException, describe: Callable[[BaseException], str]) -> HTTPProblem:
    """The HTTP answer to an error met while serving a request."""
    if isinstance(error, HTTPProblem):
        return error
    if isinstance(error, Busy):
        return HTTPProblem(503, str(error), headers={"Retry-After": "1"})
    if isinstance(error, PixelLimit):
        return HTTPProblem(413, describe(error))
    if isinstance(error, OptionError):
        return HTTPProblem(400, describe(error), option=error.option.replace("_", "-"))
    if isinstance(error, InputError):
        return HTTPProblem(400, describe(error))
    if isinstance(error, MaskcliError):
        return HTTPProblem(500, describe(error))
    from maskcli.work import describe as describe_bug

    return HTTPProblem(500, describe_bug(error))


def _answer(output: Output, as_json: bool, name: str) -> Response:
    if as_json:
        return JSONResponse({"record": output.record, "media_type": output.media_type,
                             "image": base64.b64encode(output.data).decode("ascii")})
    suffix = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/tiff": "tif"}
    filename = f"{PurePosixPath(name).stem or 'result'}.{suffix.get(output.media_type, 'bin')}"
    headers = {"X-Maskcli-Record": json.dumps(output.record, ensure_ascii=True),
               "Content-Disposition": f'inline; filename="{_header_safe(filename)}"'}
    return Response(output.data, media_type=output.media_type, headers=headers)


def _header_safe(text: str) -> str:
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in text)


# -- the endpoints ----------------------------------------------------------------------------------------------

def _endpoint(service: Service, kind: str) -> Callable[[Request], Any]:
    settings = service.settings

    async def handle(request: Request) -> Response:
        try:
            with service.admission:
                return await asyncio.wait_for(_serve(request), settings.timeout)
        except asyncio.TimeoutError:
            problem = HTTPProblem(504, f"the request took longer than the limit of {settings.timeout:g} s")
        except Exception as error:  # noqa: BLE001 - every failure is one JSON line; the server goes on
            problem = problem_of(error, service.describe)
        return Response(problem_body(problem), status_code=problem.status, headers=problem.headers,
                        media_type="application/json")

    async def _serve(request: Request) -> Response:
        fields, data, name, mask = await _read(request, settings)
        accept = request.headers.get("accept", "")
        if kind == "segment":
            if mask is not None:
                raise HTTPProblem(400, "segment takes no mask; send it to /apply")
            plan = await service.run(plan_segment, fields, service.methods, accept)
            work = Work.segment(plan, data, name, settings.max_pixels)
        else:
            plan = await service.run(lambda: plan_apply(fields, service.methods, has_mask=mask is not None,
                                                        accept=accept))
            work = Work.apply(plan, data, name, mask, settings.max_pixels)
        if not data:
            raise HTTPProblem(400, "empty image: the request carried no bytes")
        output = await service.process(work)
        return _answer(output, plan.json, name)

    return handle


def _registry_listing(registry: Any) -> list[dict[str, Any]]:
    from maskcli.registry import options_of

    return [{"name": name, "summary": cls.summary,
             "options": [{"name": info.name, "type": info.type_name, "default": _plain(info.default),
                          "help": info.help} for info in options_of(cls)]}
            for name, cls in registry.items()]


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def create_app(settings: ServeSettings | None = None, *,
               describe: Callable[[BaseException], str] = str) -> Starlette:
    """The server's ASGI app.

    Parameters
    ----------
    settings : ServeSettings, optional
        Its limits, token and batching (default: :class:`ServeSettings`'s).
    describe : callable
        How an error reads to the client; the command line passes its own wording, so that a wrong option reads
        as it would in a terminal.

    Returns
    -------
    Starlette
        Run it with uvicorn (:func:`maskcli.serve.serve`) or any ASGI server.
    """
    settings = settings or ServeSettings()
    service = Service(settings, describe)

    async def methods_endpoint(request: Request) -> Response:
        from maskcli.methods import methods
        from maskcli.presets import PRESETS

        presets = [{"name": name, "method": preset.method, "summary": preset.summary}
                   for name, preset in sorted(PRESETS.items())]
        return JSONResponse({"methods": _registry_listing(methods), "presets": presets})

    async def modes_endpoint(request: Request) -> Response:
        from maskcli.composite import modes

        return JSONResponse({"modes": [entry for entry in _registry_listing(modes) if entry["name"] != "image"]})

    async def models_endpoint(request: Request) -> Response:
        from maskcli.cnn import specs, weights

        listing = [{"name": name, "kind": spec.kind, "default": name == specs.DEFAULT_MODEL,
                    "available": bool(weights.bundled_path(spec) or weights.find_cached(spec))}
                   for name, spec in specs.SPECS.items()]
        return JSONResponse({"models": listing})

    async def health_endpoint(request: Request) -> Response:
        from maskcli.cnn import specs

        if service.ready.is_set():
            return JSONResponse({"status": "ready", "model": specs.DEFAULT_MODEL,
                                 "in_progress": service.admission.inside,
                                 "batches": service.lanes.sizes() if service.lanes else {}})
        status = "failed" if service.failure else "loading"
        return JSONResponse({"status": status, "error": service.failure}, status_code=503)

    async def page_endpoint(request: Request) -> Response:
        from maskcli.serve.page import PAGE

        return HTMLResponse(PAGE)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    middleware = [Middleware(BodyLimit, limit=settings.max_body)]
    if settings.token:
        middleware.append(Middleware(BearerToken, token=settings.token))
    if settings.cors:
        from starlette.middleware.cors import CORSMiddleware

        middleware.insert(0, Middleware(CORSMiddleware, allow_origins=list(settings.cors),
                                        allow_methods=["GET", "POST"],
                                        allow_headers=["Authorization", "Content-Type", "Accept"],
                                        expose_headers=["X-Maskcli-Record", "Content-Disposition"]))
    routes = [
        Route("/", page_endpoint, methods=["GET"]),
        Route("/segment", _endpoint(service, "segment"), methods=["POST"]),
        Route("/apply", _endpoint(service, "apply"), methods=["POST"]),
        Route("/methods", methods_endpoint, methods=["GET"]),
        Route("/modes", modes_endpoint, methods=["GET"]),
        Route("/models", models_endpoint, methods=["GET"]),
        Route("/health", health_endpoint, methods=["GET"]),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.service = service
    return app


__all__ = ["Service", "create_app", "problem_of"]
