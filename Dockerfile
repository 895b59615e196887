# syntax=docker/dockerfile:1
# session-minter: the edge (and the reference origin) in one image.
#
#   docker build -t session-minter .
#   docker run -v ./config.toml:/etc/session-minter/config.toml:ro \
#              -v ./keys:/var/lib/session-minter/keys:ro -p 8080:8080 session-minter
#
# No secret is baked in: keys and config are mounted at run time, secrets come
# from the environment (SESSION_MINTER_<SECTION>__<KEY>).

# -- build: a wheel of the project, installed with its dependencies into a venv --
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# A C compiler: the wheel's request path is compiled by mypyc (setup.py).
# Only this stage has it; the runtime stage takes the built venv alone.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY minter ./minter
COPY proxy ./proxy
COPY origin ./origin
COPY fapi_client ./fapi_client
RUN python -m venv /opt/venv
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels /src
RUN /opt/venv/bin/pip install /wheels/session_minter-*.whl

# -- runtime: the venv only, run by an unprivileged user, no network needed --
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 minter \
 && useradd --system --uid 10001 --gid minter --no-create-home \
      --home-dir /var/lib/session-minter --shell /usr/sbin/nologin minter \
 && mkdir -p /etc/session-minter /var/lib/session-minter/keys /var/lib/session-minter/data \
 && chown -R minter:minter /var/lib/session-minter
COPY --from=build /opt/venv /opt/venv
COPY config.example.toml /etc/session-minter/config.example.toml
USER minter
WORKDIR /var/lib/session-minter
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["session-minter"]
CMD ["serve", "--config", "/etc/session-minter/config.toml"]
