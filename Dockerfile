# telecare-gateway: MQTT ingest -> local journal -> TimescaleDB, HTTP API/health/metrics on 8470.
#
#   docker build -t telecare-gateway .
#   docker compose up            # the development stack (see docker-compose.yml)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Unprivileged runtime user; its home is the working directory, which it cannot write to.
RUN groupadd --system --gid 10001 telecare \
    && useradd --system --uid 10001 --gid telecare --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin telecare

WORKDIR /app

# Pinned dependencies first, so this layer is reused while only the source changes.
COPY requirements.lock /tmp/requirements.lock
RUN pip install -r /tmp/requirements.lock && rm /tmp/requirements.lock

# The project itself (its dependencies are all in the lock above). The source tree is
# thrown away after the install; only the example schemes are kept, since
# TELECARE_SCHEMES names them by paths relative to the working directory.
COPY . /tmp/src
RUN pip install --no-deps /tmp/src \
    && cp -r /tmp/src/examples /app/examples \
    && rm -rf /tmp/src

# The journal holds events not yet shipped to TimescaleDB: it must outlive the container.
# Mount a persistent volume here (docker-compose.yml does).
RUN mkdir -p /var/lib/telecare && chown telecare:telecare /var/lib/telecare
VOLUME ["/var/lib/telecare"]

ENV TELECARE_HTTP__HOST=0.0.0.0 \
    TELECARE_HTTP__PORT=8470 \
    TELECARE_JOURNAL__PATH=/var/lib/telecare/journal.sqlite3

USER telecare
EXPOSE 8470

# No curl in the slim image: probe /healthz with the standard library.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('TELECARE_HTTP__PORT', '8470'), timeout=3)"]

CMD ["telecare", "gateway", "run"]
