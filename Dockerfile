# Invite Service image: one image runs `worker`, `migrate`, `doctor` and the sandbox.
# Build:  docker build -t invite-service .
# Run:    docker run --env-file .env invite-service worker
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY models ./models
COPY adapters ./adapters
COPY streams ./streams
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 invite
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER invite
WORKDIR /home/invite
ENV INVITE_WEB_HOST=0.0.0.0 INVITE_DATA_DIR=/home/invite/data
EXPOSE 8002
HEALTHCHECK --interval=15s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8002/health').status != 200)"
ENTRYPOINT ["invite-service"]
CMD ["worker"]
