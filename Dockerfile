# Invite Service image: one image runs `worker`, `migrate`, `doctor` and `sandbox`.
#   docker build -t invite-service .
#   docker run --env-file .env invite-service worker
#   docker run invite-service sandbox --host 0.0.0.0 --port 8090
# deploy/docker-compose.yml builds and runs it; deploy/check.sh lints this file.

# -- build: install the project and its dependencies into a virtualenv ------------
FROM python:3.11-slim-bookworm AS build
# Compilers only for dependencies without a wheel for this platform; they stay
# in this stage and never reach the runtime image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY models ./models
COPY adapters ./adapters
COPY streams ./streams
# A regular (non-editable) install: the venv alone is the application.
RUN /opt/venv/bin/pip install .

# -- runtime: the venv and a non-root user, nothing else ---------------------------
FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 --user-group invite
# Copying the finished venv (not wheels to install) keeps no installer leftovers
# in any layer.
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    INVITE_WEB_HOST=0.0.0.0 \
    INVITE_DATA_DIR=/home/invite/data
USER 10001:10001
WORKDIR /home/invite
EXPOSE 8002
# Asks the address the worker serves on (INVITE_WEB_HOST, which compose sets to
# the container's name so faust can route between workers); 0.0.0.0 means any
# local address. urlopen raises on a non-2xx answer, so the exit code follows.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; h = os.environ.get('INVITE_WEB_HOST', '127.0.0.1'); h = '127.0.0.1' if h in ('', '0.0.0.0') else h; urllib.request.urlopen(f\"http://{h}:{os.environ.get('INVITE_WEB_PORT', '8002')}/health\", timeout=4)"]
ENTRYPOINT ["invite-service"]
CMD ["worker"]
