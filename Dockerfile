# Cheqpoint: one image runs the service (`serve`) or the worker alone (`worker`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY api ./api
COPY bot ./bot
COPY cheqpoint_client ./cheqpoint_client
RUN pip install . && useradd --create-home cheqpoint && mkdir /data && chown cheqpoint /data

USER cheqpoint
# The embedded default keeps its SQLite file in a volume; set DATABASE_URL for PostgreSQL.
ENV DATABASE_URL=sqlite+aiosqlite:////data/cheqpoint.db
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["sh", "-c", "cheqpoint db upgrade && cheqpoint serve --host 0.0.0.0 --port 8000"]
