"""nlpseq-serve's limits and failures with a stand-in model (no training): the caps on a
request's work, a batch that fails for one request, errors that stay one line of JSON."""

import asyncio
from types import SimpleNamespace

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from nlpseq.errors import NlpseqError  # noqa: E402
from nlpseq.serving.app import create_app  # noqa: E402
from nlpseq.serving.batcher import Batcher, Pending  # noqa: E402

OPTIONS = {"generation": ("max_new_tokens", "greedy", "temperature", "top_k", "top_p",
                          "seed", "stop_at_eos"),
           "translation": ("beam_size", "length_penalty", "n_best", "batch_size",
                           "attention_file")}


def fake_predict(texts: list[str], **options) -> list[dict]:
    """One row per text; a model that breaks on the text "boom" as real ones break on a
    text they cannot read."""
    if "boom" in texts:
        raise TypeError("cannot tokenize\nsecond line of the message")
    return [{"text": text} for text in texts]


def fake_model(task_name: str = "sentiment"):
    return SimpleNamespace(
        predict=fake_predict, task_name=task_name, label_names=None,
        task=SimpleNamespace(predict_options=OPTIONS.get(task_name, ("batch_size",))),
        config=SimpleNamespace(encoder=SimpleNamespace(cell="gru")))


def test_a_failed_batch_is_retried_one_request_at_a_time():
    calls = []

    def predict(texts, **options):
        calls.append(list(texts))
        return fake_predict(texts, **options)

    async def scenario():
        batcher = Batcher(predict)
        loop = asyncio.get_running_loop()
        batch = [Pending([text], {}, loop.create_future()) for text in ("good", "boom", "fine")]
        await batcher.run(batch)
        return batcher, [p.answer for p in batch]

    batcher, (good, bad, fine) = asyncio.run(scenario())
    assert good.result() == [{"text": "good"}] and fine.result() == [{"text": "fine"}]
    assert isinstance(bad.exception(), TypeError)
    assert calls == [["good", "boom", "fine"], ["good"], ["boom"], ["fine"]]
    assert batcher.batches_run == 2


@pytest.mark.parametrize(("task_name", "body", "message"), [
    ("generation", {"texts": ["the"], "max_new_tokens": 100_000_000, "stop_at_eos": False},
     "max_new_tokens=100000000 is over this server's cap, max_new_tokens_cap=1024"),
    ("translation", {"texts": ["a house"], "beam_size": 1_000_000},
     "beam_size=1000000 is over this server's cap, beam_size_cap=16"),
    ("translation", {"texts": ["a house"], "n_best": 17},
     "n_best=17 is over this server's cap, beam_size_cap=16"),
])
def test_requests_over_the_caps_are_refused_naming_the_cap(task_name, body, message):
    with TestClient(create_app(fake_model(task_name))) as client:
        answer = client.post("/predict", json=body)
        assert answer.status_code == 400
        assert message in answer.json()["error"]
        assert "start nlpseq-serve with a larger" in answer.json()["error"]
        assert client.post("/predict", json={"texts": ["ok"]}).status_code == 200


def test_a_raised_cap_admits_the_request():
    app = create_app(fake_model("generation"), max_new_tokens_cap=5000)
    with TestClient(app) as client:
        assert client.post("/predict", json={"texts": ["the"], "max_new_tokens": 5000}
                           ).status_code == 200


def test_an_unexpected_failure_is_a_json_500_and_the_server_goes_on():
    with TestClient(create_app(fake_model())) as client:
        answer = client.post("/predict", json={"texts": ["boom"]})
        assert answer.status_code == 500
        assert answer.json() == {"error": "the server failed on this request: TypeError: "
                                          "cannot tokenize"}
        assert client.post("/predict", json={"texts": ["dull"]}).json() == {
            "results": [{"text": "dull"}]}


@pytest.mark.parametrize(("request_args", "status", "message"), [
    ({"content": b'{"texts": ["\\ud800"]}'}, 400,
     "texts[0] is not valid Unicode: character 0 is a lone surrogate (U+D800)"),
    ({"content": b'{"texts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"}, 400,
     "There was an error parsing the body"),
])
def test_unreadable_bodies_get_one_line_of_json(request_args, status, message):
    with TestClient(create_app(fake_model())) as client:
        answer = client.post("/predict", headers={"content-type": "application/json"},
                             **request_args)
        assert answer.status_code == status
        assert answer.json() == {"error": message}
        assert client.get("/missing").json() == {"error": "Not Found"}


def test_an_address_the_server_cannot_listen_on_is_refused_before_the_model_loads():
    import socket

    from nlpseq.cli.serve import check_address

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(NlpseqError) as caught:
            check_address("127.0.0.1", port)
        assert str(caught.value) == (f"cannot listen on 127.0.0.1:{port} (Address already in "
                                     "use); pick another port= or host=")
    with pytest.raises(NlpseqError, match=r"^port=99999 is not a port: expected 0..65535$"):
        check_address("127.0.0.1", 99999)
