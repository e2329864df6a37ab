# syntax=docker/dockerfile:1
# The stand-in portal + External Authentication service with the DEMO users (compose demo only).
#   docker build -f deploy/demo/demo-provider.Dockerfile -t contact-sync/demo-provider .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 demo \
 && useradd --system --uid 10001 --gid demo --no-create-home \
            --home-dir /nonexistent --shell /usr/sbin/nologin demo
COPY deploy/demo/demo_provider.py /opt/demo/demo_provider.py
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/portal/DEMO', timeout=2)"]
ENTRYPOINT ["python", "/opt/demo/demo_provider.py", "--host", "0.0.0.0", "--port", "8000"]
