"""`ssmusic serve`'s own flags: each limit refused in one line before any model loads."""

import pytest

from ssmusic.cli import main


@pytest.mark.parametrize("flags,message", [
    (["--max-queue", "-1"], "--max-queue: expected an integer >= 0 (0: no waiting)"),
    (["--cancel-after", "2"], "--cancel-after: expected at least 4 s (browsers reconnect within 3 s)"),
    (["--max-seconds", "3600"], "--max-seconds: expected a positive duration up to 3599 s"),
    (["--max-seconds", "nan"], "--max-seconds: expected a positive duration"),
    (["--max-connections", "0"], "--max-connections: expected an integer >= 1"),
    (["--keep-jobs", "0"], "--keep-jobs: expected an integer >= 1"),
    (["--keep-minutes", "0"], "--keep-minutes: expected a positive number"),
    (["--port", "70000"], "--port: expected 0..65535"),
    (["--device", "tpu"], "--device tpu: expected cpu or cuda"),
    ([], "/nonexistent: no such checkpoint"),
])
def test_bad_limits_are_refused_before_the_model_loads(flags, message, capsys, monkeypatch):
    monkeypatch.setattr("ssmusic.serve.server.load_warm_model", lambda *a: pytest.fail("the model was loaded"))
    assert main(["serve", "--checkpoint", "/nonexistent", *flags]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_sigterm_while_the_model_loads_exits_0(tiny_model_dir, monkeypatch):
    """A stop asked for before serving (the handler run() installs before loading) leaves with 0."""
    import signal

    pytest.importorskip("uvicorn", reason="the web demo needs the demo extra: pip install -e '.[demo]'")
    before = signal.getsignal(signal.SIGTERM)

    def loading(*args):  # the signal arrives while the model loads
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
        pytest.fail("loading went on after SIGTERM")

    monkeypatch.setattr("ssmusic.serve.server.load_warm_model", loading)
    monkeypatch.setattr("ssmusic.serve.server._configure_logs", lambda: None)  # leave pytest's logging as it is
    try:
        with pytest.raises(SystemExit) as stopped:
            main(["serve", "--checkpoint", str(tiny_model_dir), "--port", "0", "--no-access-log"])
        assert stopped.value.code == 0
    finally:
        signal.signal(signal.SIGTERM, before)
