"""What the web API accepts: a small JSON body, parsed without surprises, checked by the same rules
as the CLI (ssmusic.checks.check_seconds / check_prompt, ssmusic.model.sampling.SamplingParams).

Every refusal is an HttpError whose type carries its status code (the app never matches text):
415 for a body that is not declared JSON, 413 beyond MAX_BODY_BYTES, 400 for anything else wrong.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import AsyncIterator

from ssmusic.checks import check_prompt, check_seconds
from ssmusic.errors import BadValue, SsmusicError
from ssmusic.model.sampling import SamplingParams

MAX_PROMPT_CHARS = 500
MAX_BODY_BYTES = 16 * 1024  # a prompt of 500 characters and five numbers fit many times over
FIELDS = ("prompt", "seconds", "cfg", "temperature", "top_k", "seed")
RANDOM_SEEDS = 2**31  # a seed the server draws stays exact in JavaScript (2^53) and short to read


class HttpError(SsmusicError):
    """A request the server refuses; `status` is its HTTP status code (400 unless a subclass says)."""

    status = 400


class BadRequest(HttpError):
    """A body or field that breaks a rule: 400."""


class TooLarge(HttpError):
    """A body beyond MAX_BODY_BYTES: 413, decided before it is read whole."""

    status = 413


class NotJson(HttpError):
    """A body not declared as JSON (what a cross-site form would send): 415."""

    status = 415


class NotFound(HttpError):
    """No such job (never was, or expired): 404."""

    status = 404


class Busy(HttpError):
    """The server is at a limit it sets itself (queue full, shutting down): 503, try again later."""

    status = 503


@dataclass(frozen=True)
class Request:
    prompt: str
    seconds: float
    sampling: SamplingParams  # seed always set: drawn here when the visitor leaves it empty


def check_json_type(content_type: str | None) -> None:
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise NotJson(f"send the request as JSON (Content-Type: application/json), not {kind or 'no Content-Type'}")


async def read_body(chunks: AsyncIterator[bytes], declared_length: str | None, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused (TooLarge) as soon as it passes `limit` bytes: never held whole when huge."""
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        raise TooLarge(f"the request body is {declared_length} bytes; at most {limit} are accepted")
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"the request body is over {limit} bytes; at most {limit} are accepted")
    return bytes(body)


def parse_json(body: bytes) -> object:
    """JSON text -> a value. NaN, Infinity and numbers too large for a float become float NaN / inf,
    and integers of more than 30 digits become inf, so the field that holds one is refused by name
    (Python's own int() refuses 4,300+ digits with a ValueError, and deep nesting recurses)."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=float,
                          parse_int=lambda text: int(text) if len(text) <= 30 else float(text))
    except UnicodeDecodeError:
        raise BadRequest("the request body must be UTF-8 JSON") from None
    except RecursionError:
        raise BadRequest("the request body is nested too deeply; send one flat JSON object") from None
    except ValueError as err:
        raise BadRequest(f"the request body is not valid JSON ({str(err)[:100]})") from None


def _integer(value: object) -> object:
    """JSON has one number type: 4.0 is accepted where an integer is expected."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def parse_request(body: object, defaults: dict, max_seconds: float) -> Request:
    """A parsed JSON body -> Request, or BadRequest naming the field, by the CLI's rules. Missing or
    null fields take the model's defaults (`defaults`: cfg, temperature, top_k) and a random seed."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object, e.g. {\"prompt\": \"a calm piano piece\"}")
    unknown = sorted(map(str, set(body) - set(FIELDS)))
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}"[:200] + f"; known: {', '.join(FIELDS)}")
    given = {name: body[name] for name in FIELDS if body.get(name) is not None}
    try:
        prompt = check_prompt(given.get("prompt"), allow_empty=False, max_chars=MAX_PROMPT_CHARS)
        seconds = check_seconds(given.get("seconds", min(10.0, max_seconds)), limit=max_seconds)
        seed = _integer(given["seed"]) if "seed" in given else secrets.randbelow(RANDOM_SEEDS)
        sampling = SamplingParams(cfg_scale=given.get("cfg", defaults["cfg"]), seed=seed,
                                  temperature=given.get("temperature", defaults["temperature"]),
                                  top_k=_integer(given.get("top_k", defaults["top_k"])))
    except BadValue as err:
        raise BadRequest(err.worded(err.name)) from None
    return Request(prompt.strip(), seconds, sampling)
