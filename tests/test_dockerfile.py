"""The Dockerfile, checked without a Docker engine.

First its instructions: two stages on a slim Python base, a non-root user,
the exposed port, a health check against `/healthz`, the entrypoint and
default command, and nothing secret copied in or set. Then the build
stage's steps are replayed in a temporary folder: the same files copied
(what `.dockerignore` lets through), a wheel built from them, installed into
a fresh virtual environment, and the installed `session-minter` run: `--help`,
`keygen`, `check-config`, and `serve` until the image's own HEALTHCHECK
command passes against it.

No network: the wheel is built without build isolation, and the new
environment finds the dependencies through a `.pth` line naming this
checkout's `.venv` site-packages (what `pip install` would have downloaded);
the project itself comes only from the wheel.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str]:
        value = json.loads(self.arguments)
        assert isinstance(value, list)
        return [str(item) for item in value]


def parse(text: str) -> list[list[Instruction]]:
    """Dockerfile instructions grouped by stage (continuations joined, comments dropped)."""
    stages: list[list[Instruction]] = []
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1].rstrip() + " "
            continue
        logical += line
        keyword, _, arguments = logical.partition(" ")
        instruction = Instruction(keyword.upper(), arguments.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, "FROM comes first"
        stages[-1].append(instruction)
        logical = ""
    return stages


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return parse((ROOT / "Dockerfile").read_text(encoding="utf-8"))


def only(stage: list[Instruction], keyword: str) -> Instruction:
    [found] = [i for i in stage if i.keyword == keyword]
    return found


def test_two_stages_on_a_slim_python_base(stages: list[list[Instruction]]) -> None:
    assert len(stages) == 2
    build, runtime = (only(stage, "FROM").arguments for stage in stages)
    assert build.startswith("python:3.")
    assert build.split()[0].endswith("-slim")
    assert build.split()[-2:] == ["AS", "build"]
    assert runtime.startswith("python:3.")
    assert runtime.endswith("-slim")
    copies = [i.arguments for i in stages[1] if i.keyword == "COPY"]
    assert "--from=build /opt/venv /opt/venv" in copies, "the runtime takes the venv only"


def test_runs_as_a_non_root_user(stages: list[list[Instruction]]) -> None:
    runtime = stages[1]
    user = only(runtime, "USER").arguments
    assert user.split(":")[0] not in ("root", "0")
    position = {i.keyword: n for n, i in enumerate(runtime)}
    assert position["USER"] < position["ENTRYPOINT"]
    assert not [i for i in runtime[position["USER"] :] if i.keyword == "RUN"], (
        "nothing as root after"
    )


def test_port_healthcheck_entrypoint_and_command(stages: list[list[Instruction]]) -> None:
    runtime = stages[1]
    assert only(runtime, "EXPOSE").arguments == "8080"
    healthcheck = only(runtime, "HEALTHCHECK").arguments
    options, _, command = healthcheck.partition("CMD ")
    assert "--interval=" in options
    assert "--timeout=" in options
    assert "http://127.0.0.1:8080/healthz" in command
    assert only(runtime, "ENTRYPOINT").exec_form() == ["session-minter"]
    assert only(runtime, "CMD").exec_form() == [
        "serve",
        "--config",
        "/etc/session-minter/config.toml",
    ]


SECRET_WORDS = ("secret", "password", "token", "private", "credential")


def test_no_secret_is_baked_in(stages: list[list[Instruction]]) -> None:
    for stage in stages:
        for instruction in stage:
            if instruction.keyword in ("ENV", "ARG", "LABEL"):
                lowered = instruction.arguments.lower()
                assert not any(word in lowered for word in SECRET_WORDS), instruction
            if instruction.keyword in ("COPY", "ADD"):
                sources = instruction.arguments.split()[:-1]
                for source in sources:
                    assert not source.endswith((".pem", ".key", ".jwk", ".env")), instruction
                    assert "keys" not in source.split("/"), instruction
                    assert source != "config.toml", "config is mounted, not copied"
    ignored = dockerignore()
    for path in ("keys/instance.pem", ".env", "deploy/x.pem", "config.toml", ".venv", ".git"):
        assert is_ignored(path, ignored), path


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def is_ignored(relative: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        parts = relative.split("/")
        if fnmatch(relative, pattern) or any(fnmatch(part, bare) for part in parts):
            return True
        if any("/".join(parts[: n + 1]) == pattern for n in range(len(parts))):
            return True
    return False


# -- the build stage, replayed --------------------------------------------------------------------


def build_context(stage: list[Instruction], into: Path) -> Path:
    """Copy what the build stage's COPY lines copy (minus .dockerignore) to `into`."""
    patterns = dockerignore()
    workdir = Path(only(stage, "WORKDIR").arguments)
    for instruction in stage:
        if instruction.keyword != "COPY":
            continue
        *sources, destination = instruction.arguments.split()
        target_base = into / (workdir / destination).relative_to(workdir)
        for source in sources:
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(
                    origin,
                    target_base,
                    ignore=lambda folder, names: [
                        name
                        for name in names
                        if is_ignored(str((Path(folder) / name).relative_to(ROOT)), patterns)
                    ],
                    dirs_exist_ok=True,
                )
            else:
                target_base.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target_base / origin.name)
    return into


def run(
    command: list[str], cwd: Path, timeout_s: float = 120, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SESSION_"))}
    return subprocess.run(  # noqa: S603 - fixed commands from this test
        command,
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def installed(stages: list[list[Instruction]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build stage's steps in a temporary folder; the venv's bin folder."""
    folder = tmp_path_factory.mktemp("image")
    build = stages[0]
    runs = [i.arguments for i in build if i.keyword == "RUN"]
    assert runs == [
        "apt-get update "
        "&& apt-get install -y --no-install-recommends gcc libc6-dev "
        "&& rm -rf /var/lib/apt/lists/*",
        "python -m venv /opt/venv",
        "/opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels /src",
        "/opt/venv/bin/pip install /wheels/session_minter-*.whl",
    ], "the replay below follows these steps; change both together"
    # The compiler the first RUN installs: this machine has its own.
    assert shutil.which("gcc"), "gcc builds the compiled modules"
    source = build_context(build, folder / "src")
    venv = folder / "venv"
    done = run([sys.executable, "-m", "venv", "--without-pip", str(venv)], folder)
    assert done.returncode == 0, done.stderr
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    done = run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", "wheels", str(source)],
        folder,
        timeout_s=900,  # mypyc compiles the request path: a minute or two on two cores
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [wheel] = (folder / "wheels").glob("session_minter-*.whl")
    venv_python = venv / "bin" / "python"
    site = Path(
        run(
            [str(venv_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            folder,
        ).stdout.strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = run(
        [*pip, "--python", str(venv_python), "install", "--no-deps", "--no-index", str(wheel)],
        folder,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return venv / "bin"


def test_the_installed_entrypoint_runs_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    where = run(
        [
            str(installed / "python"),
            "-c",
            "import proxy, minter, proxy.tokens, minter.verify;"
            "print(proxy.__file__, minter.__file__, proxy.tokens.__file__, minter.verify.__file__)",
        ],
        tmp_path,
    )
    assert where.returncode == 0, where.stderr
    modules = [Path(module) for module in where.stdout.split()]
    for module in modules:
        assert module.is_relative_to(installed.parent), "from the wheel, not the checkout"
    assert [module.suffix for module in modules[2:]] == [".so", ".so"], "compiled by mypyc"
    helped = run([str(installed / "session-minter"), "--help"], tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "check-config" in helped.stdout


def test_keygen_and_check_config_with_the_installed_entrypoint(
    installed: Path, tmp_path: Path
) -> None:
    minter = str(installed / "session-minter")
    made = run([minter, "keygen", "--out", "keys/instance.pem"], tmp_path)
    assert made.returncode == 0, made.stderr
    kid = made.stdout.strip().rpartition("kid ")[2]
    (tmp_path / "config.toml").write_text('[keys]\nsigning = ["keys/instance.pem"]\n')
    checked = run([minter, "check-config", "--config", "config.toml"], tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert f"signing key: kid={kid} alg=RS256" in checked.stdout
    (tmp_path / "bad.toml").write_text("[server]\nsurprise = 1\n")
    refused = run([minter, "check-config", "--config", "bad.toml"], tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == "session-minter: config error: server.surprise: unknown key\n"


def test_the_image_healthcheck_passes_against_the_installed_server(
    installed: Path, tmp_path: Path, stages: list[list[Instruction]]
) -> None:
    minter = str(installed / "session-minter")
    assert run([minter, "keygen", "--out", "keys/instance.pem"], tmp_path).returncode == 0
    port = free_port()
    (tmp_path / "config.toml").write_text(
        f'[server]\nport = {port}\nlog_format = "json"\n'
        f'[origin]\nurl = "http://127.0.0.1:{free_port()}"\n'  # no origin: still alive
        '[keys]\nsigning = ["keys/instance.pem"]\n'
    )
    healthcheck = only(stages[1], "HEALTHCHECK").arguments.partition("CMD ")[2]
    command = [
        str(installed / part) if part == "python" else part.replace(":8080/", f":{port}/")
        for part in json.loads(healthcheck)
    ]
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(  # noqa: S603 - the installed entrypoint, fixed arguments
        [minter, "serve", "--config", "config.toml"], cwd=tmp_path, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            probe = run(command, tmp_path)
            if probe.returncode == 0:
                break
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, shlex.join(command) + probe.stderr
            time.sleep(0.05)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=START_TIMEOUT_S) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
