# One image for every Valerix role: `valerix order api`, `valerix inventory worker`, `valerix migrate`,
# `valerix backup run-scheduled`, ... The build stage installs the project into a virtualenv; the
# runtime stage gets only that virtualenv (no compiler, no pip) and runs as uid 10001.
# The runtime needs no build tools: every dependency ships manylinux wheels (psycopg[binary],
# grpcio, and pgserver, whose PostgreSQL 16 client binaries give the backups pg_dump).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first (cached while only the code changes), then the project itself.
COPY pyproject.toml README.md ./
RUN mkdir -p services/valerix && touch services/valerix/__init__.py \
    && /opt/venv/bin/pip install . \
    && /opt/venv/bin/pip uninstall -y valerix
COPY services ./services
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib \
    && /opt/venv/bin/pip uninstall -y pip setuptools wheel

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="valerix" \
      org.opencontainers.image.description="Orders and inventory that stay correct when the network lies."
# pip and setuptools of the base image are not needed at run time.
RUN python -m pip uninstall -y pip setuptools wheel \
    && groupadd --system --gid 10001 valerix \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin valerix
COPY --from=build /opt/venv /opt/venv
# The root filesystem is read-only in Kubernetes: bytecode is precompiled, HOME and scratch
# files live in /tmp (an emptyDir there).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
WORKDIR /tmp
EXPOSE 3000 3001 50051 9100
ENTRYPOINT ["valerix"]
CMD ["--help"]
