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
        # Swarm: nodes and services by name, with the version an update must name.
        self.nodes = {
            "node3": {
                "Version": {"Index": 7},
                "Spec": {
                    "Availability": "active",
                    "Role": "manager",
                    "Labels": {"mogile.storage": "3"},
                },
            }
        }
        self.services = {
            "avatars_app": {
                "Version": {"Index": 11},
                "Spec": {"Name": "avatars_app", "TaskTemplate": {"ForceUpdate": 2}},
            }
        }
        self.updates: list[tuple[str, dict]] = []
        # What UpdateStatus.State says at each GET after an update, the last one repeated.
        self.update_states = ["updating", "completed"]
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                engine.requests.append(self.path)
                kind, _, name = self.path.strip("/").partition("/")
                if kind in ("nodes", "services"):
                    objects = engine.nodes if kind == "nodes" else engine.services
                    if name not in objects:
                        self._reply(
                            404, b'{"message":"%s %s not found"}' % (kind.encode(), name.encode())
                        )
                        return
                    answer = dict(objects[name])
                    if kind == "services" and engine.updates:
                        state = (
                            engine.update_states.pop(0)
                            if len(engine.update_states) > 1
                            else engine.update_states[0]
                        )
                        answer["UpdateStatus"] = {"State": state, "Message": f"update {state}"}
                    self._reply(200, json.dumps(answer).encode())
                    return
                self._reply(200, json.dumps({"ExitCode": engine.exit_code}).encode())  # exec

            def do_POST(self) -> None:
                engine.requests.append(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith(("/nodes/", "/services/")):
                    kind, name, rest = self.path.strip("/").split("/", 2)
                    objects = engine.nodes if kind == "nodes" else engine.services
                    if rest != f"update?version={objects[name]['Version']['Index']}":
                        self._reply(500, b'{"message":"update out of sequence"}')
                        return
                    spec = json.loads(body)
                    objects[name] = {
                        "Version": {"Index": objects[name]["Version"]["Index"] + 1},
                        "Spec": spec,
                    }
                    engine.updates.append((name, spec))
                    self._reply(200, b"{}")
                    return
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


def swarm(tmp_path, *args):
    return docker_api.main(["--engine", str(tmp_path / "docker.sock"), *args])


def test_draining_a_node_changes_only_its_availability(engine, tmp_path, capsys):
    assert swarm(tmp_path, "node-availability", "node3", "drain") == 0
    [(name, spec)] = engine.updates
    assert name == "node3"
    assert spec == {"Availability": "drain", "Role": "manager", "Labels": {"mogile.storage": "3"}}
    assert "node3: Availability=drain" in capsys.readouterr().out


def test_a_label_is_added_beside_the_node_s_labels(engine, tmp_path):
    assert swarm(tmp_path, "node-label", "node3", "mogile.tracker=true") == 0
    [(_, spec)] = engine.updates
    assert spec["Labels"] == {"mogile.storage": "3", "mogile.tracker": "true"}
    assert spec["Availability"] == "active"


def test_an_unknown_node_is_a_clear_error(engine, tmp_path, capsys):
    assert swarm(tmp_path, "node-availability", "node9", "drain") == 1
    assert "node9" in capsys.readouterr().err
    assert engine.updates == []


def test_a_forced_update_bumps_force_update_and_waits_until_completed(engine, tmp_path, capsys):
    assert swarm(tmp_path, "service-update", "avatars_app") == 0
    [(name, spec)] = engine.updates
    assert (name, spec["TaskTemplate"]["ForceUpdate"]) == ("avatars_app", 3)
    assert engine.update_states == ["completed"]  # it asked until the update had completed
    assert "avatars_app: updated in" in capsys.readouterr().out


def test_an_update_that_rolls_back_fails_with_the_engine_s_message(engine, tmp_path, capsys):
    engine.update_states = ["updating", "rollback_started"]
    assert swarm(tmp_path, "service-update", "avatars_app") == 1
    assert "avatars_app: update rollback_started" in capsys.readouterr().err
