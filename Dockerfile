# syntax=docker/dockerfile:1
# Cheqpoint: one image runs the service (`serve`), the worker alone (`worker`) or the migrations
# (`db upgrade`, a step of its own: see compose.yaml).

# ---- build: dependencies from the lock file, in their own layer, then the project -----------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only the lock first: this layer is rebuilt when dependencies change, not on every code change.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY api ./api
COPY bot ./bot
COPY cheqpoint_client ./cheqpoint_client
RUN pip install --no-deps . && cheqpoint --version

# ---- run: the virtual environment only, as a numeric non-root user -----------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    HOST=0.0.0.0 PORT=8000 LOG_FORMAT=json \
    DATABASE_URL=sqlite+aiosqlite:////data/cheqpoint.db
RUN groupadd --system --gid 10001 cheqpoint \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin cheqpoint \
    && mkdir /data && chown 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /data
# The embedded default keeps its SQLite file here; set DATABASE_URL for PostgreSQL.
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
# Exec form: `cheqpoint` is PID 1 and gets SIGTERM itself (graceful stop within
# CHEQPOINT_SHUTDOWN_GRACE_SECONDS; keep `docker stop -t` above it).
STOPSIGNAL SIGTERM
ENTRYPOINT ["cheqpoint"]
CMD ["serve"]
