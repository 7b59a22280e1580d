"""The HTTP service: FastAPI over any index :func:`mmrank.collection.open_index` opens, plus any registered reranker.

Endpoints: ``POST /search`` (text, image or both -- a composed query -- as a multipart form with an uploaded file,
or as a JSON body with the image in base64), ``POST /rerank`` (the ``query, documents, top_n ->
results[{index, relevance_score, document}]`` shape of common rerank services), ``POST /ask`` (only when the
collection has an ``ask`` method), ``GET /`` (results page), ``GET /image/{id}`` (thumbnails and page images, only
from inside the index's folders), ``GET /item/{id}``, ``GET /healthz`` and FastAPI's OpenAPI schema and docs.

Models load once in :func:`create_app`; search and rerank requests go through a :class:`MicroBatcher` each, so
concurrent requests share one model call (text, image and composed queries alike: the collection's ``search_batch``
encodes a batch at once; ``GET /info`` counts requests, batches and encoder calls). With an API key every path but
``/healthz`` needs it (``Authorization: Bearer KEY``, ``X-API-Key: KEY``, or the cookie ``GET /?api_key=KEY`` sets
for the page).
Every error is JSON ``{"error": message}`` with its status code; a stack trace never leaves the process.
"""

import base64
import binascii
import concurrent.futures
import contextlib
import dataclasses
import io
import json
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from mmrank.errors import ImageLoadError, MmrankError, OptionError
from mmrank.serve.batcher import MicroBatcher, Overloaded
from mmrank.types import Hit, Item, Query, Ranking, Run, load_image

log = logging.getLogger("mmrank.serve")

DEFAULT_MAX_UPLOAD = 10 << 20  # bytes of one uploaded image
DEFAULT_MAX_PIXELS = 40_000_000  # pixels of one uploaded image (below the load_image decompression-bomb limit)
MAX_K = 1000
MAX_DOCUMENTS = 1000
THUMB_SIZES = (128, 256, 512, 1024, 2048)


class ServeError(Exception):
    """An error the service answers with ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class RerankRequest(BaseModel):
    """The request of common rerank services (Cohere ``/v1/rerank``, Jina ``/v1/rerank``)."""

    query: str = Field(min_length=1)
    documents: list[str | dict[str, Any]] = Field(min_length=1, max_length=MAX_DOCUMENTS)
    top_n: int | None = Field(None, ge=1)
    return_documents: bool = True
    model: str | None = None


class SearchRequest(BaseModel):
    """``POST /search`` as JSON (``application/json``); the multipart form has the same fields, with ``image`` an
    uploaded file instead of ``image_b64``."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, description="query text (with an image: the modification text)")
    k: int = Field(10, ge=1, le=MAX_K)
    rerank: bool = Field(False, description="rerank the hits with the service's reranker")
    image_b64: str | None = Field(None, description="query image, base64 (a data: URL is accepted too)")


SEARCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": SearchRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "description": "query text (with an image: the modification)"},
                        "image": {"type": "string", "format": "binary", "description": "query image"},
                        "k": {"type": "integer", "default": 10, "minimum": 1, "maximum": MAX_K},
                        "rerank": {"type": "boolean", "default": False},
                    },
                }
            },
        },
    }
}


class AskRequest(BaseModel):
    question: str = Field(min_length=1)
    k: int = Field(5, ge=1, le=100)


@dataclass
class SearchJob:
    query: Query
    k: int
    rerank: bool


@dataclass
class RerankJob:
    query: str
    documents: list[str]
    top_n: int | None


def _json_safe(obj: Any) -> Any:
    from mmrank.cli.common import json_safe

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return None
    return json_safe(obj)


def _snippet(text: str | None, n: int = 300) -> str | None:
    if not text:
        return None
    return text if len(text) <= n else text[: n - 1].rstrip() + "\u2026"


def hit_json(rank: int, h: Hit) -> dict[str, Any]:
    """One hit as JSON: id, score, modality, page reference, a text snippet and the image route when it has one."""
    it = h.item
    out: dict[str, Any] = {"rank": rank, "id": h.id, "score": float(h.score)}
    if it is None:
        return out
    out["modality"] = it.modality
    out["title"] = it.title
    out["text"] = _snippet(it.text)
    out["page"] = {"doc_id": it.page.doc_id, "page": it.page.page} if it.page else None
    out["image_url"] = f"/image/{quote(h.id, safe='')}" if it.image is not None else None
    return out


def ranking_json(r: Ranking, k: int) -> dict[str, Any]:
    prov: dict[str, Any] = {"stage": r.stage, "model_calls": r.model_calls, "fallbacks": list(r.fallbacks)}
    for key in ("composed", "batch"):  # how a composed query was embedded; how many queries shared the calls
        if key in r.meta:
            prov[key] = _json_safe(r.meta[key])
    return {"query_id": r.query_id, "hits": [hit_json(i, h) for i, h in enumerate(r.hits[:k], 1)], "provenance": prov}


class Service:
    """What the app holds: the opened collection, the reranker, and the batched model calls."""

    def __init__(
        self,
        collection: Any,
        index_dir: Path | None,
        reranker: Any,
        reranker_name: str | None,
        *,
        max_batch: int,
        max_wait_ms: float,
        max_queue: int,
    ) -> None:
        self.collection, self.index_dir, self.reranker = collection, index_dir, reranker
        self.reranker_name = reranker_name
        self.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mmrank-model")
        kw: dict[str, Any] = {"max_batch": max_batch, "max_wait_ms": max_wait_ms, "max_queue": max_queue}
        kw["executor"] = self.executor
        self.search_batcher: MicroBatcher[SearchJob, Ranking] = MicroBatcher(self._isolated(self._search_batch), **kw)
        self.rerank_batcher: MicroBatcher[RerankJob, Ranking] = MicroBatcher(self._isolated(self._rerank_batch), **kw)

    @staticmethod
    def _isolated(fn: Any) -> Any:
        """``fn`` over a batch; if the batch fails, each job again alone, so that one bad request gets its own
        error and never fails the requests that happened to share its batch."""

        def run(jobs: list[Any]) -> list[Any]:
            try:
                return list(fn(jobs))
            except Exception as e:
                if len(jobs) == 1:
                    raise
                log.info("a batch of %d failed (%s); answering its requests one by one", len(jobs), e)
            out: list[Any] = []
            for job in jobs:
                try:
                    out.append(fn([job])[0])
                except Exception as err:  # raised to that request alone by the batcher
                    out.append(err)
            return out

        return run

    def rerank_error(self, q: Query) -> str | None:
        """Why the service's reranker cannot rerank hits for ``q`` (a text-only reranker and a query image)."""
        mods = set(getattr(self.reranker, "modalities", ()) or ())
        if q.image is not None and mods and mods <= {"text"}:
            return (
                f"the reranker {self.reranker_name or type(self.reranker).__name__!r} reads text only; it cannot "
                f"rerank for this {q.modality} query (search without rerank, or serve an image-capable reranker)"
            )
        return None

    # model calls: always on the one model thread
    def _search_batch(self, jobs: list[SearchJob]) -> list[Ranking]:
        c = self.collection
        depth = max(j.k for j in jobs)
        if hasattr(c, "search_batch"):  # text, image and composed queries: one batch, one encoding per modality
            rankings = list(c.search_batch([j.query for j in jobs], depth))
        else:
            rankings = [c.search(j.query, depth) for j in jobs]
        rankings = [r.top(j.k) for r, j in zip(rankings, jobs, strict=True)]
        todo = [n for n, j in enumerate(jobs) if j.rerank]
        mods = set(getattr(self.reranker, "modalities", ()) or ())
        if todo and mods and mods <= {"text"}:  # a text reranker has nothing to read in hits without text
            blind = [
                n for n in todo if not any(h.item is not None and h.item.full_text.strip() for h in rankings[n].hits)
            ]
            for n in blind:
                note = f"rerank skipped: the reranker {self.reranker_name!r} reads text and these hits have none"
                note += "; kept retrieval order"
                rankings[n] = dataclasses.replace(rankings[n], fallbacks=[*rankings[n].fallbacks, note])
            todo = [n for n in todo if n not in blind]
        if todo:
            keyed = [(f"__{n}", rankings[n], jobs[n].query) for n in todo]
            run = Run(dataclasses.replace(r, query_id=key) for key, r, _ in keyed)
            queries = [dataclasses.replace(q, id=key) for key, _, q in keyed]
            out = self.reranker.rerank(queries, run)
            for n, (key, r, q) in zip(todo, keyed, strict=True):
                rankings[n] = dataclasses.replace(out[key], query_id=r.query_id, query=q)
        return rankings

    def _rerank_batch(self, jobs: list[RerankJob]) -> list[Ranking]:
        queries, rankings = [], []
        for n, j in enumerate(jobs):
            key = f"__{n}"
            queries.append(Query(key, text=j.query))
            hits = [Hit(str(i), 0.0, Item(str(i), text=d)) for i, d in enumerate(j.documents)]
            rankings.append(Ranking(key, hits))
        out = self.reranker.rerank(queries, Run(rankings))
        return [out[f"__{n}"] for n in range(len(jobs))]

    def query_error(self, q: Query) -> str | None:
        """Why the collection cannot answer ``q`` (checked before ``q`` joins a batch, so that one bad request
        never fails the others of its batch)."""
        c = self.collection
        if hasattr(c, "query_error"):
            return c.query_error(q)  # type: ignore[no-any-return]
        if q.composed:
            return f"the {getattr(c, 'kind', 'opened')!r} index does not support composed (image + text) queries"
        return None

    # files
    def allowed_roots(self) -> list[Path]:
        roots = [self.index_dir] if self.index_dir is not None else []
        root = getattr(self.collection, "root", None)
        if root is not None:
            roots.append(Path(root))
        return [r.resolve() for r in roots]

    def image_of(self, item_id: str) -> Any:
        """``item_id``'s image: a path confined to the index's folders (symlinks resolved), bytes or a PIL image."""
        if self.collection is None:
            raise ServeError(404, "this service has no index")
        try:
            item = self.collection.item(item_id)
        except (MmrankError, KeyError, ValueError):
            raise ServeError(404, f"no item {item_id!r}") from None
        src = item.image
        if src is None:
            raise ServeError(404, f"item {item_id!r} has no image")
        if isinstance(src, (str, Path)):
            try:
                real = Path(src).resolve(strict=True)
            except (OSError, RuntimeError):
                raise ServeError(404, f"no image for item {item_id!r}") from None
            if not any(real.is_relative_to(r) for r in self.allowed_roots()):
                raise ServeError(403, "that file is outside the index's folders")
            if not real.is_file():
                raise ServeError(404, f"no image for item {item_id!r}")
            return real
        return src


def _read_key(request: Any) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return str(auth[7:].strip())
    return request.headers.get("x-api-key") or request.cookies.get("mmrank_key")


def _build_reranker(reranker: Any, model: str | None, options: dict[str, Any] | None) -> tuple[Any, str | None]:
    if reranker is None or not isinstance(reranker, str):
        return reranker, getattr(reranker, "name", None) if reranker is not None else None
    from mmrank.cli.common import build

    kw = dict(options or {})
    if model:
        kw["model"] = model
    return build("reranker", reranker, kw), reranker


def create_app(
    index_dir: str | Path | None = None,
    *,
    reranker: Any = None,
    model: str | None = None,
    reranker_options: dict[str, Any] | None = None,
    api_key: str | None = None,
    collection: Any = None,
    device: str | None = None,
    max_batch: int = 16,
    max_wait_ms: float = 5.0,
    max_queue: int = 256,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    qa_model: str | None = None,
    compose_alpha: float | None = None,
) -> Any:
    """A FastAPI app serving ``index_dir`` (opened once with :func:`~mmrank.collection.open_index`, or pass an
    opened ``collection``) and ``reranker`` (a registry name with ``model`` / ``reranker_options``, or an instance).

    ``max_batch=1`` turns micro-batching off (one request per model call); ``api_key`` protects every path but
    ``/healthz``. ``qa_model`` (a text LLM or VLM for a page index) enables ``POST /ask``. Uploads above
    ``max_upload_bytes`` answer 413, images above ``max_pixels`` 413 too. ``compose_alpha`` sets the text weight of
    composed queries on an image index (default 0.65, :mod:`mmrank.vision.search`).
    """
    from mmrank.serve.page import render_page

    d = Path(index_dir) if index_dir is not None else None
    if collection is None and d is not None:
        from mmrank.collection import open_index

        kw: dict[str, Any] = {"device": device} if device else {}
        if qa_model:
            kw["qa_model"] = qa_model
        collection = open_index(d, **kw)
    if compose_alpha is not None:
        if not hasattr(collection, "compose_alpha"):
            kind = getattr(collection, "kind", "?")
            raise OptionError(f"compose_alpha applies to CLIP image indexes, not a {kind!r} index")
        if not 0.0 <= compose_alpha <= 1.0:
            raise OptionError(f"compose_alpha must lie in [0, 1], got {compose_alpha}")
        collection.compose_alpha = float(compose_alpha)
    rr, rr_name = _build_reranker(reranker, model, reranker_options)
    svc = Service(collection, d, rr, rr_name, max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await svc.search_batcher.start()
        await svc.rerank_batcher.start()
        try:
            yield
        finally:
            await svc.search_batcher.stop()
            await svc.rerank_batcher.stop()
            svc.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="mmrank",
        summary="Multimodal search and reranking over an mmrank index",
        lifespan=lifespan,
    )
    app.state.service = svc

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if api_key is not None and request.url.path != "/healthz":
            given = _read_key(request)
            link_key = request.query_params.get("api_key") if request.url.path == "/" else None
            if link_key and secrets.compare_digest(link_key.encode(), api_key.encode()):
                resp = RedirectResponse("/", status_code=303)
                resp.set_cookie("mmrank_key", api_key, httponly=True, samesite="strict")
                return resp
            if given is None or not secrets.compare_digest(given.encode(), api_key.encode()):
                return error(401, "missing or wrong API key (Authorization: Bearer KEY or X-API-Key: KEY)")
        length = request.headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > max_upload_bytes * 4 // 3 + (64 << 10)  # base64 in a JSON body
            except ValueError:
                return error(400, "bad Content-Length header")
            if too_big:
                return error(413, f"request body larger than {max_upload_bytes} bytes")
        try:
            return await call_next(request)
        except Exception:  # last resort: log it, answer JSON, never a trace
            log.exception("unhandled error on %s", request.url.path)
            return error(500, "internal error (see the server log)")

    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return error(exc.status, exc.message)

    @app.exception_handler(Overloaded)
    async def _overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        return error(503, str(exc))

    @app.exception_handler(MmrankError)
    async def _mmrank_error(request: Request, exc: MmrankError) -> JSONResponse:
        return error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors()[:5]:
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return error(422, "invalid request: " + "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        msg = exc.detail if isinstance(exc.detail, str) else "error"
        return error(exc.status_code, f"{request.url.path}: {msg}" if exc.status_code == 404 else msg)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness: always open, even with an API key."""
        return {"status": "ok"}

    @app.get("/info")
    async def info() -> dict[str, Any]:
        """What this service serves."""
        c = svc.collection
        return {
            "collection": getattr(c, "kind", None),
            "index_dir": str(d) if d else None,
            "reranker": svc.reranker_name,
            "can_ask": hasattr(c, "ask"),
            "micro_batch": {"max_batch": max_batch, "max_wait_ms": max_wait_ms, "max_queue": max_queue},
            "stats": {
                "search_requests": sum(svc.search_batcher.batches),
                "search_batches": len(svc.search_batcher.batches),
                "encoder_calls": getattr(c, "encoder_calls", None),
                "rerank_requests": sum(svc.rerank_batcher.batches),
                "rerank_batches": len(svc.rerank_batcher.batches),
            },
        }

    def decode_image(data: bytes) -> Any:
        if len(data) > max_upload_bytes:
            raise ServeError(413, f"image upload larger than {max_upload_bytes} bytes")
        if not data:
            raise ServeError(400, "the uploaded image is empty")
        try:
            return load_image(data, max_pixels=max_pixels)
        except ImageLoadError as e:
            status = 413 if "limit" in str(e) or "bomb" in str(e) else 400
            raise ServeError(status, f"uploaded image: {e}") from None

    async def read_upload(image: UploadFile) -> Any:
        return decode_image(await image.read(max_upload_bytes + 1))

    def invalid(e: ValidationError) -> RequestValidationError:
        return RequestValidationError([{**err, "loc": ("body", *err.get("loc", ()))} for err in e.errors()])

    async def search_request(request: Request) -> tuple[SearchRequest, Any, str]:
        """The fields, the decoded image (or None) and the image's label, from a JSON body or a multipart form."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/json":
            try:
                raw = json.loads(await request.body())
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise ServeError(400, f"malformed JSON body: {e}") from None
            if not isinstance(raw, dict):
                raise ServeError(422, "the JSON body must be an object with text / image_b64 / k / rerank")
            try:
                body = SearchRequest.model_validate(raw)
            except ValidationError as e:
                raise invalid(e) from None
            pil = None
            if body.image_b64:
                b64 = body.image_b64.partition(",")[2] if body.image_b64.startswith("data:") else body.image_b64
                if len(b64) > (max_upload_bytes + 2) // 3 * 4 + 4:
                    raise ServeError(413, f"image upload larger than {max_upload_bytes} bytes")
                try:
                    data = base64.b64decode(b64, validate=True)
                except (binascii.Error, ValueError):
                    raise ServeError(400, "image_b64 is not valid base64") from None
                pil = decode_image(data)
            return body, pil, "image"
        if ctype not in ("multipart/form-data", "application/x-www-form-urlencoded", ""):
            raise ServeError(415, f"POST /search takes application/json or a multipart form, not {ctype!r}")
        try:
            form = await request.form(max_files=1, max_fields=16)
        except Exception as e:  # malformed multipart / too many parts (starlette raises its own errors)
            raise ServeError(400, f"malformed form body: {e}") from None
        image = form.get("image")
        fields = {key: v for key, v in form.items() if key != "image" and isinstance(v, str)}
        try:
            body = SearchRequest.model_validate({key: v for key, v in fields.items() if v != "" or key != "text"})
        except ValidationError as e:
            raise invalid(e) from None
        if isinstance(image, str) and image:
            raise ServeError(422, "image: upload a file (multipart form), or send image_b64 in a JSON body")
        has_file = isinstance(image, UploadFile) and bool(image.filename)
        if not has_file:
            return body, None, "image"
        assert isinstance(image, UploadFile)
        return body, await read_upload(image), str(image.filename)

    @app.post("/search", openapi_extra=SEARCH_BODY)
    async def search(request: Request) -> dict[str, Any]:
        """Search the index with text, an image, or both (a composed query): a multipart form (``text``, ``image``
        file, ``k``, ``rerank``) or a JSON body (``text``, ``image_b64``, ``k``, ``rerank``); same response."""
        if svc.collection is None:
            raise ServeError(404, "this service has no index; /rerank only")
        body, pil, label = await search_request(request)
        if body.rerank and svc.reranker is None:
            raise ServeError(400, "rerank=true but the service has no reranker (start it with --reranker)")
        text = body.text if body.text and body.text.strip() else None
        if text is None and pil is None:
            raise ServeError(422, "give a query text, an image, or both")
        q = Query("query", text=text, image=pil, meta={"label": label if pil is not None else "text"})
        why = svc.query_error(q) or (svc.rerank_error(q) if body.rerank else None)
        if why is not None:
            raise ServeError(400, f"cannot answer this {q.modality} query: {why}")
        r = await svc.search_batcher.submit(SearchJob(q, body.k, body.rerank))
        kind = getattr(svc.collection, "kind", None)
        return {"modality": q.modality, "collection": kind, **ranking_json(r, body.k)}

    @app.post("/rerank")
    async def rerank_docs(body: RerankRequest) -> dict[str, Any]:
        """Rerank ``documents`` for ``query`` (Cohere / Jina request and response shape)."""
        if svc.reranker is None:
            raise ServeError(400, "the service has no reranker (start it with --reranker NAME)")
        if body.model and svc.reranker_name and body.model not in (svc.reranker_name, model):
            raise ServeError(400, f"this service reranks with {svc.reranker_name!r}, not {body.model!r}")
        docs = []
        for n, doc in enumerate(body.documents):
            t = doc if isinstance(doc, str) else doc.get("text")
            if not isinstance(t, str):
                raise ServeError(422, f"documents[{n}] has no text")
            docs.append(t)
        r = await svc.rerank_batcher.submit(RerankJob(body.query, docs, body.top_n))
        hits = r.hits[: body.top_n] if body.top_n else r.hits
        results = []
        for h in hits:
            i = int(h.id)
            res: dict[str, Any] = {"index": i, "relevance_score": float(h.score)}
            if body.return_documents:
                res["document"] = {"text": docs[i]}
            results.append(res)
        return _json_safe(
            {
                "model": svc.reranker_name,
                "results": results,
                "meta": {"stage": r.stage, "model_calls": r.model_calls, "fallbacks": list(r.fallbacks)},
            }
        )

    if hasattr(svc.collection, "ask"):

        @app.post("/ask")
        async def ask(body: AskRequest) -> Any:
            """Answer a question from the indexed pages, with the pages cited."""
            import asyncio

            loop = asyncio.get_running_loop()
            ans = await loop.run_in_executor(svc.executor, lambda: svc.collection.ask(body.question, k=body.k))
            return _json_safe(ans.as_dict() if hasattr(ans, "as_dict") else ans)

    @app.get("/item/{item_id:path}")
    async def item(item_id: str) -> dict[str, Any]:
        """One item's text, page reference and image route."""
        if svc.collection is None:
            raise ServeError(404, "this service has no index")
        try:
            it = svc.collection.item(item_id)
        except (MmrankError, KeyError, ValueError):
            raise ServeError(404, f"no item {item_id!r}") from None
        out = hit_json(0, Hit(it.id, 0.0, it))
        out.pop("rank"), out.pop("score")
        out["text"] = it.text
        return out

    @app.get("/image/{item_id:path}")
    async def image_route(item_id: str, size: int = 256) -> Response:
        """An item's image as a JPEG thumbnail no larger than ``size`` (128 ... 2048) pixels on a side."""
        import asyncio

        if size not in THUMB_SIZES:
            raise ServeError(422, f"size must be one of {', '.join(map(str, THUMB_SIZES))}")
        src = svc.image_of(item_id)

        def thumb() -> bytes:
            img = load_image(src, max_pixels=max_pixels if not isinstance(src, Path) else None)
            img.thumbnail((size, size))
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=85)
            return buf.getvalue()

        try:
            data = await asyncio.get_running_loop().run_in_executor(None, thumb)
        except ImageLoadError as e:
            raise ServeError(422, f"item {item_id!r}: {e}") from None
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        """The results page: a search box, an image upload, results as thumbnails with scores."""
        c = svc.collection
        return render_page(
            kind=getattr(c, "kind", None),
            index=d.name if d else None,
            reranker=svc.reranker_name,
            can_ask=hasattr(c, "ask"),
        )

    return app
