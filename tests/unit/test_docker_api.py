"""scripts/docker_api.py against a stand-in Docker engine on a Unix socket."""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler

import docker_api
import pytest

pytestmark = pytest.mark.unit


class Engine:
    """Answers POST /containers/<name>/stop|start like the Docker Engine API."""

    def __init__(self, path: str) -> None:
        self.running = {"mogilefs-django-mogstored2-1": True}
        self.requests: list[str] = []
        self.commands: list[list[str]] = []
        self.exit_code = 0
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # GET /exec/<id>/json
                engine.requests.append(self.path)
                self._reply(200, json.dumps({"ExitCode": engine.exit_code}).encode())

            def do_POST(self) -> None:
                engine.requests.append(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/exec/"):  # start: the output, framed
                    out = b"wiped\n"
                    self._reply(200, b"\x01\x00\x00\x00" + len(out).to_bytes(4, "big") + out)
                    return
                _, _, name, action = self.path.split("?")[0].split("/")
                if action == "exec":
                    engine.commands.append(json.loads(body)["Cmd"])
                    self._reply(201, b'{"Id": "e1"}')
                    return
                if name not in engine.running:
                    self._reply(404, b'{"message":"No such container: %s"}' % name.encode())
                elif engine.running[name] == (action == "start"):
                    self._reply(304)
                else:
                    engine.running[name] = action == "start"
                    self._reply(204)

            def _reply(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = socketserver.ThreadingUnixStreamServer(path, Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def engine(tmp_path):
    e = Engine(str(tmp_path / "docker.sock"))
    yield e
    e.close()


def run(engine, tmp_path, action, container, *command):
    """The script against the stand-in engine."""
    return docker_api.main(["--engine", str(tmp_path / "docker.sock"), action, container, *command])


def test_stop_then_start(engine, tmp_path, capsys):
    name = "mogilefs-django-mogstored2-1"
    assert run(engine, tmp_path, "stop", name) == 0
    assert engine.running[name] is False
    assert run(engine, tmp_path, "stop", name) == 0  # already stopped is fine
    assert run(engine, tmp_path, "start", name) == 0
    assert engine.running[name] is True
    assert engine.requests == [
        f"/containers/{name}/stop?t=5",
        f"/containers/{name}/stop?t=5",
        f"/containers/{name}/start",
    ]
    assert "already stopped" in capsys.readouterr().out


def test_exec_runs_the_command_and_returns_its_status(engine, tmp_path, capsys):
    engine.exit_code = 3
    name = "mogilefs-django-mogstored2-1"
    code = run(engine, tmp_path, "exec", name, "--", "sh", "-c", "rm -rf /var/mogdata/dev2/*")
    assert code == 3, capsys.readouterr().err
    assert engine.commands == [["sh", "-c", "rm -rf /var/mogdata/dev2/*"]]
    assert engine.requests == [f"/containers/{name}/exec", "/exec/e1/start", "/exec/e1/json"]
    assert capsys.readouterr().out == "wiped\n"


def test_exec_without_a_command_is_a_usage_error(engine, tmp_path):
    with pytest.raises(SystemExit) as exc:
        run(engine, tmp_path, "exec", "mogilefs-django-mogstored2-1")
    assert exc.value.code == 2


def test_unknown_container_is_a_clear_error(engine, tmp_path, capsys):
    assert run(engine, tmp_path, "stop", "nope") == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_no_engine_is_a_clear_error(tmp_path, capsys):
    code = docker_api.main(["--engine", str(tmp_path / "missing.sock"), "start", "x"])
    assert code == 1
    assert "cannot reach the Docker engine" in capsys.readouterr().err
