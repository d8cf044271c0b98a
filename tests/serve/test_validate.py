"""What the web API accepts, before any job exists: bodies, JSON, and the CLI's rules by field."""

import asyncio

import pytest

from ssmusic.serve.validate import (MAX_BODY_BYTES, BadRequest, NotJson, TooLarge, check_json_type, parse_json,
                                    parse_request, read_body)

DEFAULTS = {"cfg": 3.0, "temperature": 0.7, "top_k": 250}


def parsed(text: str, max_seconds: float = 60.0):
    return parse_request(parse_json(text.encode()), DEFAULTS, max_seconds)


@pytest.mark.parametrize("text,message", [
    ('{"prompt": "x", "seed": 1e400}', "seed: expected an integer from 0 to"),
    ('{"prompt": "x", "seed": Infinity}', "seed: expected an integer"),
    ('{"prompt": "x", "seed": ' + "9" * 5000 + "}", "seed: expected an integer"),
    ('{"prompt": "x", "top_k": NaN}', "top_k: expected an integer >= 0"),
    ('{"prompt": "x", "seconds": -Infinity}', "seconds: expected a positive duration up to 60 s"),
    ('{"prompt": "x", "seconds": 61}', "seconds: expected a positive duration up to 60 s, got 61"),
    ('{"prompt": "x", "seconds": "5,5"}', "seconds: expected a positive duration"),
    ('{"prompt": "x", "cfg": true}', "cfg: expected a number >= 0, got True"),
    ('{"prompt": "x", "top_k": 2.5}', "top_k: expected an integer"),
    ('{"prompt": "x", "temperature": 0}', "temperature: expected a positive number"),
    ('{"prompt": "x", "seed": -4}', "seed: expected an integer from 0"),
    ('{"prompt": "   "}', "prompt: expected a description of the music to generate, got an empty text"),
    ('{"seconds": 2}', "prompt: expected a text description of the music, got nothing"),
    ('{"prompt": 7}', "prompt: expected a text description of the music, got int"),
    ('{"prompt": "' + "x" * 501 + '"}', "prompt: expected at most 500 characters, got 501"),
    ('{"prompt": "x", "volume": 11}', "unknown field(s): volume"),
    ("[1, 2]", "must be a JSON object"),
    ("[" * 5000, "nested too deeply"),
    ("{not json", "not valid JSON"),
])
def test_bad_bodies_are_refused_by_field_with_the_cli_rules(text, message):
    with pytest.raises(BadRequest) as refused:
        parsed(text)
    assert message in str(refused.value) and len(str(refused.value)) < 300


def test_a_good_body_and_its_defaults():
    request = parsed('{"prompt": " a calm piano piece ", "seconds": 6, "top_k": 40.0, "seed": 3}')
    assert (request.prompt, request.seconds, request.sampling.top_k, request.sampling.seed) == \
        ("a calm piano piece", 6.0, 40, 3)
    assert (request.sampling.cfg_scale, request.sampling.temperature) == (3.0, 0.7)
    drawn = parsed('{"prompt": "x", "seed": null, "cfg": null}')
    assert 0 <= drawn.sampling.seed < 2**31 and drawn.sampling.cfg_scale == 3.0 and drawn.seconds == 10.0
    assert parsed('{"prompt": "x"}', max_seconds=4).seconds == 4.0  # the default never passes the limit


def test_not_utf8_is_refused():
    with pytest.raises(BadRequest, match="UTF-8"):
        parse_json(b"\xff\xfe")


@pytest.mark.parametrize("kind", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_only_json_is_accepted(kind):
    with pytest.raises(NotJson) as refused:
        check_json_type(kind)
    assert refused.value.status == 415
    check_json_type("application/json; charset=utf-8")


async def chunks(parts):
    for part in parts:
        yield part


def test_bodies_are_capped_while_read():
    assert asyncio.run(read_body(chunks([b"{}"]), "2")) == b"{}"
    with pytest.raises(TooLarge, match="at most 16384") as refused:
        asyncio.run(read_body(chunks([b"x"]), str(400 * 2**20)))  # refused on its declared length
    assert refused.value.status == 413
    endless = chunks([b"[" * 4096] * 1000)  # no length declared: stops reading past the cap
    with pytest.raises(TooLarge):
        asyncio.run(read_body(endless, None))
    assert MAX_BODY_BYTES < 100_000
