# syntax=docker/dockerfile:1
# Contact Sync — Contacts service image.
#   docker build -f deploy/docker/contacts-server.Dockerfile -t contact-sync/contacts-server .
#   docker run --read-only --tmpfs /tmp --env-file contacts.env -p 8002:8002 contact-sync/contacts-server
# The root filesystem may be read-only: everything the process writes (gunicorn worker
# heartbeats, prometheus multiprocess files) goes to /tmp, which must be a writable volume.
# `serve` applies pending database migrations (bundled in the package) before gunicorn starts;
# `docker run ... contact-sync/contacts-server migrate` applies them alone.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build: a self-contained venv
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/contact-sync
WORKDIR /src
# Dependencies first, from pyproject.toml alone, so a source change does not reinstall them.
COPY pyproject.toml README.md LICENSE ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && /opt/contact-sync/bin/pip install -r requirements.txt
COPY shared ./shared
COPY contacts_service ./contacts_service
RUN /opt/contact-sync/bin/pip install --no-deps . \
 && /opt/contact-sync/bin/python -m compileall -q /opt/contact-sync

# ---------------------------------------------------------------- runtime: no compilers, no pip use
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="contact-sync contacts-server" \
      org.opencontainers.image.description="Contact Sync Contacts service (address books, Smart Contacts)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 contactsync \
 && useradd --system --uid 10001 --gid contactsync --no-create-home \
            --home-dir /nonexistent --shell /usr/sbin/nologin contactsync
COPY --from=build /opt/contact-sync /opt/contact-sync
ENV PATH=/opt/contact-sync/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    WEB_CONCURRENCY=2
VOLUME ["/tmp"]
USER 10001:10001
EXPOSE 8002
# Liveness only (no dependencies); urlopen raises on a non-2xx answer, so the exit code is 1.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8002/healthz', timeout=2)"]
ENTRYPOINT ["python", "-m", "contacts_service"]
CMD ["serve", "--bind", "0.0.0.0:8002"]
