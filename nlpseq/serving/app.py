"""The HTTP API over one loaded model (FastAPI): ``POST /predict``, ``GET /health``, a page
at ``/`` to try the model, OpenAPI docs at ``/docs``.

A request is ``{"texts": [...], ...options}`` with ``nlpseq-predict``'s options for the
model's task; the answer is ``{"results": rows}``, the rows ``nlpseq-predict`` writes. A
bad request gets a 4xx status and ``{"error": "one line"}``, a failure of the model a 500
with one line; either way the server goes on serving.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from nlpseq.errors import NlpseqError, first_line
from nlpseq.serving.batcher import Batcher

log = logging.getLogger("nlpseq.serve")


class PredictRequest(BaseModel):
    """The texts and the ``nlpseq-predict`` options a task reads (unset: the model's own)."""

    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(min_length=1, description="inputs: texts, prompts or sentences")
    max_new_tokens: int | None = Field(None, description="generation")
    greedy: bool | None = Field(None, description="generation")
    temperature: float | None = Field(None, description="generation")
    top_k: int | None = Field(None, description="generation")
    top_p: float | None = Field(None, description="generation")
    seed: int | None = Field(None, description="generation: repeatable samples")
    stop_at_eos: bool | None = Field(None, description="generation")
    beam_size: int | None = Field(None, description="translation")
    length_penalty: float | None = Field(None, description="translation")
    n_best: int | None = Field(None, description="translation")


SERVER_OPTIONS = {"batch_size", "attention_file"}  # the server's to decide, not a request's
# request options whose work grows with their value: option -> the serve.yaml key capping it
CAPPED_OPTIONS = {"max_new_tokens": "max_new_tokens_cap", "beam_size": "beam_size_cap",
                  "n_best": "beam_size_cap"}


def create_app(model, max_batch_size: int = 64, max_wait_ms: float = 0.0,
               batching: bool = True, max_text_chars: int = 10_000,
               max_texts: int = 256, max_new_tokens_cap: int = 1024,
               beam_size_cap: int = 16) -> FastAPI:
    """The app for ``model`` (``nlpseq.load``); ``batching=false`` answers each request on
    its own (for comparison). The caps bound the work one request can ask for, so that a
    single request cannot keep the server busy for hours or exhaust its memory."""
    batcher = Batcher(model.predict, max_batch_size, max_wait_ms, enabled=batching)
    readable = set(model.task.predict_options) - SERVER_OPTIONS
    caps = {"max_new_tokens_cap": max_new_tokens_cap, "beam_size_cap": beam_size_cap}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title=f"nlpseq: {model.task_name} ({model.config.encoder.cell})",
                  description="A trained nlpseq model. POST /predict with "
                              '{"texts": [...]} and the options of nlpseq-predict.',
                  lifespan=lifespan)
    app.state.batcher = batcher

    @app.exception_handler(RequestValidationError)
    async def one_line(request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": describe(err.errors()[0])}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        # FastAPI's own refusals (a body it cannot parse, a path not found) in our shape
        return JSONResponse({"error": one_line_of(err.detail)}, status_code=err.status_code,
                            headers=err.headers)

    @app.exception_handler(Exception)
    async def server_error(request: Request, err: Exception) -> JSONResponse:
        return JSONResponse({"error": failure(err)}, status_code=500)

    @app.post("/predict")
    async def predict(request: PredictRequest) -> dict:
        options = request.model_dump(exclude_none=True, exclude={"texts"})
        refused = check_request(request.texts, options, readable, model.task_name,
                                max_text_chars, max_texts, caps)
        if refused:
            return JSONResponse({"error": refused[1]}, status_code=refused[0])
        try:
            rows = await batcher.submit(request.texts, options)
        except NlpseqError as err:
            return JSONResponse({"error": one_line_of(err)}, status_code=400)
        except Exception as err:  # the model failed on this request alone (see Batcher.run)
            log.exception("POST /predict failed")
            return JSONResponse({"error": failure(err)}, status_code=500)
        return {"results": rows}

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "task": model.task_name, "cell": model.config.encoder.cell,
                "labels": model.label_names, "batches_run": batcher.batches_run}

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        html = resources.files("nlpseq.serving").joinpath("page.html").read_text("utf-8")
        return html.replace("{{task}}", model.task_name)

    return app


def check_request(texts: list[str], options: dict, readable: set[str], task_name: str,
                  max_text_chars: int, max_texts: int,
                  caps: dict[str, int] | None = None) -> tuple[int, str] | None:
    """What is wrong with a request that the model would not say itself: the status and
    one line. ``caps`` maps a ``CAPPED_OPTIONS`` key to its value."""
    unread = sorted(set(options) - readable)
    if unread:
        return 400, (f"{', '.join(unread)}: not an option of a {task_name} model; it reads "
                     f"{', '.join(sorted(readable)) or 'no options'}")
    for option, key in CAPPED_OPTIONS.items():
        value, cap = options.get(option), (caps or {}).get(key)
        if value is not None and cap is not None and value > cap:
            return 400, (f"{option}={value} is over this server's cap, {key}={cap}; start "
                         f"nlpseq-serve with a larger {key} to allow it")
    if len(texts) > max_texts:
        return 413, f"too many texts: {len(texts)} (at most {max_texts} a request)"
    for number, text in enumerate(texts):
        if len(text) > max_text_chars:
            return 413, (f"texts[{number}] is too long: {len(text):,} characters (at most "
                         f"{max_text_chars:,})")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:  # JSON's "\ud800": a lone surrogate
            return 400, (f"texts[{number}] is not valid Unicode: character {err.start} is a "
                         f"lone surrogate (U+{ord(text[err.start]):04X})")
        if not text.strip() and task_name != "generation":  # an empty prompt starts anew
            return 400, f"texts[{number}] is empty"
    return None


def one_line_of(message) -> str:
    """A message's first non-empty line, so that every error body stays one line."""
    return next((line for line in str(message).splitlines() if line.strip()), "")


def failure(err: Exception) -> str:
    """An unexpected exception as the one line of a 500."""
    return f"the server failed on this request: {first_line(err)}"


def describe(error: dict) -> str:
    """Pydantic's first complaint as one line: where, and what."""
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    if error.get("type") == "extra_forbidden":
        return f"unknown option '{where}'; the options are: " + ", ".join(
            name for name in PredictRequest.model_fields if name != "texts")
    if where == "" and error.get("type") in ("model_attributes_type", "dict_type"):
        return 'the body must be a JSON object: {"texts": ["..."], ...options}'
    if error.get("type") == "json_invalid":
        return f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'invalid')})"
    return f"{where or 'body'}: {error.get('msg', 'invalid')}"
