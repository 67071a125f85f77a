# imagegate: the OpenAI-compatible image-edit gateway, as a small non-root container.
#
#   docker build -t imagegate:local .
#   docker run --rm -p 127.0.0.1:8000:8000 -e IMAGEGATE_MASTER_KEY=... --stop-timeout 40 imagegate:local
#
# The gateway binds 0.0.0.0 in here, so it refuses to start without IMAGEGATE_MASTER_KEY unless
# IMAGEGATE_ALLOW_UNAUTHENTICATED=true says something in front of it authenticates.
# Every other setting is an IMAGEGATE_* variable, e.g. IMAGEGATE_WORKERS (processes, default 1)
# or IMAGEGATE_CONFIG (a YAML file you mount). The gateway finishes in-flight requests for up to
# IMAGEGATE_GRACEFUL_SHUTDOWN_SECONDS (30) after SIGTERM: give `docker stop` more than that.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/imagegate \
    PATH=/opt/imagegate/bin:$PATH \
    TMPDIR=/var/lib/imagegate/spill

# The runtime user: a fixed numeric id so `runAsNonRoot` style checks can verify it.
# The virtualenv has no pip or setuptools of its own (about 20 MB, and an old setuptools that
# scanners flag): the base image's pip installs into it with --python.
# Uploads over IMAGEGATE_SPILL_IMAGE_BYTES are kept in unlinked temporary files under TMPDIR:
# a directory of the runtime user's, on disk (compose mounts a volume there, since its root
# filesystem is read-only and its /tmp is in memory).
RUN groupadd --gid 10001 imagegate \
 && useradd --uid 10001 --gid imagegate --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin imagegate \
 && mkdir -p /var/lib/imagegate/spill \
 && chown 10001:10001 /var/lib/imagegate/spill \
 && python -m venv --without-pip "$VIRTUAL_ENV"

WORKDIR /build

# Layer 1, the dependencies: they change only when pyproject.toml does, so an edit to the
# source or the README rebuilds nothing but the small layers below. They are read from
# [project].dependencies (tomllib is in the standard library since 3.11) rather than installed
# through the project, which would need the source already.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && pip --python "$VIRTUAL_ENV/bin/python" install -r /tmp/requirements.txt -c constraints.txt \
 && rm /tmp/requirements.txt

# Layer 2, the project itself: a regular (non-editable) install, no dev extras, no
# dependency resolution (done above). pyproject.toml names README.md as the readme, so the
# build needs it. setuptools lives only in pip's isolated build environment, so it does not
# end up in the image; the build tree is deleted afterwards.
COPY README.md ./
COPY src ./src
RUN pip --python "$VIRTUAL_ENV/bin/python" install --no-deps . \
 && cd / && rm -rf /build \
 && pip --python "$VIRTUAL_ENV/bin/python" check \
 && imagegate --version

# An empty, read-only working directory: the settings read a `.env` from the working
# directory, and there must not be one here unless you mount it on purpose.
WORKDIR /app
USER 10001:10001

ENV IMAGEGATE_WORKERS=1
EXPOSE 8000

# Liveness, with the standard library only (the image has no curl). The proxy handler is
# emptied so an HTTP(S)_PROXY in the environment cannot capture the request to 127.0.0.1.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:8000/healthz', timeout=4)"]

# Exec form: imagegate is PID 1 and gets SIGTERM from `docker stop` directly; uvicorn then
# drains. --workers is deliberately not given here, so IMAGEGATE_WORKERS decides.
CMD ["imagegate", "serve", "--host", "0.0.0.0", "--port", "8000"]
