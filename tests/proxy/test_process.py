"""`session-minter serve` as a real process: SIGTERM, workers, SIGHUP key rotation, logs.

The reference origin runs in the test's event loop on the real clock (its
`hang` fault holds a request for as long as a test needs); the edge is
started from a TOML config as a subprocess, exactly as operators start it,
and read back through HTTP, its exit status and its JSON log lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from origin import OriginSettings as ReferenceSettings
from origin import create_app as create_origin_app
from proxy.keygen import write_key
from tests.proxy.served import (
    SERVE,
    TIMEOUT_S,
    UNLIMITED,
    Edge,
    edge_process,
    status_of,
    until,
    wait_ready,
)
from tests.redis_server import free_port
from tests.stack import (
    ISSUER,
    PUSH_SECRET,
    SECRET_KEY,
    Browser,
    decode,
    listening_socket,
    url_of,
)


@dataclass
class Origin:
    url: str
    key_path: Path

    async def faults(self, mode: str) -> None:
        async with (
            aiohttp.ClientSession() as client,
            client.post(
                self.url + "/__origin/faults",
                json={"mode": mode, "latency_ms": 0},
                headers={"Authorization": f"Bearer {SECRET_KEY}"},
            ) as response,
        ):
            assert response.status == 200

    async def held(self) -> int:
        async with (
            aiohttp.ClientSession() as client,
            client.get(
                self.url + "/__origin/faults", headers={"Authorization": f"Bearer {SECRET_KEY}"}
            ) as response,
        ):
            return int((await response.json())["held"])


@contextlib.asynccontextmanager
async def reference_origin(folder: Path, edge_port: int) -> AsyncIterator[Origin]:
    key_path = folder / "keys" / "instance.pem"
    write_key(key_path, overwrite=True)
    sock = listening_socket()
    runner = web.AppRunner(
        create_origin_app(
            ReferenceSettings(
                database=folder / "origin.db",
                signing_key=key_path,
                secret_key=SECRET_KEY,
                edges=(f"http://127.0.0.1:{edge_port}",),
                push_secret=PUSH_SECRET,
            )
        )
    )
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield Origin(url_of(sock), key_path)
    finally:
        await runner.cleanup()


def edge_config(folder: Path, port: int, origin: Origin, keys: list[Path], **server: Any) -> Path:
    path = folder / "edge.toml"
    server_lines = "\n".join(f"{name} = {json.dumps(value)}" for name, value in server.items())
    signing = ", ".join(json.dumps(str(key)) for key in keys)
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = {port}
log_format = "json"
{server_lines}

[origin]
url = "{origin.url}"
timeout_s = 60.0

[tokens]
issuers = ["{ISSUER}"]

[keys]
signing = [{signing}]

[push]
secret = "{PUSH_SECRET}"

[store]
memory_per_worker = true  # the process tests run two workers without Redis

{UNLIMITED}""",
        encoding="utf-8",
    )
    return path


async def connection_refused(url: str) -> bool:
    """True once nothing listens. A connection the kernel accepted in the very moment the
    listener closed is never served, only dropped when shutdown ends: give it up quickly."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as client,
            client.get(url) as response,
        ):
            await response.read()
    except aiohttp.ClientConnectorError:
        return True
    except (TimeoutError, aiohttp.ClientError):
        return False
    return False


async def exit_code(process: subprocess.Popen[bytes]) -> int:
    return await asyncio.to_thread(process.wait, TIMEOUT_S)


# -- SIGTERM -----------------------------------------------------------------------------------


async def test_sigterm_lets_a_slow_request_finish_and_refuses_new_ones(tmp_path: Path) -> None:
    port = free_port()
    async with reference_origin(tmp_path, port) as origin:
        config = edge_config(tmp_path, port, origin, [origin.key_path])
        with edge_process(config, port) as edge:
            await wait_ready(edge)
            async with Browser(edge.url) as browser:
                sid = await browser.sign_in()
                await origin.faults("hang")
                slow = asyncio.create_task(browser.refresh(sid))  # no token: to the origin

                async def held() -> bool:
                    return await origin.held() == 1

                await until(held, "the origin holding the refresh")
                edge.process.send_signal(signal.SIGTERM)

                async def refused() -> bool:
                    return await connection_refused(edge.url + "/healthz")

                await until(refused, "new connections refused")
                assert not slow.done(), "the request in flight is still being answered"
                assert edge.process.poll() is None, "the edge waits for it"
                await origin.faults("ok")
                answer = await slow
            assert answer.status == 200
            assert decode(answer.jwt)[1]["sid"] == sid
            assert await exit_code(edge.process) == 0
            messages = [line["message"] for line in edge.log_lines()]
            assert any(m.startswith("stopping: finishing requests in flight") for m in messages)
            assert messages[-1] == "stopped"


# -- workers -----------------------------------------------------------------------------------


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


async def worker_pids(edge: Edge, workers: int) -> set[int]:
    """The pids of the workers answering `/healthz`, once all `workers` have answered."""
    pids: set[int] = set()

    async def all_seen() -> bool:
        # A new connection each time: the kernel spreads connections, not requests.
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as client,
            client.get(edge.url + "/healthz") as response,
        ):
            pids.add(int((await response.json())["pid"]))
        return len(pids) == workers

    await until(all_seen, "every worker answering")
    return pids


async def test_two_workers_both_answer_on_one_port(tmp_path: Path) -> None:
    port = free_port()
    async with reference_origin(tmp_path, port) as origin:
        config = edge_config(tmp_path, port, origin, [origin.key_path])
        with edge_process(config, port, "--workers", "2") as edge:
            await wait_ready(edge)
            pids = await worker_pids(edge, 2)
            assert edge.process.pid not in pids, "the parent only supervises"
            assert {parent_of(pid) for pid in pids} == {edge.process.pid}
            edge.process.send_signal(signal.SIGTERM)
            assert await exit_code(edge.process) == 0
            assert {_state(pid) for pid in pids} <= {"gone", "Z"}, "the workers exited too"
            # Each worker writes its own log (its writer thread started after the fork)
            # and gets its last lines out before it exits.
            messages = [line["message"] for line in edge.log_lines()]
            for index in range(2):
                assert any(f"(worker {index}," in m for m in messages if m.startswith("serving"))
            assert messages.count("stopped") == 2


async def test_workers_stop_when_their_parent_is_killed(tmp_path: Path) -> None:
    port = free_port()
    async with reference_origin(tmp_path, port) as origin:
        config = edge_config(tmp_path, port, origin, [origin.key_path])
        with edge_process(config, port, "--workers", "2") as edge:
            await wait_ready(edge)
            pids = await worker_pids(edge, 2)
            edge.process.kill()  # SIGKILL: the parent relays nothing
            assert await exit_code(edge.process) == -signal.SIGKILL

            async def workers_gone() -> bool:
                return {_state(pid) for pid in pids} <= {"gone", "Z"}

            await until(workers_gone, "the workers of a killed parent exiting")
            assert await connection_refused(edge.url + "/healthz")


def _state(pid: int) -> str:
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    return "gone"


# -- SIGHUP rotation ---------------------------------------------------------------------------


async def metric(url: str, name: str, **labels: str) -> float:
    async with aiohttp.ClientSession() as client, client.get(url + "/metrics") as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


async def test_sighup_rotation_keeps_old_tokens_verifying_and_signs_with_the_new_key(
    tmp_path: Path,
) -> None:
    port = free_port()
    old_key = write_key(tmp_path / "keys" / "edge-old.pem")
    new_key = write_key(tmp_path / "keys" / "edge-new.pem")
    async with reference_origin(tmp_path, port) as origin:
        # A distinct edge key (not the instance key): only the edge can vouch for its tokens.
        config = edge_config(tmp_path, port, origin, [tmp_path / "keys" / "edge-old.pem"])
        with edge_process(config, port, "--workers", "2") as edge:
            await wait_ready(edge)
            async with Browser(edge.url) as browser:
                sid = await browser.sign_in()
                origin_token = (await browser.refresh(sid)).jwt
                old_token = (await browser.refresh(sid, token=origin_token)).jwt
                assert decode(old_token)[0]["kid"] == old_key.kid

                edge_config(tmp_path, port, origin, [tmp_path / "keys" / "edge-new.pem"])
                edge.process.send_signal(signal.SIGHUP)  # the parent relays it to each worker

                async def both_reloaded() -> bool:
                    return len(reloads_in(edge)) == 2

                await until(both_reloaded, "both workers reloading their keys")
                async with (
                    aiohttp.ClientSession() as client,
                    client.get(edge.url + "/.well-known/jwks.json") as response,
                ):
                    published = {key["kid"] for key in (await response.json())["keys"]}
                assert {old_key.kid, new_key.kid} <= published, "the old key is still published"
                for _ in range(6):
                    answer = await browser.refresh(sid, token=old_token)
                    header, claims = decode(answer.jwt)
                    assert header["kid"] == new_key.kid, "signed with the new key"
                    assert header["oiat"] == decode(old_token)[0]["oiat"], "an edge clone"
                    assert claims["sid"] == sid
            assert await metric(edge.url, "session_minter_key_reloads_total", result="ok") == 1
            assert await metric(edge.url, "session_minter_signing_keys", state="retiring") == 1
            assert all(new_key.kid in line["message"] for line in reloads_in(edge))


def reloads_in(edge: Edge) -> list[dict[str, Any]]:
    return [
        line for line in edge.log_lines() if line["message"].startswith("signing keys reloaded")
    ]


async def test_sighup_with_a_broken_key_keeps_the_old_one(tmp_path: Path) -> None:
    port = free_port()
    async with reference_origin(tmp_path, port) as origin:
        config = edge_config(tmp_path, port, origin, [origin.key_path])
        with edge_process(config, port) as edge:
            await wait_ready(edge)
            (tmp_path / "keys" / "broken.pem").write_text("not a key\n")
            edge_config(tmp_path, port, origin, [tmp_path / "keys" / "broken.pem"])
            edge.process.send_signal(signal.SIGHUP)

            async def counted() -> bool:
                got = await metric(edge.url, "session_minter_key_reloads_total", result="failed")
                return got == 1

            await until(counted, "the failed reload counted")
            async with Browser(edge.url) as browser:
                sid = await browser.sign_in()
                token = (await browser.refresh(sid)).jwt
                minted = (await browser.refresh(sid, token=token)).jwt
            assert decode(minted)[0]["kid"] == decode(token)[0]["kid"], "the old key still signs"
            errors = [line for line in edge.log_lines() if line["level"] == "error"]
            assert errors[0]["message"].startswith("signing keys not reloaded: keys.signing:")


# -- metrics port and logs ------------------------------------------------------------------------


async def test_metrics_port_and_one_json_log_line_per_request(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    async with reference_origin(tmp_path, port) as origin:
        config = edge_config(tmp_path, port, origin, [origin.key_path], metrics_port=metrics_port)
        with edge_process(config, port) as edge:
            await wait_ready(edge)
            async with Browser(edge.url) as browser:
                sid = await browser.sign_in()
                token = (await browser.refresh(sid)).jwt
                minted = await browser.refresh(sid, token=token, query=f"expired_token={token}")
            request_id = minted.headers["X-Request-Id"]
            metrics_url = f"http://127.0.0.1:{metrics_port}"
            assert (
                await metric(
                    metrics_url,
                    "session_minter_refresh_decisions_total",
                    outcome="minted",
                    reason="edge",
                )
                == 1
            )
            assert await status_of(edge.url + "/metrics") == 404, "forwarded: not the edge's"
            edge.process.send_signal(signal.SIGTERM)
            assert await exit_code(edge.process) == 0
    text = edge.log.read_text()
    for secret in (token, minted.jwt, *token.split(".")[1:], *minted.jwt.split(".")[1:]):
        assert secret not in text, "no whole token, nor its payload or signature, in the log"
    lines = edge.log_lines()
    [line] = [line for line in lines if line.get("request_id") == request_id]
    assert line["logger"] == "session_minter.request"
    assert line["route"] == "token"
    assert (line["status"], line["decision"], line["reason"]) == (200, "minted", "edge")
    assert line["path"] == f"/v1/client/sessions/{sid}/tokens"
    assert line["latency_ms"] > 0
    assert line["level"] == "info"
    assert not any(entry["logger"] == "aiohttp.access" for entry in lines), "one line each"
    assert not any(entry.get("route") == "readyz" for entry in lines), "probes are not logged"


@pytest.mark.parametrize("loop", ["asyncio", "auto"])
async def test_serves_on_the_configured_event_loop(tmp_path: Path, loop: str) -> None:
    port = free_port()
    async with reference_origin(tmp_path, port) as origin:
        config = edge_config(tmp_path, port, origin, [origin.key_path], loop=loop)
        with edge_process(config, port) as edge:
            await wait_ready(edge)
            async with Browser(edge.url) as browser:
                sid = await browser.sign_in()
                token = (await browser.refresh(sid)).jwt
                assert (await browser.refresh(sid, token=token)).status == 200


async def test_the_origin_command_logs_no_token_from_a_query_or_path(tmp_path: Path) -> None:
    port = free_port()
    config = _origin_config(tmp_path, port, "origin.db")
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJlLWJ5dGVz"
    log = tmp_path / "origin.log"
    base = f"http://127.0.0.1:{port}"
    process = _start(["origin", "--config", str(config)], log)
    try:
        await until(lambda: _answers(base + "/v1/jwks"), "the origin answering")
        for target in (
            f"/v1/client/sessions/sess_x/tokens?expired_token={jwt}&__clerk_db_jwt={jwt}",
            f"/v1/client/sessions/{jwt}/tokens",
        ):
            async with (
                aiohttp.ClientSession() as client,
                client.post(base + target, data={"organization_id": ""}) as answer,
            ):
                assert answer.status in (401, 404)  # an error line names the path
    finally:
        process.terminate()
        assert await exit_code(process) == 0
    text = log.read_text()
    assert '"clerk error"' in text
    assert "c2lnbmF0dXJlLWJ5dGVz" not in text, text


async def _answers(url: str) -> bool:
    return await status_of(url) == 200


def _start(arguments: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [str(SERVE), *arguments], stdout=sink, stderr=sink
        )


async def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    port = free_port()
    async with reference_origin(tmp_path, port) as origin:
        config = edge_config(tmp_path, port, origin, [origin.key_path])
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", port))
            taken.listen()
            with edge_process(config, port) as edge:
                assert await exit_code(edge.process) == 2
    text = edge.log.read_text()
    assert "cannot listen on" in text
    assert "Traceback" not in text


def _origin_config(folder: Path, port: int, database: str) -> Path:
    write_key(folder / "keys" / "instance.pem", overwrite=True)
    config = folder / "origin.toml"
    config.write_text(
        f"""
[server]
log_format = "json"

[reference_origin]
host = "127.0.0.1"
port = {port}
database = "{database}"
signing_key = "keys/instance.pem"
secret_key = "{SECRET_KEY}"
edges = []
""",
        encoding="utf-8",
    )
    return config


async def test_the_origin_command_with_its_port_in_use_is_one_line_and_exit_2(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = _origin_config(tmp_path, port, "origin.db")
    log = tmp_path / "origin.log"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        assert await exit_code(_start(["origin", "--config", str(config)], log)) == 2
    text = log.read_text()
    assert f"cannot listen on 127.0.0.1:{port}" in text, text
    assert "Traceback" not in text


async def test_the_origin_command_with_a_database_it_cannot_open_is_one_line_and_exit_2(
    tmp_path: Path,
) -> None:
    config = _origin_config(tmp_path, free_port(), "absent-folder/origin.db")
    log = tmp_path / "origin.log"
    assert await exit_code(_start(["origin", "--config", str(config)], log)) == 2
    text = log.read_text()
    assert f"cannot open the database {tmp_path / 'absent-folder' / 'origin.db'}" in text, text
    assert "Traceback" not in text
